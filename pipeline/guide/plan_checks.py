"""Checks on any screw plan (osteoprint's own or imported) against the segmented vertebrae.

Every check reports value, unit, threshold, the threshold's source and pass/fail
(:class:`~.report.Check`); signed distances are negative inside bone (see
:mod:`.frames`). Bone is the segmentation: near its surface the exact distance to
the vertebra's surface mesh (:mod:`.bone`), elsewhere its signed-distance grid in
the vertebra's frame. The checks are computed independently of the planner (which
works on the grid alone), and a plan from other software is checked exactly the
same way.
"""

from __future__ import annotations

import numpy as np

from ..errors import DesignError
from ..geometry.lines import segment_distance
from . import catalogue as cat
from .anatomy import VertebraAnatomy, analyse_segmentation, level_above
from .bone import Bone, SurfaceDistance, surface_mesh
from .breach import measure_breach, screw_surface
from .frames import direction_angles, ray_exit
from .plan import Plan, Screw
from .report import Check, PlanReport, ScrewMeasurement, ScrewReport, json_ready, make_check
from .trajectory import PlannerSettings, _geometry_from_entry


def isthmus_walls(screw: Screw, anatomy: VertebraAnatomy, sdf=None) -> dict:
    """Bone left around the screw (mm) at its isthmus, per direction.

    From the axis point closest to the pedicle's isthmus centre, rays perpendicular
    to the axis (towards medial, lateral, superior, inferior in the vertebra's
    frame) find the outer cortex; the wall is that distance minus the screw radius
    (negative: the screw is outside by that much).
    """
    sdf = anatomy.field if sdf is None else sdf
    ped = anatomy.pedicles.get(screw.side)
    d = screw.direction
    centre = ped.centre if ped is not None else screw.entry + 0.3 * screw.length_mm * d
    t = float(np.clip((centre - screw.entry) @ d, 0.0, screw.length_mm))
    q = screw.entry + t * d
    s = 1.0 if screw.side == "left" else -1.0
    out = {}
    for name, vec in (
        ("medial", -s * anatomy.frame.axes[:, 0]),
        ("lateral", s * anatomy.frame.axes[:, 0]),
        ("superior", anatomy.frame.axes[:, 2]),
        ("inferior", -anatomy.frame.axes[:, 2]),
    ):
        w = vec - (vec @ d) * d
        w /= np.linalg.norm(w)
        depth = float(np.asarray(sdf(q[None]))[0])
        if depth >= 0:
            out[name] = -depth - screw.radius_mm
            continue
        exit_t = ray_exit(sdf, q, w, max_mm=40.0, step=0.1)
        out[name] = (exit_t if exit_t is not None else 40.0) - screw.radius_mm
    return {"walls_mm": out, "depth_mm": t, "point_lps": q}


def level_surface(segmentation, level: str, cache: dict) -> SurfaceDistance | None:
    """Exact-distance surface of a level's mesh (made once per level, kept in ``cache``)."""
    if level not in cache:
        cache[level] = None
        if segmentation is not None and level in segmentation.levels.values():
            mesh = surface_mesh(segmentation.mask(level), segmentation.affine)
            if len(mesh.faces):
                cache[level] = SurfaceDistance(mesh)
    return cache[level]


def check_screw(
    screw: Screw, anatomy: VertebraAnatomy, *, sdf=None, above_sdf=None, settings: PlannerSettings = PlannerSettings()
) -> ScrewReport:
    """All single-screw checks of one screw.

    Parameters
    ----------
    screw : Screw
    anatomy : VertebraAnatomy
        The screw's vertebra.
    sdf : callable, optional
        Bone signed distance (mm, negative inside); default ``anatomy.field``.
    above_sdf : callable, optional
        Signed distance of the cranial vertebra (facet check); None skips it.

    Returns
    -------
    ScrewReport
        Its checks, and the breach, walls and angles measured.
    """
    sdf = anatomy.field if sdf is None else sdf
    sid = screw.id
    checks = []
    b = measure_breach(screw, sdf, anatomy.frame)
    checks.append(
        make_check(
            "breach",
            b.distance_mm,
            "mm",
            0.0,
            "<=",
            cat.SOURCE_BREACH,
            sid,
            grade=b.grade,
            direction=b.direction,
            components=b.components,
            depth_mm=b.depth_mm,
            point_lps=b.point,
            cortical_entry_mm=b.cortical_entry_mm,
        )
    )
    checks.append(
        make_check(
            "entry_on_cortex",
            abs(b.cortical_entry_mm),
            "mm",
            cat.MAX_ENTRY_TO_CORTEX_MM,
            "<=",
            cat.SOURCE_ENTRY,
            sid,
            signed_mm=b.cortical_entry_mm,
        )
    )
    walls = isthmus_walls(screw, anatomy, sdf)
    wmin = min(walls["walls_mm"].values())
    checks.append(
        make_check(
            "isthmus_wall",
            wmin,
            "mm",
            cat.MIN_WALL_MM,
            ">=",
            cat.SOURCE_WALL,
            sid,
            per_direction_mm=walls["walls_mm"],
            thinnest=min(walls["walls_mm"], key=walls["walls_mm"].get),
        )
    )
    ped = anatomy.pedicles.get(screw.side)
    if ped is not None:
        checks.append(
            make_check(
                "diameter_to_isthmus_width",
                screw.diameter_mm / ped.width_mm,
                "ratio",
                cat.MAX_DIAMETER_TO_WIDTH,
                "<=",
                cat.SOURCE_DIAMETER_TO_WIDTH,
                sid,
                diameter_mm=screw.diameter_mm,
                isthmus_width_mm=ped.width_mm,
            )
        )
        checks.append(
            make_check(
                "isthmus_width_minus_diameter",
                ped.width_mm - screw.diameter_mm,
                "mm",
                cat.MIN_WIDTH_MINUS_DIAMETER_MM,
                ">=",
                cat.SOURCE_WIDTH_MINUS_DIAMETER,
                sid,
            )
        )
    d = screw.direction
    anterior = _anterior_distance(sdf, screw)
    checks.append(
        make_check("tip_to_anterior_cortex", anterior, "mm", cat.MIN_TIP_TO_ANTERIOR_MM, ">=", cat.SOURCE_TIP, sid)
    )
    g = _geometry_from_entry(anatomy, screw.entry, d, screw.length_mm + anterior, settings)
    frac = (screw.length_mm - g.wall_t) / max(g.body_depth_mm, 1e-6)
    checks.append(
        make_check(
            "tip_depth_in_body",
            frac,
            "fraction of body depth",
            cat.MAX_BODY_DEPTH_FRACTION,
            "<=",
            cat.SOURCE_DEPTH,
            sid,
            body_depth_along_axis_mm=g.body_depth_mm,
        )
    )
    if above_sdf is not None:
        # ~1 mm spacing: the gap to the vertebra above varies smoothly over the screw.
        pts, _ = screw_surface(screw, start_mm=-cat.HEAD_LENGTH_MM, step_mm=0.5, n_around=24)
        gap = float(np.min(above_sdf(pts)))
        checks.append(
            make_check(
                "cranial_facet_clearance",
                gap,
                "mm",
                cat.MIN_FACET_CLEARANCE_MM,
                ">=",
                cat.SOURCE_FACET,
                sid,
                head_length_mm=cat.HEAD_LENGTH_MM,
            )
        )
    else:
        checks.append(
            Check(
                "cranial_facet_clearance",
                None,
                "mm",
                cat.MIN_FACET_CLEARANCE_MM,
                ">=",
                cat.SOURCE_FACET,
                None,
                sid,
                {"note": "no vertebra above in the segmentation"},
            )
        )
    medial, cranial = direction_angles(anatomy.frame, d, screw.side)
    rng = cat.medial_range(screw.level)
    if rng is not None:
        checks.append(make_check("medial_angle", medial, "deg", list(rng), "in", cat.SOURCE_ANGLES, sid))
    else:
        checks.append(
            Check(
                "medial_angle",
                medial,
                "deg",
                None,
                "in",
                cat.SOURCE_ANGLES,
                None,
                sid,
                {"note": f"no normal range for {screw.level}"},
            )
        )
    checks.append(
        make_check("cranial_angle", cranial, "deg", list(cat.CRANIAL_ANGLE_RANGE_DEG), "in", cat.SOURCE_ANGLES, sid)
    )
    measured = ScrewMeasurement(b, walls["walls_mm"], medial, cranial, anterior)
    return ScrewReport(screw.id, screw.level, screw.side, tuple(checks), measured)


def _anterior_distance(sdf, screw: Screw) -> float:
    """Distance from the tip to where the axis leaves the bone ahead of it (mm);
    negative (minus the depth outside) when the tip is already out."""
    f = float(np.asarray(sdf(screw.tip[None]))[0])
    if f >= 0:
        return -f
    t = ray_exit(sdf, screw.tip, screw.direction, max_mm=80.0, step=0.1)
    return float(t) if t is not None else 80.0


def pair_checks(plan: Plan) -> list[Check]:
    """Clearance between every pair of screws (surface to surface, mm)."""
    out = []
    s = plan.screws
    for i in range(len(s)):
        for j in range(i + 1, len(s)):
            gap = segment_distance(s[i].entry, s[i].tip, s[j].entry, s[j].tip) - s[i].radius_mm - s[j].radius_mm
            out.append(
                make_check(
                    "screw_clearance",
                    gap,
                    "mm",
                    cat.MIN_SCREW_CLEARANCE_MM,
                    ">=",
                    cat.SOURCE_SCREW_CLEARANCE,
                    f"{s[i].id}/{s[j].id}",
                )
            )
    return out


def check_plan(
    plan: Plan,
    segmentation=None,
    *,
    anatomies: dict | None = None,
    settings: PlannerSettings = PlannerSettings(),
    surfaces: dict | None = None,
) -> PlanReport:
    """Check every screw of a plan and every pair.

    Parameters
    ----------
    plan : Plan
    segmentation : VertebraSegmentation, optional
        Needed for levels missing from ``anatomies`` and for the facet check.
    anatomies : dict, optional
        ``{level: VertebraAnatomy}`` already computed.
    surfaces : dict, optional
        ``{level: SurfaceDistance}`` cache of vertebra surfaces; filled as needed
        from the segmentation (without a segmentation the checks use the grid alone).

    Returns
    -------
    PlanReport
        Per screw its checks and measurements, the pairs' clearances; ``passed``,
        ``failures``, and ``to_dict()`` for JSON.
    """
    anatomies = dict(anatomies or {})
    missing = [lv for lv in plan.levels() if lv not in anatomies]
    if missing:
        if segmentation is None:
            raise DesignError(f"no segmentation given for levels {', '.join(missing)}")
        anatomies.update(analyse_segmentation(segmentation, missing))
    surfaces = {} if surfaces is None else surfaces
    above_cache, bones = {}, {}
    screws = []
    for screw in plan.screws:
        an = anatomies[screw.level]
        if screw.level not in above_cache:
            up = None
            if segmentation is not None and screw.level in segmentation.levels.values():
                up = level_above(segmentation, screw.level)
            surface = level_surface(segmentation, up, surfaces) if up is not None else None
            above_cache[screw.level] = (
                None if surface is None else Bone(None, [surface], outside_band=cat.MIN_FACET_CLEARANCE_MM + 2.0)
            )
            own = level_surface(segmentation, screw.level, surfaces)
            bones[screw.level] = an.field if own is None else Bone(an.field, [own])
        screws.append(
            check_screw(screw, an, sdf=bones[screw.level], above_sdf=above_cache[screw.level], settings=settings)
        )
    return PlanReport(tuple(screws), tuple(pair_checks(plan)))


def screw_summaries(plan: Plan, report: PlanReport, screw_ids=None) -> tuple[dict, ...]:
    """One JSON-ready row per screw: its size and place, breach grade and distance,
    thinnest isthmus wall, angles, whether its checks passed and, when the plan has
    it, the bone density it sits in. ``screw_ids`` defaults to every screw reported."""
    rows = []
    for r in report.screws if screw_ids is None else (report.screw(i) for i in screw_ids):
        m = r.measured
        walls = [w for w in m.isthmus_walls_mm.values() if w is not None]
        bone = plan.planning.get(r.id, {}).get("bone_quality")
        rows.append(
            {
                **plan.screw(r.id).as_dict(),
                **json_ready(
                    {
                        "grade": m.breach.grade,
                        "breach_mm": m.breach.distance_mm,
                        "breach_direction": m.breach.direction,
                        "min_isthmus_wall_mm": min(walls) if walls else None,
                        "medial_angle_deg": m.medial_angle_deg,
                        "cranial_angle_deg": m.cranial_angle_deg,
                        "checks_passed": r.passed,
                    }
                ),
                **({"bone_quality": bone} if bone is not None else {}),
            }
        )
    return tuple(rows)
