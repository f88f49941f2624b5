"""Automatic pedicle-screw trajectories: through the isthmus, as far from the cortex as possible.

For each vertebra and side the axis is searched around the pedicle's own axis
(angles and an offset of the point where it crosses the isthmus). For a candidate
axis the entry is where it leaves the bone posteriorly (the junction of
transverse and superior articular process for a lumbar pedicle), the tip is as
deep as the rules in :mod:`.catalogue` allow, and the score is the smallest bone
depth (the vertebra's signed distance, mm) along the axis from 3 mm past the
entry to the tip. The diameter then follows from the isthmus width and that
measured clearance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ..errors import DesignError
from ..geometry.lines import segment_distance
from . import catalogue as cat
from .anatomy import VertebraAnatomy, analyse_segmentation
from .frames import direction_angles, direction_from_angles, ray_exit
from .plan import Plan, Screw


@dataclass(frozen=True)
class PlannerSettings:
    """Knobs of the planner (mm, degrees).

    Attributes
    ----------
    search_deg : float
        Half-range of the coarse angle search around the pedicle axis.
    wall_mm : float
        Bone wanted around the screw everywhere past the entry.
    margin_mm : float
        Extra allowance for the segmentation's uncertainty (about half a voxel),
        taken off the measured clearance before sizing the diameter.
    depth_fraction : float
        Tip at most this fraction of the body depth along the axis.
    """

    search_deg: float = 10.0
    wall_mm: float = cat.MIN_WALL_MM
    margin_mm: float = 0.3
    depth_fraction: float = cat.PLANNED_BODY_DEPTH_FRACTION
    tip_to_anterior_mm: float = cat.MIN_TIP_TO_ANTERIOR_MM
    skip_mm: float = cat.ENTRY_SKIP_MM


@dataclass(frozen=True)
class AxisGeometry:
    """Where an axis meets the vertebra (distances along the axis from the entry, mm)."""

    entry: np.ndarray
    direction: np.ndarray
    wall_t: float  # posterior wall of the body
    anterior_t: float  # anterior cortex
    max_tip_t: float  # deepest allowed tip

    @property
    def body_depth_mm(self) -> float:
        return self.anterior_t - self.wall_t


def axis_geometry(
    anatomy: VertebraAnatomy, point, direction, sdf=None, settings: PlannerSettings = PlannerSettings()
) -> AxisGeometry | None:
    """Entry, body walls and the deepest allowed tip of the axis through ``point``.

    ``sdf`` defaults to the vertebra's field. None when ``point`` is not in bone.
    """
    sdf = anatomy.field if sdf is None else sdf
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    back = ray_exit(sdf, point, -d, max_mm=60.0)
    front = ray_exit(sdf, point, d, max_mm=90.0)
    if back is None or front is None:
        return None
    entry = np.asarray(point, float) - back * d
    return _geometry_from_entry(anatomy, entry, d, back + front, settings)


def _geometry_from_entry(anatomy, entry, d, anterior_t, settings) -> AxisGeometry:
    dy = float(anatomy.frame.vector_to_local(d)[1])
    y0 = float(anatomy.frame.to_local(entry)[1])
    wall_t = (anatomy.body_posterior_y - y0) / dy if dy < -1e-6 else 0.0
    wall_t = float(np.clip(wall_t, 0.0, anterior_t))
    max_tip = min(anterior_t - settings.tip_to_anterior_mm, wall_t + settings.depth_fraction * (anterior_t - wall_t))
    return AxisGeometry(entry, d, wall_t, float(anterior_t), float(max_tip))


def clearance_along(sdf, entry, direction, start_mm: float, stop_mm: float, step: float = 0.5) -> np.ndarray:
    """Bone depth (mm, ``-sdf``) at points of the axis from ``start_mm`` to ``stop_mm``."""
    ts = np.arange(start_mm, max(stop_mm, start_mm) + 1e-9, step)
    return -np.asarray(sdf(entry + ts[:, None] * direction))


def plan_screw(anatomy: VertebraAnatomy, side: str, settings: PlannerSettings = PlannerSettings()):
    """Best trajectory and size for one pedicle.

    Returns
    -------
    screw : Screw
    info : dict
        What was measured (JSON-ready): clearance, isthmus, angles, warnings.

    Raises
    ------
    DesignError
        When the pedicle was not found or no screw of the catalogue fits.
    """
    ped = anatomy.pedicles.get(side)
    if ped is None:
        raise DesignError(f"{anatomy.level} {side}: pedicle not found, no screw planned")
    sdf = anatomy.field
    up = anatomy.frame.axes[:, 2]
    u = np.cross(up, ped.axis)
    u /= np.linalg.norm(u)
    v = np.cross(ped.axis, u)

    medial_lims = cat.medial_range(anatomy.level) or (
        ped.medial_angle_deg - cat.MEDIAL_ANGLE_TOLERANCE_DEG,
        ped.medial_angle_deg + cat.MEDIAL_ANGLE_TOLERANCE_DEG,
    )
    # Margins: stay 1 degree inside the accepted range.
    medial_lims = (medial_lims[0] + 1.0, medial_lims[1] - 1.0)

    def evaluate(x, radius):
        medial, cranial, a, b = x
        d = direction_from_angles(anatomy.frame, side, medial, cranial)
        p = ped.centre + a * u + b * v
        g = axis_geometry(anatomy, p, d, sdf, settings)
        if g is None:
            return None, -10.0
        length = cat.choose_length(g.max_tip_t)
        if length is None:
            return g, -5.0
        # Pedicle and body (from 6 mm before the isthmus to the tip): the wall is
        # the axis' bone depth minus the radius. Between the entry and there the
        # axis runs through the junction of the processes, where its depth is the
        # distance to the entry surface; there the screw's surface only has to
        # stay in bone, so its depth counts with the wanted wall added.
        t_isthmus = float((ped.centre - g.entry) @ d)
        start = max(settings.skip_mm, t_isthmus - 6.0)
        c = clearance_along(sdf, g.entry, d, start, length)
        wall = float(c.min()) - radius if c.size else -10.0
        if start > settings.skip_mm:
            ts = np.arange(settings.skip_mm, start + 1e-9, 0.5)
            rr = _ring(d, 16) * radius
            pts = g.entry + ts[:, None, None] * d + rr[None]
            near = float(-np.max(sdf(pts)))
            wall = min(wall, near + settings.wall_mm)
        return g, wall

    def cost(x, radius):
        _, m = evaluate(x, radius)
        # Among equally safe axes prefer the pedicle's own (a tie-breaker only).
        dev = np.hypot(x[0] - ped.medial_angle_deg, x[1] - ped.cranial_angle_deg)
        # Stay within the angles accepted for the level (see catalogue): a degree
        # outside them costs as much as a millimetre of wall.
        lo, hi = medial_lims
        out = max(lo - x[0], 0.0, x[0] - hi) + max(
            cat.CRANIAL_ANGLE_RANGE_DEG[0] - x[1], 0.0, x[1] - cat.CRANIAL_ANGLE_RANGE_DEG[1]
        )
        return -m + 0.002 * dev + 0.01 * np.hypot(x[2], x[3]) + 1.0 * out

    def optimise(radius, x_start=None):
        r = settings.search_deg
        if x_start is None:
            grid = [
                (ped.medial_angle_deg + dm, ped.cranial_angle_deg + dc, 0.0, 0.0)
                for dm in np.arange(-r, r + 1e-9, r / 4)
                for dc in np.arange(-r, r + 1e-9, r / 4)
            ]
        else:
            grid = [tuple(x_start)]
        costs = [cost(x, radius) for x in grid]
        x0 = np.array(grid[int(np.argmin(costs))])
        res = optimize.minimize(
            cost,
            x0,
            args=(radius,),
            method="Nelder-Mead",
            options={
                "xatol": 0.05,
                "fatol": 0.005,
                "maxiter": 400,
                "initial_simplex": [x0, x0 + (2, 0, 0, 0), x0 + (0, 2, 0, 0), x0 + (0, 0, 1, 0), x0 + (0, 0, 0, 1)],
            },
        )
        return res.x if res.fun <= min(costs) else x0

    warnings = []
    need = settings.wall_mm + settings.margin_mm
    sizes = [d for d in cat.DIAMETERS_MM if d <= (cat.choose_diameter(ped.width_mm) or cat.DIAMETERS_MM[0])]
    x, diameter, wall = None, None, -np.inf
    for dia in sorted(sizes, reverse=True):
        x = optimise(dia / 2, x)
        g, wall = evaluate(x, dia / 2)
        diameter = dia
        if g is not None and wall >= need:
            break
    if g is None:
        raise DesignError(f"{anatomy.level} {side}: no axis through the pedicle stays in bone")
    length = cat.choose_length(g.max_tip_t)
    if length is None:
        raise DesignError(
            f"{anatomy.level} {side}: the vertebra is too short along the pedicle for a "
            f"{cat.LENGTHS_MM[0]:g} mm screw ({g.max_tip_t:.1f} mm allowed)"
        )
    if wall < need:
        warnings.append(
            f"{anatomy.level} {side}: pedicle too narrow for the catalogue "
            f"(isthmus {ped.width_mm:.1f} mm, wall {wall:.1f} mm with the smallest screw); check it"
        )
    clearance = wall + diameter / 2
    screw = Screw(anatomy.level, side, g.entry, g.entry + length * g.direction, diameter, length)
    medial, cranial = direction_angles(anatomy.frame, g.direction, side)
    info = {
        "axis_clearance_mm": round(clearance, 3),
        "wall_mm": round(wall, 3),
        "isthmus_width_mm": round(ped.width_mm, 2),
        "isthmus_height_mm": round(ped.height_mm, 2),
        "isthmus_centre_lps": [round(float(c), 3) for c in ped.centre],
        "medial_angle_deg": round(medial, 2),
        "cranial_angle_deg": round(cranial, 2),
        "body_depth_along_axis_mm": round(g.body_depth_mm, 2),
        "entry_to_anterior_cortex_mm": round(g.anterior_t, 2),
        "warnings": warnings,
    }
    return screw, info


def plan_screws(
    segmentation=None,
    levels=None,
    *,
    sides=("left", "right"),
    anatomies: dict | None = None,
    settings: PlannerSettings = PlannerSettings(),
    series_hash: str = "",
) -> Plan:
    """Plan pedicle screws for the given levels of a segmentation.

    Parameters
    ----------
    segmentation : VertebraSegmentation, optional
        Needed unless ``anatomies`` covers every level.
    levels : list of str, optional
        Default: every level in ``anatomies`` or in the segmentation except S1.
    sides : tuple of str
    anatomies : dict, optional
        ``{level: VertebraAnatomy}`` already computed (saves ~2 s per level).
    settings : PlannerSettings
    series_hash : str
        Carried into the plan (the scan's short hash).

    Returns
    -------
    Plan
        Screws in LPS mm; ``plan.planning[screw.id]`` holds what was measured.
    """
    anatomies = dict(anatomies or {})
    if levels is None:
        levels = list(anatomies) if anatomies else [n for n in segmentation.levels.values() if n != "S1"]
    todo = [lv for lv in levels if lv not in anatomies]
    if todo:
        if segmentation is None:
            raise DesignError(f"no segmentation given for levels {', '.join(todo)}")
        anatomies.update(analyse_segmentation(segmentation, todo))
    screws, planning = [], {}
    for lv in levels:
        pair = []
        for side in sides:
            screw, info = plan_screw(anatomies[lv], side, settings)
            pair.append(screw)
            planning[screw.id] = info
        if len(pair) == 2:
            pair = _separate(pair, planning)
        screws += pair
    return Plan(tuple(screws), series_hash, "osteoprint", planning)


def _separate(pair: list, planning: dict, margin_mm: float = 0.5) -> list:
    """Shorten converging screws of one vertebra until their tips keep the wanted
    clearance (the longer one first, 5 mm at a time)."""

    def gap(a, b):
        return segment_distance(a.entry, a.tip, b.entry, b.tip) - a.radius_mm - b.radius_mm

    a, b = pair
    while gap(a, b) < cat.MIN_SCREW_CLEARANCE_MM + margin_mm:
        k = 0 if a.length_mm >= b.length_mm else 1
        s = (a, b)[k]
        shorter = [v for v in cat.LENGTHS_MM if v < s.length_mm]
        if not shorter:
            planning[s.id]["warnings"].append(f"{s.id}: screws of {s.level} meet; no shorter screw in the catalogue")
            break
        s = Screw(s.level, s.side, s.entry, s.entry + shorter[-1] * s.direction, s.diameter_mm, shorter[-1], s.id)
        planning[s.id]["warnings"].append(f"{s.id}: shortened to {shorter[-1]:g} mm to clear the other screw")
        a, b = (s, b) if k == 0 else (a, s)
    return [a, b]


def _ring(axis, n: int) -> np.ndarray:
    """``n`` unit vectors perpendicular to ``axis``."""
    a = np.asarray(axis, float)
    u = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(a, u)
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v
