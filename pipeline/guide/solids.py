"""manifold3d solids for the guide, and the guide's mesh as its STL file will hold it.

Booleans are exact in manifold3d; what needs care is the way in and out:
C-ordered writeable arrays in, double precision out (no vertex merging: manifold's
output is already a clean manifold), and the trip to float32 STL coordinates
(:func:`float32_mesh`).
"""

from __future__ import annotations

import manifold3d as m3d
import numpy as np
import trimesh
from skimage import measure

from ..errors import DesignError
from ..mesh import check_mesh, float32_vertices
from .frames import LocalGrid


def to_manifold(mesh: trimesh.Trimesh) -> m3d.Manifold:
    """trimesh -> manifold3d (raises DesignError if the mesh is not a closed manifold)."""
    # manifold3d takes writeable C-ordered arrays only; trimesh's may be read-only views.
    m = m3d.Manifold(
        m3d.Mesh64(
            vert_properties=np.array(mesh.vertices, np.float64, order="C", copy=True),
            tri_verts=np.array(mesh.faces, np.uint64, order="C", copy=True),
        )
    )
    if m.status() != m3d.Error.NoError:
        raise DesignError(f"guide part is not a closed manifold ({m.status()})")
    return m


def to_trimesh(m: m3d.Manifold) -> trimesh.Trimesh:
    # Double precision and no vertex merging: manifold3d's output is already a
    # clean manifold, and rounding it to float32 makes slivers of thin triangles.
    mesh = m.to_mesh64()
    return trimesh.Trimesh(np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts), process=False)


def float32_mesh(solid: m3d.Manifold, weld_mm: float = 5e-3, max_edge_mm: float = 2.0, tolerance_mm: float = 1e-4):
    """The solid as the STL file will hold it (float32 vertices) and its measured quality.

    Booleans leave needle and sliver triangles a fraction of a micrometre wide;
    rounded to float32 (steps of ~0.03 µm at 500 mm) one may cross its neighbour.
    manifold3d's simplification within ``tolerance_mm`` removes most of them (and
    about a third of the triangles; the volume changes by ~0.005 mm³). Edges longer
    than ``max_edge_mm`` are then split (the faces stay where they are): a sleeve's
    15 mm cylinder faces, oblique to the axes, would otherwise make the
    self-intersection test of :func:`pipeline.mesh.check_mesh` ~15x slower. If the
    rounded mesh still crosses itself or has zero-area triangles, edges shorter than
    ``weld_mm`` are collapsed (moving a vertex by at most that much) and the result
    kept if it has fewer such flaws.

    Returns
    -------
    mesh : trimesh.Trimesh
    quality : MeshQuality
    """
    mesh = to_trimesh(solid.simplify(tolerance_mm).refine_to_length(max_edge_mm))
    rounded = float32_vertices(mesh)
    quality = check_mesh(rounded)
    if not quality.self_intersections and not quality.degenerate_faces:
        return rounded, quality
    welded = _weld_short_edges(rounded, weld_mm)
    q2 = check_mesh(welded)
    return (welded, q2) if q2.printable or _flaws(q2) < _flaws(quality) else (rounded, quality)


def _flaws(quality) -> tuple[int, int]:
    return quality.self_intersections, quality.degenerate_faces


def _weld_short_edges(mesh: trimesh.Trimesh, weld_mm: float) -> trimesh.Trimesh:
    """Collapse edges shorter than ``weld_mm`` while the surface stays closed."""
    v = np.asarray(mesh.vertices, np.float64)
    f = np.asarray(mesh.faces, np.int64)
    for _ in range(4):
        t = trimesh.Trimesh(v, f, process=False)
        short = t.edges_unique[t.edges_unique_length < weld_mm]
        if not len(short):
            break
        target = np.arange(len(v))
        taken = np.zeros(len(v), bool)
        for a, b in short:
            if not (taken[a] or taken[b]):
                target[b] = a
                taken[a] = taken[b] = True
        g = target[f]
        g = _drop_fins(g[(g[:, 0] != g[:, 1]) & (g[:, 1] != g[:, 2]) & (g[:, 0] != g[:, 2])])
        if not _closed(g):
            break
        f = g
    out = trimesh.Trimesh(v, f, process=False)
    out.remove_unreferenced_vertices()
    return out


def _drop_fins(f: np.ndarray) -> np.ndarray:
    """Remove pairs of triangles on the same three vertices (a collapse's zero-volume fin)."""
    key = np.sort(f, axis=1)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return f[counts[inv.ravel()] == 1]


def _closed(f: np.ndarray) -> bool:
    """Every edge used exactly twice, in opposite directions: closed, oriented, manifold."""
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).astype(np.int64)
    n = int(e.max()) + 1
    key, rkey = e[:, 0] * n + e[:, 1], e[:, 1] * n + e[:, 0]
    return len(np.unique(key)) == len(key) and bool(np.isin(rkey, key).all())


def cylinder(a, b, radius: float, segments: int = 96) -> m3d.Manifold:
    """Solid cylinder from LPS point ``a`` to ``b``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    axis = b - a
    h = float(np.linalg.norm(axis))
    z = axis / h
    x = np.cross(z, [1.0, 0.0, 0.0] if abs(z[0]) < 0.9 else [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    M = np.column_stack([x, y, z, a])
    return m3d.Manifold.cylinder(h, radius, radius, segments).transform(M[:3, :4])


def grid_surface(field_vals: np.ndarray, level: float, grid: LocalGrid) -> trimesh.Trimesh:
    """Closed surface ``{field > level}`` of a grid field, LPS mm, outward wound."""
    pad = np.pad(field_vals, 1, mode="constant", constant_values=min(float(field_vals.min()), level) - 1.0)
    verts, faces, _, _ = measure.marching_cubes(pad, level, allow_degenerate=False)
    lps = grid.index_to_lps(verts - 1.0)
    mesh = trimesh.Trimesh(lps, faces, process=True)
    if mesh.volume < 0:
        mesh.invert()
    return mesh
