"""Cortical breach of a screw: how far its surface lies outside the vertebra, and where.

Sign convention: every ``sdf`` here is a callable returning the signed distance
from LPS points to the bone surface in mm, **negative inside bone** (as
:class:`~.frames.BoneField` and the phantom's ``vertebra_sdf``). A positive value
on the screw surface is a breach of that many mm. (trimesh's
``proximity.signed_distance`` is positive inside: negate it before passing it.)

Grading follows Gertzbein & Robbins (Spine 1990): A no breach, B < 2 mm, C < 4 mm,
D < 6 mm, E >= 6 mm. The direction is named in the vertebra's own frame and is
side-aware: for a left screw, "lateral" is towards the patient's left.

Not graded: the entry hole, i.e. the first ``ENTRY_SKIP_MM`` past the cortical entry
(:func:`cortical_entry`, measured along the axis so that it does not depend on where
exactly a plan puts its entry point), and points standing proud of the posterior
surface (way out within ``POSTERIOR_CONE_DEG`` of posterior). Why a cone and not
"posterior is the largest component": past the medial edge of a lamina the way out
points postero-medially, and at 45 deg a tenth of a millimetre of segmentation error
flips it between counted and not (measured: a 3 mm medial shift at L5 read 0.6 mm
short with the 45 deg rule, 0.3 mm with the cone).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .catalogue import ENTRY_SKIP_MM
from .frames import VertebraFrame
from .plan import Screw

GRADE_LIMITS_MM = (("A", 0.0), ("B", 2.0), ("C", 4.0), ("D", 6.0))
#: Breaches below this (mm) are numerical noise of the surface models, not bone loss.
TOUCH_MM = 1e-3


def gertzbein_robbins(distance_mm: float) -> str:
    """Grade "A".."E" of a breach of ``distance_mm`` outside the cortex."""
    if distance_mm <= TOUCH_MM:
        return "A"
    for grade, limit in GRADE_LIMITS_MM[1:]:
        if distance_mm < limit:
            return grade
    return "E"


def screw_surface(
    screw: Screw,
    *,
    skip_mm: float = ENTRY_SKIP_MM,
    step_mm: float = 0.25,
    n_around: int = 48,
    start_mm: float | None = None,
):
    """Points on the screw's cylinder and its flat tip, LPS mm.

    Returns
    -------
    points : ndarray (n, 3)
    t : ndarray (n,)
        Distance along the axis from the entry, mm.
    """
    d = screw.direction
    u = np.cross(d, [1.0, 0.0, 0.0] if abs(d[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    r = screw.radius_mm
    t0 = skip_mm if start_mm is None else start_mm
    ts = np.arange(t0, screw.length_mm + 1e-9, step_mm)
    if ts.size == 0 or ts[-1] < screw.length_mm - 1e-6:
        ts = np.append(ts, screw.length_mm)
    ang = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    ring = np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v
    side = screw.entry + ts[:, None, None] * d + r * ring[None]
    tip_r = np.linspace(0.0, r, max(int(np.ceil(r / step_mm)), 1), endpoint=False)
    cap = screw.tip + tip_r[:, None, None] * ring[None]
    pts = np.concatenate([side.reshape(-1, 3), cap.reshape(-1, 3)])
    t = np.concatenate([np.repeat(ts, n_around), np.full(cap.shape[0] * cap.shape[1], screw.length_mm)])
    return pts, t


#: A point of the screw surface outside the bone whose way out lies within this
#: angle of the vertebra's posterior axis is the screw standing proud of the
#: posterior surface at its entry, not a wall breach. A narrow cone (rather than
#: "posterior is the largest component") keeps breaches past the medial edge of the
#: lamina, which point postero-medially, graded, and makes the grade insensitive to
#: small errors of the surface's normal there.
POSTERIOR_CONE_DEG = 30.0
#: Points this close to the worst breach (mm) share in naming its direction.
CREST_MM = 0.25


def direction_components(frame: VertebraFrame, side: str, outward) -> dict:
    """Side-aware anatomical components of unit vectors ``outward`` (LPS, (..., 3)).

    Returns ``{"lateral", "medial", "superior", "inferior", "anterior",
    "posterior"}`` -> arrays; for a left screw "lateral" is the patient's left.
    """
    v = np.asarray(outward, float)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    q = frame.vector_to_local(v)
    s = 1.0 if side == "left" else -1.0
    return {
        "lateral": s * q[..., 0],
        "medial": -s * q[..., 0],
        "superior": q[..., 2],
        "inferior": -q[..., 2],
        "anterior": -q[..., 1],
        "posterior": q[..., 1],
    }


def direction_name(frame: VertebraFrame, side: str, outward) -> str:
    """Name of the anatomical direction closest to ``outward`` (one LPS vector)."""
    c = direction_components(frame, side, outward)
    return max(c, key=lambda k: float(c[k]))


@dataclass(frozen=True)
class Breach:
    """Largest distance of the screw surface outside the bone.

    Attributes
    ----------
    distance_mm : float
        0 when the screw is fully inside.
    grade : str
        Gertzbein-Robbins "A".."E".
    direction : str
        "none", "medial", "lateral", "superior", "inferior" or "anterior": the
        largest component other than posterior of the way out, averaged over the
        breach's crest (a screw standing proud of the posterior surface near its
        entry is not graded).
    components : dict
        That way out, side-aware (e.g. ``{"lateral": 0.71, "anterior": 0.69, ...}``;
        unit vector components, negative ones left out).
    point : ndarray (3,)
        LPS mm of the worst point on the screw surface.
    depth_mm : float
        Where along the screw (from the entry) that point is.
    min_wall_mm : float
        Smallest bone depth of any graded surface point (min of ``-sdf``); negative
        when breached.
    cortical_entry_mm : float
        Where the axis crosses the cortex, mm from the plan's entry point (negative:
        the entry point lies inside the bone).
    """

    distance_mm: float
    grade: str
    direction: str
    point: np.ndarray
    depth_mm: float
    min_wall_mm: float
    cortical_entry_mm: float = 0.0
    components: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "distance_mm": round(float(self.distance_mm), 3),
            "grade": self.grade,
            "direction": self.direction,
            "components": {k: round(float(v), 3) for k, v in self.components.items()},
            "point_lps": [round(float(v), 3) for v in self.point],
            "depth_mm": round(float(self.depth_mm), 2),
            "min_wall_mm": round(float(self.min_wall_mm), 3),
            "cortical_entry_mm": round(float(self.cortical_entry_mm), 2),
        }


#: Depth (mm) of the axis in bone that marks it as having entered the bone.
ENTRY_DEPTH_MM = 1.0


def cortical_entry(
    screw: Screw, sdf, *, depth_mm: float | None = None, reach_mm: float = 15.0, step_mm: float = 0.1
) -> float:
    """Where the screw's axis enters the bone, mm along the axis from ``screw.entry``.

    The first place within ``reach_mm`` of the plan's entry point (either way) where
    the axis is ``depth_mm`` deep in bone, less ``depth_mm``: for an axis crossing
    the cortex squarely that is where it crosses the surface. For an axis that
    skims the surface at a grazing angle, where it merely touches the bone depends
    on tenths of a millimetre of surface (the segmentation's error) and can move by
    several mm; where it is 1 mm deep does not. Negative when the plan's entry
    point lies inside the bone. ``sdf`` is negative inside; 0 when the axis never
    gets that deep.
    """
    depth = ENTRY_DEPTH_MM if depth_mm is None else depth_mm
    d = screw.direction
    ts = np.arange(-reach_mm, min(reach_mm, screw.length_mm) + step_mm / 2, step_mm)
    f = np.asarray(sdf(screw.entry + ts[:, None] * d), float) + depth
    deep = np.nonzero(f <= 0)[0]
    if deep.size == 0:
        return 0.0
    k = int(deep[0])
    if k == 0:
        return float(ts[0] - depth)
    a, b = f[k - 1], f[k]
    return float(ts[k - 1] + (ts[k] - ts[k - 1]) * a / (a - b) - depth)


def outward_directions(sdf, points: np.ndarray, step: float = 0.2) -> np.ndarray:
    """Unit directions of increasing distance at ``points``: from the nearest surface
    point when ``sdf`` knows it (:class:`~.bone.Bone`), else the field's gradient."""
    if hasattr(sdf, "outward"):
        return np.asarray(sdf.outward(points), float)
    g = np.zeros_like(points)
    for a in range(3):
        e = np.zeros(3)
        e[a] = step
        g[:, a] = np.asarray(sdf(points + e)) - np.asarray(sdf(points - e))
    return g


def measure_breach(
    screw: Screw, sdf, frame: VertebraFrame, *, skip_mm: float = ENTRY_SKIP_MM, step_mm: float = 0.3, n_around: int = 40
) -> Breach:
    """Gertzbein-Robbins breach of ``screw`` against a bone ``sdf`` (negative inside).

    Parameters
    ----------
    screw : Screw
    sdf : callable
        LPS points (..., 3) -> signed distance in mm, negative inside the vertebra.
        A :class:`~.bone.Bone` (exact distance to the surface mesh) names directions
        from the nearest surface point; any other callable by its gradient.
    frame : VertebraFrame
        The vertebra's frame, to name the breach direction.
    skip_mm : float
        Length past the cortical entry that is not graded: the entry hole. The
        cortical entry is found along the axis (:func:`cortical_entry`), so a plan
        whose entry point sits a little inside or outside the bone is graded over
        the same stretch.
    step_mm, n_around : float, int
        Sampling of the screw's surface along and around the axis.
    """
    t_cortex = cortical_entry(screw, sdf)
    start = max(t_cortex + skip_mm, 0.0)
    pts, t = screw_surface(screw, step_mm=step_mm, n_around=n_around, start_mm=min(start, screw.length_mm))
    if hasattr(sdf, "measure"):
        f, g_all = sdf.measure(pts)
    else:
        f, g_all = np.asarray(sdf(pts), float), None
    out = np.nonzero(f > TOUCH_MM)[0]
    comp = {}
    if out.size:
        p = pts[out]
        g = outward_directions(sdf, p) if g_all is None else g_all[out]
        flat = np.linalg.norm(g, axis=1) < 1e-9
        g[flat] = p[flat] - (screw.entry + t[out][flat, None] * screw.direction)
        comp = direction_components(frame, screw.side, g)
        # Standing proud of the posterior surface is the entry hole, not a breach of
        # the pedicle or body walls that Gertzbein-Robbins grade.
        proud = comp["posterior"] >= np.cos(np.radians(POSTERIOR_CONE_DEG))
        f[out[proud]] = np.minimum(f[out[proud]], 0.0)
    k = int(np.argmax(f))
    distance = max(float(f[k]), 0.0)
    direction, parts = "none", {}
    if distance > TOUCH_MM:
        # Name the way out by the mean over the breach's crest (points within
        # CREST_MM of the worst, near it along the screw): at a corner of the bone the
        # nearest surface switches from one wall to the other within a fraction of a
        # millimetre, and a single point would name either.
        crest = np.nonzero((f[out] >= distance - CREST_MM) & (np.abs(t[out] - t[k]) <= 3.0))[0]
        mean = {n: float(np.mean(v[crest] * f[out][crest]) / np.mean(f[out][crest])) for n, v in comp.items()}
        norm = np.sqrt(mean["lateral"] ** 2 + mean["superior"] ** 2 + mean["anterior"] ** 2)
        parts = {n: v / norm for n, v in mean.items() if v > 0}
        direction = max((n for n in parts if n != "posterior"), key=parts.get, default="posterior")
    return Breach(
        distance, gertzbein_robbins(distance), direction, pts[k], float(t[k]), float(-f.max()), float(t_cortex), parts
    )
