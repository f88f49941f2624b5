"""Pedicle-screw planning, patient-specific drill guides, and checks of plans and guides.

>>> from pipeline.guide import analyse_segmentation, plan_screws, check_plan    # doctest: +SKIP
>>> anatomies = analyse_segmentation(seg, ["L3", "L4"])
>>> plan = plan_screws(anatomies=anatomies)
>>> report = check_plan(plan, seg, anatomies=anatomies)
>>> guide = build_guide(plan.by_level("L3"), anatomies["L3"], seg)
>>> check_guide(guide.mesh, plan.by_level("L3"), seg, bone=guide.bone, anatomy=anatomies["L3"])

Modules: :mod:`.frames` (vertebra frame, angles, grids, grid signed distance),
:mod:`.anatomy` (body frame and walls from a mask), :mod:`.pedicle` (pedicle
isthmus), :mod:`.bone` (exact distance to the vertebra surface meshes),
:mod:`.catalogue` (screw sizes and every rule's threshold and source), :mod:`.plan`
(plan model), :mod:`.trajectory` (planner), :mod:`.breach` (Gertzbein-Robbins),
:mod:`.plan_checks` (checks of a screw plan), :mod:`.build` (guide geometry),
:mod:`.bore` (sleeve bores recovered from a mesh), :mod:`.guide_checks` (checks of
a drill guide), :mod:`.report` (their results: :class:`PlanReport`,
:class:`GuideReport`, :class:`Failure`).
All coordinates LPS mm; signed distances negative inside bone.
"""

from .anatomy import VertebraAnatomy, analyse_segmentation, analyse_vertebra
from .bone import Bone, SurfaceDistance, segmentation_surfaces, surface_mesh
from .bore import fit_bore
from .breach import Breach, gertzbein_robbins, measure_breach
from .build import Guide, GuideDesign, build_guide
from .guide_checks import check_guide, guide_bone, mesh_bone, screws_served
from .pedicle import Pedicle
from .plan import Plan, Screw
from .plan_checks import check_plan, check_screw, screw_summaries
from .report import Check, Failure, GuideCheckReport, GuideFacts, GuideReport, PlanReport, ScrewMeasurement, ScrewReport
from .trajectory import PlannerSettings, plan_screw, plan_screws

__all__ = [
    "Bone",
    "Breach",
    "Check",
    "Failure",
    "Guide",
    "GuideCheckReport",
    "GuideDesign",
    "GuideFacts",
    "GuideReport",
    "Pedicle",
    "Plan",
    "PlanReport",
    "PlannerSettings",
    "Screw",
    "ScrewMeasurement",
    "ScrewReport",
    "SurfaceDistance",
    "VertebraAnatomy",
    "analyse_segmentation",
    "analyse_vertebra",
    "build_guide",
    "check_guide",
    "check_plan",
    "check_screw",
    "fit_bore",
    "gertzbein_robbins",
    "guide_bone",
    "measure_breach",
    "mesh_bone",
    "plan_screw",
    "plan_screws",
    "screw_summaries",
    "screws_served",
    "segmentation_surfaces",
    "surface_mesh",
]
