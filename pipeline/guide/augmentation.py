"""Screw fixation in weak bone: advice per planned screw from the vertebra's measured density.

Pedicle-screw pull-out strength falls with bone mineral density (Halvorson TL et
al., Spine 1994;19:2415-2420). In osteoporotic bone two measures raise it: the
screw's outer diameter, which determines pull-out strength (Cho W, Cho SK, Wu C,
J Bone Joint Surg Br 2010;92:1061-1065), and cement (PMMA) augmentation, which
raised the pull-out force of screws in osteoporotic cadaver vertebrae by 460-620 N
(Leichtle CI et al., Bone Joint Res 2016;5:419-426). So a screw in a vertebra whose
trabecular attenuation is in the *likely osteoporosis* band (see
:mod:`pipeline.bone_quality.screening`; the L1 thresholds applied to the screw's own
level) carries that advice, with the diameter planned and the largest the isthmus
allows. It is advice for the surgeon, not a change to the plan.
"""

from __future__ import annotations

from dataclasses import replace

from ..bone_quality import screening as scr
from . import catalogue as cat
from .plan import Plan

SOURCES = (
    "Halvorson TL et al. Effects of bone mineral density on pedicle screw fixation. Spine 1994;19:2415-2420",
    "Cho W, Cho SK, Wu C. The biomechanics of pedicle screw-based instrumentation. J Bone Joint Surg Br "
    "2010;92:1061-1065 (outer diameter determines pull-out strength)",
    "Leichtle CI et al. Pull-out strength of cemented solid versus fenestrated pedicle screws in "
    "osteoporotic vertebrae. Bone Joint Res 2016;5:419-426",
)


def screw_bone_advice(level_density, diameter_mm: float, isthmus_width_mm: float | None) -> dict:
    """Bone-quality record and advice for one screw (JSON-ready).

    Parameters
    ----------
    level_density : VertebraDensity or None
        The screw's vertebra (:class:`pipeline.bone_quality.VertebraDensity`).
    diameter_mm : float
        Planned screw diameter, mm.
    isthmus_width_mm : float or None
        Outer isthmus width of the screw's pedicle, mm.

    Returns
    -------
    dict
        ``value_hu``, ``category``, ``advice`` (None when there is none) and ``reason``.
    """
    if level_density is None or level_density.value_hu is None:
        why = "not measured" if level_density is None else level_density.note or "not measured"
        return {
            "value_hu": None,
            "category": scr.NOT_ASSESSABLE,
            "advice": None,
            "reason": f"trabecular density of this vertebra: {why}",
        }
    value = float(level_density.value_hu)
    category = level_density.category
    out = {
        "value_hu": round(value, 1),
        "category": category,
        "advice": None,
        "method": "oval ROI" if level_density.roi is not None else "volumetric compartment",
    }
    if category == scr.LIKELY_OSTEOPOROSIS:
        largest = cat.choose_diameter(isthmus_width_mm) if isthmus_width_mm else None
        if largest is None:
            size = f"planned {diameter_mm:g} mm"
        elif diameter_mm >= largest:
            size = f"planned {diameter_mm:g} mm, the largest the isthmus width rules allow"
        else:
            size = (
                f"planned {diameter_mm:g} mm; the isthmus width rules allow up to {largest:g} mm "
                f"where the trajectory keeps its bone wall"
            )
        out["largest_diameter_mm"] = largest
        out["advice"] = f"consider cement (PMMA) augmentation or the largest diameter the pedicle allows ({size})"
        out["reason"] = (
            f"trabecular attenuation {value:.0f} HU <= {scr.OSTEOPOROSIS_MAX_HU:g} HU (likely "
            "osteoporosis): screw pull-out strength falls with bone density; a larger outer "
            "diameter and cement augmentation raise it"
        )
        out["sources"] = list(SOURCES)
    elif category == scr.INDETERMINATE:
        out["reason"] = (
            f"trabecular attenuation {value:.0f} HU is between {scr.OSTEOPOROSIS_MAX_HU:g} and "
            f"{scr.INDETERMINATE_MAX_HU:g} HU (indeterminate): bone density alone does not call "
            "for augmentation; DXA can settle it"
        )
    else:
        out["reason"] = f"trabecular attenuation {value:.0f} HU > {scr.INDETERMINATE_MAX_HU:g} HU (likely normal)"
    return out


def with_bone_advice(plan: Plan, bone_quality, anatomies: dict | None = None) -> Plan:
    """``plan`` whose ``planning[screw.id]["bone_quality"]`` holds each screw's advice.

    Parameters
    ----------
    plan : Plan
    bone_quality : BoneQuality
        From :func:`pipeline.bone_quality.measure_bone_quality` on the same scan.
    anatomies : dict, optional
        ``{level: VertebraAnatomy}`` for the isthmus widths (else the planner's
        record of them, if any).

    Returns
    -------
    Plan
        Same screws; the planning record extended.
    """
    planning = {k: dict(v) for k, v in plan.planning.items()}
    for s in plan.screws:
        info = planning.setdefault(s.id, {})
        width = info.get("isthmus_width_mm")
        if anatomies and s.level in anatomies and s.side in anatomies[s.level].pedicles:
            width = anatomies[s.level].pedicles[s.side].width_mm
        info["bone_quality"] = screw_bone_advice(bone_quality.level(s.level), s.diameter_mm, width)
    return replace(plan, planning=planning)
