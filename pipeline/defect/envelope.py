"""The defect to fill: between a collapsed body and its height-restored envelope.

The restored envelope is the body with its collapsed endplate put back at the
expected (pre-fracture) heights of :mod:`.genant`. In the body's own frame
(x left, y posterior, z superior; see :mod:`.body`):

* *Which endplate collapsed*: the one whose disc space gained the missing height.
  The gap from each endplate to the neighbouring vertebra is measured at 15, 50
  and 85 % depth and averaged with the height deficits as weights; the collapsed
  side's disc space is the taller one there (a superior-endplate wedge leaves a
  tall anterior gap above the body). Within ``SIDE_TIE_MM`` of each other
  (typical of biconcave fractures, both endplates depressed) the deficit is
  shared equally. With a neighbour on one side only, that side is taken if its
  gap grows where height is missing by at least half the largest deficit;
  otherwise, and with no neighbour at all, the superior endplate (the one most
  often fractured in osteoporotic fractures).
* *Restored endplate*, wedge or crush with one endplate collapsed: rebuilt on the
  intact opposite endplate, mirrored, so that the restored body has the expected
  heights on its midline and the endplate concavity of a normal body
  (:func:`_restored_endplate`). Biconcave: each endplate is restored to the plane
  of its own (standing) rim, sunk by a normal concavity (:func:`_rim_lifts`).
  Wedge or crush with the collapse shared by both endplates: each is lifted by
  its share of the deficit, interpolated along the depth between the three
  measuring points and extrapolated linearly to the cortices (clipped to
  [0, 1.5 x the largest deficit]).
* *Region*: the body's axial outline next to the collapsed endplate (its
  cross-section within ``SLAB_MM`` of the endplate, opened to drop thin rim
  osteophytes) is extruded from the collapsed endplate to the restored one,
  wherever the midline deficit at that depth is positive.
* *Clearance* (``clearance_mm``, default 3 mm): voxels closer than this to any
  other vertebra (surface to surface, taken as the voxel-centre distance less the
  largest voxel step) are left out, so the disc keeps at least that much room and a
  scaffold never touches the neighbour's endplate; a restoration that would need
  more height than the disc space offers is trimmed rather than pushed into the
  neighbour. Voxels already labelled as bone are never part of the defect.

Masks are decided by voxel centre, on the segmentation's own grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..geometry.distance import depth_mm
from ..volume import lps_to_index, voxel_sizes
from .body import VertebralBody
from .genant import FractureGrading, deficits_mm
from .heights import BodyHeights

#: Room (mm) kept between the restored envelope and any neighbouring vertebra.
CLEARANCE_MM = 3.0
#: Deficit-weighted disc gaps closer than this (mm) share the deficit equally.
SIDE_TIE_MM = 1.0
#: Spacing (mm) of the outline grid in the body's frame.
GRID_MM = 0.5
#: Opening radius (mm) applied to the outline (drops thin rim osteophytes).
FOOTPRINT_OPEN_MM = 1.5
#: Width (mm) of the outline's edge ring whose endplate heights are checked
#: against the smooth endplate surface, and the tolerance (mm) of that check.
RIM_MM = 4.0
RIM_TOLERANCE_MM = 2.0
#: Thickness (mm) of the slab under an endplate whose cross-section is the outline.
SLAB_MM = 4.0
#: How far (mm) beyond an endplate the gap to a neighbour is looked for.
GAP_REACH_MM = 30.0


@dataclass(frozen=True)
class Envelope:
    """The restored envelope in the body's frame (everything mm, local coordinates).

    Attributes
    ----------
    xs, ys : ndarray
        Outline grid axes (local x and y of the column centres).
    outline_top, outline_bottom : ndarray of bool, shape (len(xs), len(ys))
        The body's axial outline next to its superior / inferior endplate.
    top, bottom : ndarray of float
        Collapsed superior / inferior endplate height of each column (local z).
    lift_top, lift_bottom : ndarray of float
        How far each column's superior endplate is raised / inferior lowered.
    superior_share : float
        Fraction of the deficit given to the superior endplate (1 = superior only;
        not used for a biconcave body, whose endplates are restored to their rims).
    """

    xs: np.ndarray
    ys: np.ndarray
    outline_top: np.ndarray
    outline_bottom: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    lift_top: np.ndarray
    lift_bottom: np.ndarray
    superior_share: float

    @property
    def collapsed_endplate(self) -> str:
        """ "superior", "inferior", "both" or "" (nothing lifted)."""
        up = bool((self.lift_top[self.outline_top] > 0).any())
        down = bool((self.lift_bottom[self.outline_bottom] > 0).any())
        names = {(True, False): "superior", (False, True): "inferior", (True, True): "both"}
        return names.get((up, down), "")


POSITIONS = ("anterior", "middle", "posterior")


def depth_profile(ys, values, lo: float = -np.inf, hi: float = np.inf):
    """Piecewise-linear function of local y through three (y, value) points,
    extrapolated linearly beyond the end points and clipped to ``[lo, hi]``."""
    ys, vs = np.asarray(ys, float), np.asarray(values, float)

    def profile(y):
        y = np.asarray(y, float)
        out = np.interp(y, ys, vs)
        front = vs[0] + (ys[0] - y) * (vs[0] - vs[1]) / (ys[1] - ys[0])
        back = vs[2] + (y - ys[2]) * (vs[2] - vs[1]) / (ys[2] - ys[1])
        return np.clip(np.where(y < ys[0], front, np.where(y > ys[2], back, out)), lo, hi)

    return profile


def deficit_profile(heights: BodyHeights, grading: FractureGrading):
    """Height deficit (mm) as a function of local y (mm), see the module docstring."""
    d = deficits_mm(grading)
    ds = [d[k] for k in POSITIONS]
    return depth_profile([heights.depth_y_mm[k] for k in POSITIONS], ds, 0.0, 1.5 * max(ds))


def _nearest_label(labels_c, affine_c, points) -> np.ndarray:
    idx = np.rint(lps_to_index(affine_c, points)).astype(int)
    ok = np.all((idx >= 0) & (idx < np.array(labels_c.shape)), axis=-1)
    out = np.zeros(idx.shape[:-1], dtype=labels_c.dtype)
    out[ok] = labels_c[tuple(idx[ok].T)]
    return out


def disc_gaps(heights: BodyHeights, value: int, labels_c, affine_c, side: str) -> dict:
    """Distance (mm) along the body axis from each endplate point to the next vertebra.

    ``side`` is "superior" or "inferior"; positions without a neighbour within
    ``GAP_REACH_MM`` are left out.
    """
    sign = 1.0 if side == "superior" else -1.0
    points = heights.superior_points_lps if side == "superior" else heights.inferior_points_lps
    ts = np.arange(0.0, GAP_REACH_MM, 0.25)
    out = {}
    for k, p in points.items():
        line = p + sign * ts[:, None] * heights.axis_lps
        lab = _nearest_label(labels_c, affine_c, line)
        hit = np.flatnonzero((lab != 0) & (lab != value))
        if hit.size:
            out[k] = float(ts[hit[0]])
    return out


def superior_share(heights: BodyHeights, grading: FractureGrading, value: int, labels_c, affine_c) -> float:
    """Fraction of the height deficit belonging to the superior endplate."""
    d = deficits_mm(grading)
    up = disc_gaps(heights, value, labels_c, affine_c, "superior")
    down = disc_gaps(heights, value, labels_c, affine_c, "inferior")

    def score(gaps):
        keys = [k for k in gaps if d[k] > 0]
        w = sum(d[k] for k in keys)
        return sum(d[k] * gaps[k] for k in keys) / w if w > 0 else None

    s_up, s_down = score(up), score(down)
    if s_up is not None and s_down is not None:
        if abs(s_up - s_down) < SIDE_TIE_MM:
            return 0.5
        return 1.0 if s_up > s_down else 0.0
    # One neighbour only: its side collapsed if its gap grows where height is
    # missing (against the gap where the least is missing); otherwise superior.
    if s_down is not None:
        least = min(down, key=lambda k: d[k])
        if s_down - down[least] >= 0.5 * max(d.values()):
            return 0.0
    return 1.0


def build_envelope(body: VertebralBody, heights: BodyHeights, grading: FractureGrading, share: float) -> Envelope:
    """Outline, collapsed endplates and their lifts on a grid in the body's frame."""
    f = body.frame
    idx = np.argwhere(body.mask).astype(float)
    local = f.to_local(idx @ body.affine[:3, :3].T + body.affine[:3, 3])
    lo, hi = local.min(axis=0) - 1.0, local.max(axis=0) + 1.0
    xs = np.arange(lo[0], hi[0] + GRID_MM, GRID_MM)
    ys = np.arange(lo[1], hi[1] + GRID_MM, GRID_MM)
    zs = np.arange(lo[2] - 1.0, hi[2] + 1.0, 0.25)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    pts = np.stack(np.broadcast_arrays(X[..., None], Y[..., None], zs[None, None, :]), axis=-1)
    v = body.sample(f.to_lps(pts))
    inside = v >= 0.5
    projection = inside.any(axis=-1)
    core = ndimage.binary_erosion(projection, iterations=int(round(RIM_MM / GRID_MM)))
    measured = (
        _edge(v, zs, len(zs) - 1 - np.argmax(inside[..., ::-1], axis=-1), +1),
        _edge(v, zs, np.argmax(inside, axis=-1), -1),
    )
    outlines, ends, fits = [], [], []
    for z, sign in zip(measured, (1.0, -1.0)):
        coef = _endplate_fit(z, X, Y, core)
        fit = _quadratic(coef, X, Y)
        # The outline at this endplate: columns with bone in a slab just inside it.
        depth = sign * (fit[..., None] - zs[None, None, :])
        outline = _open((inside & (depth >= -RIM_TOLERANCE_MM) & (depth <= SLAB_MM)).any(axis=-1))
        outlines.append(outline)
        ends.append(np.where(core | (np.abs(z - fit) <= RIM_TOLERANCE_MM), z, fit))
        fits.append(coef)
    deficit = deficit_profile(heights, grading)(Y)
    if grading.morphology == "biconcave":
        lifts = _rim_lifts(heights, grading, ends, outlines, X, Y)
    elif share in (0.0, 1.0):
        # One endplate collapsed: rebuild it from the intact one (see the module notes).
        k = 0 if share == 1.0 else 1
        restored = _restored_endplate(heights, grading, fits[1 - k], X, Y, side=("superior", "inferior")[k])
        lift = np.clip((restored - ends[k]) * (1.0 if k == 0 else -1.0), 0.0, 1.5 * deficit.max() + 2.0)
        lift = np.where(deficit > 0, lift, 0.0)
        lifts = (lift, np.zeros_like(lift)) if k == 0 else (np.zeros_like(lift), lift)
    else:
        lifts = (share * deficit, (1.0 - share) * deficit)
    return Envelope(
        xs=xs,
        ys=ys,
        outline_top=outlines[0],
        outline_bottom=outlines[1],
        top=ends[0],
        bottom=ends[1],
        lift_top=lifts[0],
        lift_bottom=lifts[1],
        superior_share=float(share),
    )


def _rim_lifts(heights: BodyHeights, grading: FractureGrading, ends, outlines, X, Y):
    """Lifts of both endplates of a biconcave body, restored to their own rims.

    A biconcave fracture depresses the centre of one or both endplates and leaves
    the ring (rim) standing. Each endplate is restored to the plane through its
    rim, sunk at mid-depth by a normal concavity ``c``: half the rim-to-rim height
    times the neighbours' relative middle-height shortfall (1 - Hm/Hp). Only
    columns deeper than that are filled, so an intact endplate gets (almost)
    nothing.
    """
    planes = []
    for z, outline in zip(ends, outlines):
        ring = outline & ~ndimage.binary_erosion(outline, iterations=int(round(RIM_MM / GRID_MM)))
        if ring.sum() < 6:
            return np.zeros_like(X), np.zeros_like(X)
        A = np.column_stack([np.ones(ring.sum()), X[ring], Y[ring]])
        coef, *_ = np.linalg.lstsq(A, z[ring], rcond=None)
        planes.append(coef[0] + coef[1] * X + coef[2] * Y)
    y_m = heights.depth_y_mm["middle"]
    j = int(np.argmin(np.abs(Y[0] - y_m)))
    i = int(np.argmin(np.abs(X[:, 0])))
    # Normal concavity from the neighbours' middle-to-posterior height ratio (the
    # level's own posterior height may be depressed too).
    ratio = grading.restored_mm["middle"] / grading.restored_mm["posterior"]
    c = max(0.0, 0.5 * (planes[0][i, j] - planes[1][i, j]) * (1.0 - ratio))
    cap = 1.5 * max(deficits_mm(grading).values()) + 2.0
    return (np.clip(planes[0] - c - ends[0], 0.0, cap), np.clip(ends[1] - (planes[1] + c), 0.0, cap))


def _restored_endplate(heights: BodyHeights, grading: FractureGrading, coef, X, Y, side: str) -> np.ndarray:
    """Local z of the restored endplate on ``side``, built on the intact opposite one.

    The intact opposite endplate is fitted by a plane plus a quadratic ``Q`` (its
    concavity). The restored body mirrors it: column height ``L(y) - 2 s Q(x, y)``
    (``s`` = +1 superior, -1 inferior), where the linear ``L`` makes the midline
    heights at 15/50/85 % depth equal the restored (expected) heights in the least
    squares sense. The concave endplates make midline heights vary quadratically
    with depth, which a straight interpolation between the three heights would
    overestimate by up to ~0.5 mm between them. The base is the opposite endplate's
    smooth surface, nudged to its measured midline points (where the heights were
    measured).
    """
    s = 1.0 if side == "superior" else -1.0
    ys = np.array([heights.depth_y_mm[k] for k in POSITIONS])
    target = np.array([grading.restored_mm[k] for k in POSITIONS])
    A = np.column_stack([np.ones(3), ys])
    line, *_ = np.linalg.lstsq(A, target + 2.0 * s * coef[5] * ys**2, rcond=None)
    opposite = heights.inferior_points_lps if side == "superior" else heights.superior_points_lps
    measured = [float((opposite[k] - heights.centre_lps) @ heights.axis_lps) for k in POSITIONS]
    fitted = _quadratic(coef, np.zeros(3), ys)
    nudge = depth_profile(ys, np.subtract(measured, fitted), -2.0, 2.0)(Y)
    quad = coef[3] * X**2 + coef[4] * X * Y + coef[5] * Y**2
    column = line[0] + line[1] * Y - 2.0 * s * quad
    return _quadratic(coef, X, Y) + nudge + s * column


def _open(outline):
    r = max(1, int(round(FOOTPRINT_OPEN_MM / GRID_MM)))
    disk = np.hypot(*np.mgrid[-r : r + 1, -r : r + 1]) <= r
    return outline & ndimage.binary_opening(outline, structure=disk)


def _quadratic(coef, X, Y):
    return coef[0] + coef[1] * X + coef[2] * Y + coef[3] * X**2 + coef[4] * X * Y + coef[5] * Y**2


def _endplate_fit(z, X, Y, core):
    """Quadratic surface (coefficients of :func:`_quadratic`) fitted to an
    endplate's interior columns.

    Columns at the body's edge can miss the endplate: where the side wall is
    concave (the waist) an edge column only clips the lower or upper lip of the
    body. The smooth surface stands in for such columns and decides which columns
    belong to the endplate's outline; interior columns (where a depressed fragment
    is real) keep their measured height.
    """
    if core.sum() < 12:
        return np.array([float(np.median(z[core])) if core.any() else 0.0, 0, 0, 0, 0, 0])
    A = np.stack([np.ones(core.sum()), X[core], Y[core], X[core] ** 2, X[core] * Y[core], Y[core] ** 2], axis=-1)
    b = z[core]
    keep = np.ones(len(b), bool)
    coef = np.zeros(6)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(A[keep], b[keep], rcond=None)
        res = np.abs(A @ coef - b)
        keep = res <= max(1.0, 3.0 * float(np.median(res)))
    return coef


def _edge(v, zs, k, step):
    """Sub-sample position of the 0.5 crossing next to sample ``k`` (toward ``step``)."""
    n = len(zs)
    k2 = np.clip(k + step, 0, n - 1)
    a = np.take_along_axis(v, k[..., None], -1)[..., 0]
    b = np.take_along_axis(v, k2[..., None], -1)[..., 0]
    frac = np.where(np.abs(a - b) > 1e-6, (a - 0.5) / np.where(np.abs(a - b) > 1e-6, a - b, 1.0), 0.0)
    return zs[k] + step * np.clip(frac, 0.0, 1.0) * (zs[1] - zs[0])


def envelope_mask(
    env: Envelope, body: VertebralBody, value: int, labels_c, affine_c, clearance_mm: float = CLEARANCE_MM
) -> np.ndarray:
    """The defect on the canonical grid: between each endplate and its lifted copy.

    Parameters
    ----------
    env : Envelope
    body : VertebralBody
    value : int
        Label value of the level (its own bone is excluded from the defect).
    labels_c, affine_c : ndarray
        Canonical labels and their affine.
    clearance_mm : float
        Minimum distance (mm) from any other vertebra.

    Returns
    -------
    ndarray of bool
        Same shape as ``labels_c``.
    """
    f = body.frame
    out = np.zeros(labels_c.shape, dtype=bool)
    fps = (env.outline_top, env.outline_bottom)
    if not (env.lift_top[fps[0]].max(initial=0) > 0 or env.lift_bottom[fps[1]].max(initial=0) > 0):
        return out
    z_hi = float(np.max(np.where(fps[0], env.top + env.lift_top, -np.inf)))
    z_lo = float(np.min(np.where(fps[1], env.bottom - env.lift_bottom, np.inf)))
    z_hi, z_lo = max(z_hi, z_lo), min(z_hi, z_lo)
    corners = np.array([[x, y, z] for x in env.xs[[0, -1]] for y in env.ys[[0, -1]] for z in (z_lo, z_hi)])
    idx = lps_to_index(affine_c, f.to_lps(corners))
    pad = int(np.ceil(clearance_mm / min(voxel_sizes(affine_c)))) + 4
    start = np.maximum(np.floor(idx.min(axis=0)).astype(int) - pad, 0)
    stop = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + pad + 1, np.array(labels_c.shape))
    if np.any(stop <= start):
        return out
    sl = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(start, stop)], indexing="ij"), -1)
    lps = grid.reshape(-1, 3).astype(float) @ affine_c[:3, :3].T + affine_c[:3, 3]
    q = f.to_local(lps)
    i = np.rint((q[:, 0] - env.xs[0]) / GRID_MM).astype(int)
    j = np.rint((q[:, 1] - env.ys[0]) / GRID_MM).astype(int)
    ok = (i >= 0) & (i < len(env.xs)) & (j >= 0) & (j < len(env.ys))
    i, j = np.where(ok, i, 0), np.where(ok, j, 0)
    z = q[:, 2]
    above = fps[0][i, j] & (z > env.top[i, j]) & (z <= env.top[i, j] + env.lift_top[i, j])
    below = fps[1][i, j] & (z < env.bottom[i, j]) & (z >= env.bottom[i, j] - env.lift_bottom[i, j])
    region = (ok & (above | below)).reshape(grid.shape[:3])
    lab = labels_c[sl]
    region &= lab == 0
    others = (lab != 0) & (lab != value)
    if others.any() and clearance_mm > 0:
        # Room between voxel surfaces: centre distance less one (largest) voxel step.
        step = max(voxel_sizes(affine_c))
        dist = depth_mm(~others, voxel_sizes(affine_c))
        region &= dist - step >= clearance_mm - 1e-6
    out[sl] = region
    return out
