"""Marching cubes over a field too large for memory, slab by slab, into one closed mesh.

Each slab is meshed with scikit-image's Lewiner marching cubes; consecutive slabs share
one plane of samples, so the vertices on that plane are computed from the same numbers
in both and are merged exactly. The result is checked to be closed with consistent
winding (every directed edge used once and its reverse once), split into connected
surfaces, and stripped of floating fragments too small to print.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.measure import marching_cubes

from pipeline.scaffold.grid import SamplingGrid


def _plane_keys(v: np.ndarray) -> np.ndarray:
    """Exact key of a vertex on a slab plane from its two in-plane float32 coordinates."""
    a = np.ascontiguousarray(v[:, 1], np.float32).view(np.uint32).astype(np.uint64)
    b = np.ascontiguousarray(v[:, 2], np.float32).view(np.uint32).astype(np.uint64)
    return (a << np.uint64(32)) | b


def mesh_field(grid: SamplingGrid, slab_field, *, max_voxels: int = 8_000_000):
    """Triangle mesh of the zero level of a field evaluated slab by slab.

    Parameters
    ----------
    grid : SamplingGrid
        Where the field lives; vertices are mapped through ``grid.affine`` to LPS mm.
    slab_field : callable
        ``slab_field(k0, k1)`` returns the field (float32, mm) on planes ``k0..k1``
        (inclusive), negative inside the solid. It must be positive on the grid's
        outer faces so that the surface closes.
    max_voxels : int
        Slab size limit (memory).

    Returns
    -------
    vertices : ndarray (n, 3) float64, LPS mm
    faces : ndarray (m, 3) int32 (int64 beyond 2**31 vertices), counter-clockwise seen
        from outside (outward normals)
    """
    verts, faces = [], []
    n_total = 0
    prev_keys = prev_index = None
    for k0, k1 in grid.slabs(max_voxels):
        f = np.ascontiguousarray(slab_field(k0, k1), dtype=np.float32)
        # A sample on or within a hair of the level makes marching cubes put several
        # vertices around that sample closer than float32 (the STL format) can tell
        # apart, and the file then pinches; keep every sample 1/500 voxel off it.
        eps = np.float32(2e-3 * grid.voxel_mm)
        tiny = np.abs(f) < eps
        f[tiny] = np.where(f[tiny] < 0, -eps, eps)
        border = [f[:, 0], f[:, -1], f[:, :, 0], f[:, :, -1]]
        if k0 == 0:
            border.append(f[0])
        if k1 == grid.shape[0] - 1:
            border.append(f[-1])
        if min(float(b.min()) for b in border) <= 0:
            raise ValueError("the field is not positive on the grid border; the surface cannot close")
        if not float(f.min()) < 0:
            prev_keys = prev_index = None
            continue
        v, t, _, _ = marching_cubes(f, 0.0, gradient_direction="descent", allow_degenerate=False)
        index = np.arange(len(v), dtype=np.int64) + n_total
        first = v[:, 0] == 0
        if prev_keys is not None and first.any():
            keys = _plane_keys(v[first])
            pos = np.searchsorted(prev_keys, keys)
            pos = np.clip(pos, 0, len(prev_keys) - 1)
            if not np.array_equal(prev_keys[pos], keys):
                raise RuntimeError("slab seam vertices do not match (marching cubes changed?)")
            index[first] = prev_index[pos]
        # renumber so that the new vertices are contiguous after the ones kept so far
        new = ~first if prev_keys is not None else np.ones(len(v), bool)
        index[new] = n_total + np.arange(int(new.sum()))
        last = v[:, 0] == (k1 - k0)
        order = np.argsort(_plane_keys(v[last]))
        prev_keys = _plane_keys(v[last])[order]
        prev_index = index[last][order]
        vv = v[new]  # float32 slab-local indices; the slab offset is added in float64 below
        verts.append((vv, k0))
        faces.append(index[t].astype(np.int32 if n_total + len(vv) < 2**31 else np.int64))
        n_total += len(vv)
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    a = grid.affine
    v = np.empty((n_total, 3), np.float64)
    i = 0
    for vv, k0 in verts:
        local = vv.astype(np.float64)
        local[:, 0] += k0
        v[i : i + len(vv)] = local @ a[:3, :3].T + a[:3, 3]
        i += len(vv)
    del verts
    t = np.concatenate(faces)
    del faces
    if np.linalg.det(a[:3, :3]) < 0:
        # a mirroring affine turns the winding inside out
        t = np.ascontiguousarray(t[:, ::-1])
    return v, t


def signed_volumes(vertices: np.ndarray, faces: np.ndarray, chunk: int = 4_000_000) -> np.ndarray:
    """Signed volume (mm^3) of the tetrahedron each face spans with the centroid."""
    c = vertices.mean(axis=0)
    out = np.empty(len(faces), np.float64)
    for i in range(0, len(faces), chunk):
        f = faces[i : i + chunk]
        a, b, d = (vertices[f[:, k]] - c for k in range(3))
        out[i : i + chunk] = np.einsum("ij,ij->i", a, np.cross(b, d)) / 6.0
    return out


def closed_and_consistent(faces: np.ndarray, n_vertices: int) -> bool:
    """True when every edge has exactly two faces that traverse it in opposite directions.

    That is watertight, edge-manifold and consistently wound. Each directed edge is
    packed as ``(min, max, direction)`` into one integer; after sorting, the keys must
    come in pairs with the same edge and opposite directions.
    """
    if len(faces) == 0:
        return False
    n = np.int64(n_vertices)
    key = np.empty(3 * len(faces), np.int64)
    for k in range(3):
        a = faces[:, k].astype(np.int64)
        b = faces[:, (k + 1) % 3].astype(np.int64)
        key[k::3] = (np.minimum(a, b) * n + np.maximum(a, b)) * 2 + (a > b)
    key.sort()
    if len(key) % 2:
        return False
    first, second = key[0::2], key[1::2]
    same_edge = np.array_equal(first >> 1, second >> 1)
    opposite = not np.any(first & 1) and bool(np.all(second & 1))
    only_two = not np.any((second[:-1] >> 1) == (first[1:] >> 1))
    return bool(same_edge and opposite and only_two)


@dataclass(frozen=True)
class Cleanup:
    """What :func:`drop_fragments` removed and kept.

    ``bodies`` counts closed surfaces enclosing material (positive volume), cavities
    (sealed voids, negative volume) are counted apart; ``volume_mm3`` is the enclosed
    volume of what is kept.
    """

    dropped: int
    dropped_mm3: float
    bodies: int
    body_volumes_mm3: tuple[float, ...]
    cavities: int
    volume_mm3: float


def drop_fragments(vertices: np.ndarray, faces: np.ndarray, min_volume_mm3: float):
    """Remove floating pieces smaller than ``min_volume_mm3``.

    A piece is a connected surface enclosing a positive volume; connected surfaces with
    negative volume are sealed cavities and are kept with what surrounds them.

    Returns
    -------
    vertices, faces : the cleaned mesh (unused vertices removed)
    cleanup : Cleanup
    """
    nv = len(vertices)
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(nv, nv))
    del rows, cols
    graph = graph.tocsr()
    _, vlabel = connected_components(graph, directed=False)
    del graph
    flabel = vlabel[faces[:, 0]]
    vol = np.bincount(flabel, weights=signed_volumes(vertices, faces))
    small = (vol > 0) & (vol < min_volume_mm3)
    keep_face = ~small[flabel]
    body_vols = np.sort(vol[(vol > 0) & ~small])[::-1]
    cleanup = Cleanup(
        dropped=int(small.sum()),
        dropped_mm3=float(vol[small].sum()),
        bodies=int(len(body_vols)),
        body_volumes_mm3=tuple(float(v) for v in body_vols),
        cavities=int((vol < 0).sum()),
        volume_mm3=float(vol[~small].sum()),
    )
    if keep_face.all():
        return vertices, faces, cleanup
    faces = faces[keep_face]
    used = np.zeros(nv, bool)
    used[faces.reshape(-1)] = True
    remap = (np.cumsum(used) - 1).astype(faces.dtype)
    return vertices[used], remap[faces], cleanup
