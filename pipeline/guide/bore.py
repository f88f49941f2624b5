"""Sleeve bores recovered from a guide mesh: axis, radius, extent, wall.

A check of an imported guide must not take its sleeves from the plan, so the
plan only says *where to look*: faces near the planned axis that could belong to
a hole. The bore itself is found from the mesh alone:

1. candidate faces lie within ``search_radius`` of the planned axis and have
   normals roughly perpendicular to it (a tilted bore still qualifies);
2. they are split into smoothly connected patches (no edge sharper than
   ``SMOOTH_DEG``, so a bore is cut off at its rims); for each patch the axis direction is the
   direction all its normals are perpendicular to (smallest eigenvector of the
   area-weighted normal scatter), the centre and radius come from an algebraic
   circle fit of its vertices projected along that direction, and a least-squares
   cylinder fit refines all five parameters;
3. the bore is the concave patch (normals pointing at the fitted axis) with the
   best-supported fit; every candidate vertex lying on its cylinder then joins the
   final fit, so a bore split by the base into several patches is fitted whole.

Nothing here is biased towards the plan: a sleeve moved 1 mm or tilted 2° is fitted
as exactly as one on its planned axis.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy import optimize

#: Largest angle between neighbouring faces of one smooth patch (deg).
SMOOTH_DEG = 12.0
#: Smallest patch area (mm²) worth fitting: a bore 1 mm wide and 2 mm long.
MIN_PATCH_MM2 = 6.0


def _frame(d: np.ndarray):
    u = np.cross(d, [1.0, 0.0, 0.0] if abs(d[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def _circle(xy: np.ndarray):
    """Algebraic (Kasa) circle fit: centre (2,), radius."""
    A = np.column_stack([2 * xy, np.ones(len(xy))])
    b = (xy**2).sum(axis=1)
    (cx, cy, c), *_ = np.linalg.lstsq(A, b, rcond=None)
    return np.array([cx, cy]), float(np.sqrt(max(c + cx**2 + cy**2, 0.0)))


def fit_cylinder(points: np.ndarray, point0, direction0, radius0: float):
    """Least-squares cylinder through ``points`` (n, 3) from an initial axis.

    Returns ``(point, unit direction, radius, residuals)``; residuals are the signed
    radial distances of the points from the fitted surface (mm).
    """
    d0 = np.asarray(direction0, float) / np.linalg.norm(direction0)
    p0 = np.asarray(point0, float)
    u, w = _frame(d0)

    def axis_of(q):
        p = p0 + q[0] * u + q[1] * w
        D = d0 + q[2] * u + q[3] * w
        return p, D / np.linalg.norm(D)

    def resid(q):
        p, D = axis_of(q)
        r = points - p
        return np.linalg.norm(r - (r @ D)[:, None] * D, axis=1) - q[4]

    sol = optimize.least_squares(
        resid, [0.0, 0.0, 0.0, 0.0, radius0], xtol=1e-12, ftol=1e-12, gtol=1e-12, loss="soft_l1", f_scale=0.02
    )
    sol = optimize.least_squares(resid, sol.x, xtol=1e-12, ftol=1e-12, gtol=1e-12)
    p, D = axis_of(sol.x)
    return p, D, float(abs(sol.x[4])), resid(sol.x)


def _patch_fit(normals, areas, centres, verts, d_hint: np.ndarray):
    """Cylinder fitted to one patch of faces, or None when it is not a hole's wall."""
    _, vecs = np.linalg.eigh((normals * areas[:, None]).T @ normals)
    d = vecs[:, 0] if vecs[:, 0] @ d_hint >= 0 else -vecs[:, 0]
    u, w = _frame(d)
    xy = np.column_stack([verts @ u, verts @ w])
    centre, r = _circle(xy)
    if np.sqrt(np.mean((np.linalg.norm(xy - centre, axis=1) - r) ** 2)) > 0.2:
        return None  # not a cylinder
    point = centre[0] * u + centre[1] * w
    point = point + ((verts.mean(axis=0) - point) @ d) * d
    # A hole's wall faces its axis; an outer (sleeve) surface faces away.
    c = centres - point
    radial = c - (c @ d)[:, None] * d
    if np.mean(np.einsum("ij,ij->i", normals, radial) < 0) < 0.9:
        return None
    p, D, R, res = fit_cylinder(verts, point, d, r)
    return {
        "point": p,
        "direction": D if D @ d_hint >= 0 else -D,
        "radius_mm": R,
        "rms_mm": float(np.sqrt(np.mean(res**2))),
        "area_mm2": float(areas.sum()),
    }


def fit_bore(
    mesh: trimesh.Trimesh,
    entry,
    direction,
    *,
    search_radius: float = 4.0,
    reach: float = 40.0,
    tolerance_mm: float = 0.02,
):
    """Recover a bore's axis from the mesh near a planned axis (see the module notes).

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Guide, LPS mm.
    entry, direction : array_like (3,)
        Planned entry point and direction into the bone: only where to look.
    search_radius : float
        Faces whose centre is within this distance (mm) of the planned axis, between
        ``reach`` mm behind the entry and 3 mm past it, are candidates.
    tolerance_mm : float
        Largest radial residual of a vertex counted as lying on the bore.

    Returns
    -------
    dict or None
        ``point`` (fitted axis point nearest the planned entry, LPS mm), ``direction``
        (unit, into the bone), ``radius_mm``, ``top_t``/``bottom_t`` (extent of the
        bore along its axis, mm from ``point``, negative = posterior),
        ``n_vertices``, ``rms_mm``. None when no hole is found there.
    """
    e = np.asarray(entry, float)
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    rel = mesh.triangles_center - e
    t = rel @ d
    dist = np.linalg.norm(rel - t[:, None] * d, axis=1)
    sel = (dist < search_radius) & (t > -reach) & (t < 3.0) & (np.abs(mesh.face_normals @ d) < 0.5)
    faces = np.nonzero(sel)[0]
    if faces.size < 6:
        return None
    adj = mesh.face_adjacency
    # Patches are joined across smooth edges only: a bore of 96 segments turns by
    # 3.75 degrees from face to face, its rims by tens of degrees.
    both = sel[adj[:, 0]] & sel[adj[:, 1]] & (mesh.face_adjacency_angles < np.radians(SMOOTH_DEG))
    patches = trimesh.graph.connected_components(adj[both], nodes=faces, min_len=6)
    normals, areas, centres = mesh.face_normals, mesh.area_faces, mesh.triangles_center
    fits = []
    for g in patches:
        g = np.asarray(g)
        if areas[g].sum() < MIN_PATCH_MM2:
            continue
        try:
            f = _patch_fit(normals[g], areas[g], centres[g], mesh.vertices[np.unique(mesh.faces[g].ravel())], d)
        except (np.linalg.LinAlgError, ValueError):
            continue
        if f is not None and f["radius_mm"] < search_radius and f["rms_mm"] < 0.1:
            fits.append(f)
    if not fits:
        return None
    best = max(fits, key=lambda f: f["area_mm2"])
    # Every candidate vertex on that cylinder joins the final fit.
    verts = mesh.vertices[np.unique(mesh.faces[faces].ravel())]
    r = verts - best["point"]
    radial = np.linalg.norm(r - (r @ best["direction"])[:, None] * best["direction"], axis=1)
    on = verts[np.abs(radial - best["radius_mm"]) < tolerance_mm]
    p, D, R, res = fit_cylinder(on, best["point"], best["direction"], best["radius_mm"])
    keep = np.abs(res) < tolerance_mm
    if keep.sum() >= 6 and keep.sum() < len(on):
        on = on[keep]
        p, D, R, res = fit_cylinder(on, p, D, R)
    D = D if D @ d >= 0 else -D
    p = p + ((e - p) @ D) * D
    ts = (on - p) @ D
    return {
        "point": p,
        "direction": D,
        "radius_mm": R,
        "top_t": float(ts.min()),
        "bottom_t": float(ts.max()),
        "n_vertices": int(len(on)),
        "rms_mm": float(np.sqrt(np.mean(res**2))),
    }


def sleeve_wall(manifold, fit: dict, n_azimuth: int = 24, heights=(0.2, 0.5)) -> float:
    """Thinnest radial wall around a recovered bore (mm).

    Rays from the bore's axis outwards (manifold3d's exact ray cast) at a few heights
    along the sleeve (fractions of the bore's length from its top: the part standing
    clear of the bone, whose bottom is cut to the bone's shape): the first hit is the
    bore, the second the sleeve's outside.
    """
    p, D, R = fit["point"], fit["direction"], fit["radius_mm"]
    u, w = _frame(D)
    span = fit["bottom_t"] - fit["top_t"]
    reach = 4.0 * R + 40.0
    walls = []
    for hgt in heights:
        o = p + (fit["top_t"] + hgt * span) * D
        for a in np.linspace(0, 2 * np.pi, n_azimuth, endpoint=False):
            v = np.cos(a) * u + np.sin(a) * w
            hits = [h.distance * reach for h in manifold.ray_cast(o, o + reach * v)]
            hits = [h for h in hits if h > R - 0.3]
            if len(hits) >= 2:
                walls.append(hits[1] - hits[0])
    return float(min(walls)) if walls else float("nan")


def ray_thickness(
    manifold, mesh: trimesh.Trimesh, n: int = 1000, seed: int = 0, percentile: float = 5.0, reach: float = 60.0
) -> float:
    """Thinnest wall of a solid (mm): length of the inward normal ray through the solid
    at ``n`` sampled surface points, low ``percentile`` (a single ray grazing an edge is
    not a wall). Ray casts are manifold3d's (exact, robust)."""
    pts, fi = trimesh.sample.sample_surface(mesh, n, seed=seed)
    nrm = mesh.face_normals[fi]
    th = []
    for p, v in zip(pts, nrm):
        o = p - 1e-4 * v
        hits = manifold.ray_cast(o, o - reach * v)
        if hits:
            th.append(hits[0].distance * reach + 1e-4)
    return float(np.percentile(th, percentile)) if th else float("nan")
