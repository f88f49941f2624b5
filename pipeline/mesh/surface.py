"""Marching-cubes surfaces of label masks, placed in LPS millimetres.

Why the mask is blurred before marching cubes: a binary mask meshed at 0.5 gives
the familiar voxel staircase, which slicers print faithfully. A Gaussian of ~0.6
voxel turns the staircase into a smooth field whose 0.5 level stays on the voxel
boundary for surfaces whose radius of curvature exceeds a few voxels (the level set
moves by about sigma²/2R), so volume is kept; Taubin smoothing then removes the
remaining ripple without the shrinkage of plain Laplacian smoothing.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy import ndimage
from skimage import measure, morphology

from ..geometry.distance import depth_mm
from ..volume import crop_affine, index_to_lps, voxel_sizes
from .repair import snap_to_float32


def mesh_mask(
    mask: np.ndarray,
    affine: np.ndarray,
    *,
    sigma_vox: float = 0.6,
    taubin_iterations: int = 10,
    decimate: float = 0.0,
    max_deviation_mm: float = 0.1,
    min_component_mm3: float = 1.0,
) -> trimesh.Trimesh:
    """Closed, outward-wound surface of a binary mask, vertices in LPS mm.

    Parameters
    ----------
    mask : ndarray of bool, shape (n0, n1, n2)
        The structure, on the grid described by ``affine``.
    affine : ndarray, shape (4, 4)
        Voxel index (array order) to LPS mm.
    sigma_vox : float
        Gaussian blur of the mask, in voxels along each axis, before marching cubes.
    taubin_iterations : int
        Taubin (lambda/mu) smoothing passes on the mesh; 0 disables.
    decimate : float
        Fraction of triangles to remove (0 keeps all). Applied only if the result
        stays watertight and within ``max_deviation_mm`` of the full mesh; otherwise
        the full mesh is returned.
    max_deviation_mm : float
        Largest vertex displacement tolerated from decimation, mm.
    min_component_mm3 : float
        Closed shells smaller than this are dropped (specks, not prints).

    Returns
    -------
    trimesh.Trimesh
        Empty if the mask is empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return trimesh.Trimesh()
    pad = int(np.ceil(3 * sigma_vox)) + 2
    nz = (
        np.nonzero(mask.any(axis=(1, 2)))[0],
        np.nonzero(mask.any(axis=(0, 2)))[0],
        np.nonzero(mask.any(axis=(0, 1)))[0],
    )
    start = [int(ax[0]) - pad for ax in nz]
    stop = [int(ax[-1]) + pad + 1 for ax in nz]
    # The crop may reach outside the array (a structure touching the scan's edge):
    # pad with background so the surface closes there instead of leaving a hole.
    crop = np.zeros([b - a for a, b in zip(start, stop)], dtype=np.float32)
    src = tuple(slice(max(a, 0), min(b, n)) for a, b, n in zip(start, stop, mask.shape))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, start))
    crop[dst] = mask[src]
    field = ndimage.gaussian_filter(crop, sigma_vox, mode="constant") if sigma_vox > 0 else crop
    # Keep samples 1/500 of the field's range off the level: several marching-cubes
    # vertices would otherwise crowd a sample closer than float32 STL can tell apart.
    off = field - 0.5
    tiny = np.abs(off) < 2e-3
    field[tiny] = 0.5 + np.where(off[tiny] < 0, -2e-3, 2e-3)
    verts, faces, _, _ = measure.marching_cubes(field, 0.5, allow_degenerate=False)
    lps = index_to_lps(crop_affine(affine, start), verts)
    mesh = trimesh.Trimesh(lps, faces, process=True, validate=True)
    if mesh.volume < 0:  # a left-handed affine (the usual DICOM case) turns faces inside out
        mesh.invert()
    mesh = _drop_specks(mesh, min_component_mm3)
    if taubin_iterations > 0 and len(mesh.faces):
        trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=taubin_iterations)
    if decimate > 0:
        mesh = _decimate(mesh, decimate, max_deviation_mm)
    # The STL file holds float32: make the mesh exactly what the file will be.
    return snap_to_float32(mesh)


def mesh_vertebra(mask: np.ndarray, affine: np.ndarray, **options) -> trimesh.Trimesh:
    """Printable surface of one vertebra's mask (see :func:`mesh_mask` for options).

    Defaults suit anatomical models at CT resolution: ~0.6 voxel blur, 10 Taubin
    passes, and a 50% decimation kept only if it moves no vertex by more than 0.1 mm
    and keeps the mesh watertight.
    """
    options.setdefault("decimate", 0.5)
    return mesh_mask(mask, affine, **options)


def _drop_specks(mesh: trimesh.Trimesh, min_volume_mm3: float) -> trimesh.Trimesh:
    # Counting shells is ten times cheaper than splitting; most vertebrae have one.
    if len(trimesh.graph.connected_components(mesh.face_adjacency, nodes=np.arange(len(mesh.faces)))) <= 1:
        return mesh
    parts = mesh.split(only_watertight=False)
    if len(parts) <= 1:
        return mesh
    keep = [p for p in parts if abs(p.volume) >= min_volume_mm3]
    return trimesh.util.concatenate(keep) if keep else mesh


def _decimate(mesh: trimesh.Trimesh, fraction: float, max_deviation_mm: float) -> trimesh.Trimesh:
    """Quadric decimation, kept only if the result is still a sound, faithful solid.

    fast-simplification occasionally collapses an edge into a non-manifold one at
    high reduction; then gentler reductions are tried before giving up.
    """
    try:
        import fast_simplification
    except ImportError:  # optional: without it meshes stay at full resolution
        return mesh
    from .checks import check_mesh

    points = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    rng = np.random.default_rng(0)
    probe = mesh.vertices[rng.choice(len(mesh.vertices), size=min(len(mesh.vertices), 2000), replace=False)]
    for f in (fraction, 0.6 * fraction, 0.3 * fraction):
        p, fc = fast_simplification.simplify(points, faces, f)
        small = trimesh.Trimesh(p, fc, process=True, validate=True)
        q = check_mesh(small, self_intersection_test=False)
        if not (q.watertight and q.winding_consistent and q.vertex_manifold and q.volume_mm3 > 0):
            continue
        # Deviation at 2000 sampled vertices: decimation error is smooth over the
        # surface (measured max over all vertices 0.03-0.07 mm on vertebrae).
        # Self-intersections are left to the caller's final check.
        if _max_distance_to_surface(probe, small, max_deviation_mm) <= max_deviation_mm:
            return small
    return mesh


def _max_distance_to_surface(points: np.ndarray, mesh: trimesh.Trimesh, reach: float) -> float:
    """Largest distance from ``points`` to the surface of ``mesh``, exact up to ``reach``.

    Returns ``inf`` when some point is farther than ``reach`` from every triangle.
    Broad phase on a uniform grid (each triangle's box grown by ``reach`` is binned
    into the cells it covers; a point tests only the triangles of its cell), which
    is several times cheaper than building trimesh's R-tree for one query: meshing
    the GE full-spine CT's 20 vertebrae took 6.2-7.7 s with it, 10.8-11.2 s with
    ``trimesh.proximity.closest_point``.
    """
    points = np.asarray(points, dtype=float)
    tris = np.asarray(mesh.triangles, dtype=float)
    lo = tris.min(axis=1) - reach
    hi = tris.max(axis=1) + reach
    cell = max(float(np.mean(mesh.edges_unique_length)), reach)
    origin = lo.min(axis=0)
    c0 = np.floor((lo - origin) / cell).astype(np.int64)
    span = np.floor((hi - origin) / cell).astype(np.int64) - c0 + 1
    dims = np.floor((hi.max(axis=0) - origin) / cell).astype(np.int64) + 2
    n_cells = np.prod(span, axis=1)
    tri_id = np.repeat(np.arange(len(tris)), n_cells)
    local = np.arange(n_cells.sum()) - np.repeat(np.cumsum(n_cells) - n_cells, n_cells)
    sp = span[tri_id]
    cells = c0[tri_id] + np.stack([local // (sp[:, 1] * sp[:, 2]), (local // sp[:, 2]) % sp[:, 1], local % sp[:, 2]], 1)
    key = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    order = np.argsort(key, kind="stable")
    key, tri_id = key[order], tri_id[order]
    pc = np.floor((points - origin) / cell).astype(np.int64)
    inside = np.all((pc >= 0) & (pc < dims), axis=1)
    if not inside.all():
        return float("inf")
    pkey = (pc[:, 0] * dims[1] + pc[:, 1]) * dims[2] + pc[:, 2]
    start = np.searchsorted(key, pkey)
    count = np.searchsorted(key, pkey, side="right") - start
    if np.any(count == 0):
        return float("inf")
    point_id = np.repeat(np.arange(len(points)), count)
    pair_tri = tri_id[np.repeat(start, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)]
    closest = trimesh.triangles.closest_point(tris[pair_tri], points[point_id])
    dist = np.linalg.norm(closest - points[point_id], axis=1)
    best = np.full(len(points), np.inf)
    np.minimum.at(best, point_id, dist)
    worst = float(best.max())
    return worst if worst <= reach else float("inf")


def smallest_feature_mm(mask: np.ndarray, affine: np.ndarray, percentile: float = 5.0) -> float:
    """Thickness of the thinnest parts of a solid, mm.

    Local thickness on the medial axis is twice the distance to the surface; the
    ``percentile`` of that over the skeleton ignores single-voxel skeleton spurs that
    the minimum would report. Used to check a print against each process's minimum
    printable feature.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return 0.0
    nz = [np.nonzero(mask.any(axis=tuple(i for i in range(3) if i != ax)))[0] for ax in range(3)]
    sl = tuple(slice(max(int(a[0]) - 1, 0), int(a[-1]) + 2) for a in nz)
    crop = mask[sl]
    spacing = voxel_sizes(affine)
    dist = depth_mm(crop, spacing)
    skeleton = morphology.skeletonize(crop)
    radii = dist[skeleton > 0]
    if radii.size == 0:
        return float(2 * dist.max())
    # A voxel centre on the medial axis is up to half a voxel from the true axis: the
    # EDT measures centre to the nearest background centre, i.e. half a voxel beyond
    # the surface, so subtract that once per side.
    thickness = 2 * radii - min(spacing)
    return float(max(np.percentile(thickness, percentile), min(spacing)))
