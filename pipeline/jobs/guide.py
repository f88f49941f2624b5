"""The ``guide`` and ``check-guide`` jobs: pedicle-screw plans and drill guides, checked.

``run_guide`` plans screws (or takes the user's plan), checks the plan, builds one
drill guide per vertebra, checks each guide, and writes ``plan.json``,
``guides/<LEVEL>-guide.stl`` and ``guide`` records in ``manifest.json``.
``run_check_guide`` checks any plan and guide STL (osteoprint's or another
tool's) against the scan and returns the report. Both read the scan once and
segment it once, with the user's thresholds; every decision is the guide stage's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import InputError, NothingToPrint, OptionError
from ..exchange.atomic import check_output_file
from ..exchange.check_report import write_check_report
from ..exchange.manifest import file_sha256, merge_prints
from ..exchange.plan_files import read_plan, write_plan
from ..exchange.stl import read_stl, write_stl
from ..guide import (
    GuideCheckReport,
    GuideDesign,
    GuideReport,
    Plan,
    PlanReport,
    analyse_segmentation,
    build_guide,
    check_guide,
    check_plan,
    plan_screws,
    screw_summaries,
    screws_served,
)
from ..guide.augmentation import with_bone_advice
from ..guide.guide_checks import guide_bone
from ..printing import PROCESSES, min_feature_mm, print_record
from . import options as check
from .common import (
    Quiet,
    check_output,
    drop_kind,
    finish_result,
    read_volume,
    require_levels,
    require_vertebrae,
    segment,
    stage_segmentation,
    staged_result,
    start_manifest,
)

#: Material class of a guide's material for the process minima (resins and PA12 alike).
GUIDE_MATERIAL_CLASS = "polymer"
PURPOSE = "surgical_guide"


@dataclass(frozen=True)
class GuideOptions:
    """Options of the ``guide`` job (mm).

    Attributes
    ----------
    series : str, optional
        DICOM series to read (hash, number or index), as for every job.
    levels : tuple of str, optional
        Vertebrae to plan and guide (default: every named level but S1; with a
        plan, the plan's levels).
    plan : str, optional
        A screw plan JSON (docs/plan-format.md) to check and build from instead of
        planning.
    clearance_mm, sleeve_length_mm, drill_mm : float
        Guide-bone clearance at the contact pads, sleeve length, drill (or K-wire)
        diameter; see :class:`pipeline.guide.GuideDesign`.
    process : str
        Printing process the guide is checked for (minimum wall).
    material : str
        Material named in the manifest, e.g. "surgical-guide resin" or "PA12".
    dicom : bool
        Also write every print as a DICOM Encapsulated STL in the CT's study.
    preset, hu_low, hu_high
        Bone thresholds of the segmentation (as for ``model``).
    """

    series: str | None = None
    levels: tuple[str, ...] | None = None
    plan: str | None = None
    clearance_mm: float = GuideDesign.clearance_mm
    sleeve_length_mm: float = GuideDesign.sleeve_length_mm
    drill_mm: float = GuideDesign.drill_diameter_mm
    process: str = "vat_photopolymerization"
    material: str = "surgical-guide resin"
    dicom: bool = False
    preset: str = "bone"
    hu_low: float | None = None
    hu_high: float | None = None

    def __post_init__(self):
        """Refuse impossible options before the long steps (one line each)."""
        check.hu_thresholds(self.preset, self.hu_low, self.hu_high)
        object.__setattr__(self, "levels", check.levels("--levels", self.levels))
        if self.plan is not None and not str(self.plan).strip():
            raise OptionError("--plan", repr(self.plan), "no plan file given")
        check.choice("--guide-process", self.process, PROCESSES)
        check.number("--clearance", self.clearance_mm, 0.0, 1.0, unit="mm")
        check.number("--sleeve-length", self.sleeve_length_mm, 5.0, 40.0, unit="mm")
        check.number("--drill", self.drill_mm, 0.5, 6.0, unit="mm")

    def design(self) -> GuideDesign:
        return GuideDesign(
            clearance_mm=self.clearance_mm, sleeve_length_mm=self.sleeve_length_mm, drill_diameter_mm=self.drill_mm
        )


def _same_scan(plan: Plan, volume, plan_path) -> None:
    if plan.series_hash and volume.info.series_hash and plan.series_hash != volume.info.series_hash:
        raise InputError(
            plan_path,
            f"the plan belongs to another scan (series {plan.series_hash}, "
            f"this scan {volume.info.series_hash}); its coordinates do not apply",
        )


@dataclass(frozen=True)
class GuidedLevel:
    """One vertebra's screws, its drill guide and the guide's checks."""

    level: str
    screws: tuple
    guide: object
    report: GuideReport


@dataclass(frozen=True)
class GuideSet:
    """Screws planned (or taken) and checked, and a checked drill guide per level."""

    plan: Plan
    plan_report: PlanReport
    levels: tuple
    built: tuple  # GuidedLevel per guided level
    user_plan: bool


def run_guide(
    scan: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: GuideOptions = GuideOptions(),
    progress=None,
    *,
    volume=None,
    segmentation=None,
    bone_quality=None,
) -> dict:
    """Plan (or take) pedicle screws, build and check a drill guide per vertebra, write them.

    Writes ``plan.json``, ``guides/<LEVEL>-guide.stl``, the label map the guides
    were made from and ``guide`` records (every plan and guide check, the plan's
    summary) in ``manifest.json``; returns the manifest. The folder's result is
    replaced whole or not at all; guides of an earlier run that this run did not
    make are not kept (``plan.json`` describes this run's screws). A failing check
    does not stop the job: it is recorded (``checks_passed``). Screws in vertebrae
    whose trabecular density is in the likely-osteoporosis band carry augmentation
    advice (:mod:`pipeline.guide.augmentation`); ``bone.json`` is written beside the
    plan. ``volume``, ``segmentation`` and ``bone_quality`` spare reading,
    segmenting and measuring again (``osteoprint run``).
    """
    from .bone import measure, stage_bone
    from .deliver import study_for

    progress = progress or Quiet()
    check_output(out_dir, scan)
    user_plan = Plan.from_dict(read_plan(options.plan)) if options.plan else None
    volume = volume if volume is not None else read_volume(scan, options.series, progress)
    if user_plan is not None:
        _same_scan(user_plan, volume, options.plan)
    study = study_for(scan, volume, options.dicom, progress)
    seg = segmentation if segmentation is not None else segment(volume, options, progress)
    require_vertebrae(seg, scan)
    bone = bone_quality if bone_quality is not None else measure(volume, seg, progress)
    guides = design_guides(seg, volume, options, user_plan, progress, bone=bone)
    progress.stage("writing guides")
    with staged_result(out_dir, scan) as stage:
        meshes: dict = {}
        manifest = stage_segmentation(stage, start_manifest(volume, stage, progress), seg, volume)
        manifest = add_guides(stage, manifest, guides, options, made=meshes)
        manifest = stage_bone(stage, manifest, bone, volume.info.series_hash)
        manifest = finish_result(
            stage,
            manifest,
            progress=progress,
            deliver={"volume": volume, "segmentation": seg, "meshes": meshes, "study": study},
        )
    return manifest


def _levels(seg, options: GuideOptions, user_plan: Plan | None) -> list:
    if user_plan is not None:
        return [lv for lv in user_plan.levels() if not options.levels or lv in options.levels]
    return list(options.levels) if options.levels else [n for n in seg.levels.values() if n != "S1"]


def design_guides(
    seg,
    volume,
    options: GuideOptions,
    user_plan: Plan | None = None,
    progress=None,
    option: str = "--levels",
    *,
    bone=None,
) -> GuideSet:
    """Plan (or take) the screws at ``options.levels``, check them, build and check
    a guide per level (no files). ``option`` names the levels' flag in messages;
    with ``bone`` (:class:`~pipeline.bone_quality.BoneQuality`) screws in weak
    vertebrae carry augmentation advice."""
    progress = progress or Quiet()
    design = options.design()
    levels = _levels(seg, options, user_plan)
    require_levels(seg, levels, option)
    if not levels:
        raise NothingToPrint(
            options.plan,
            "no level to plan: no screw of the plan is at the requested levels"
            if user_plan is not None
            else "no vertebra to plan screws in",
        )
    progress.stage(f"finding pedicles: {', '.join(levels)}")
    anatomies = analyse_segmentation(seg, levels)
    for an in anatomies.values():
        for w in an.warnings:
            progress.note(f"warning: {w}")
    if user_plan is not None:
        plan = Plan(
            tuple(s for s in user_plan.screws if s.level in levels),
            user_plan.series_hash or volume.info.series_hash,
            user_plan.source,
            user_plan.planning,
        )
    else:
        progress.stage("planning screws")
        plan = plan_screws(anatomies=anatomies, series_hash=volume.info.series_hash)
        for info in plan.planning.values():
            for w in info.get("warnings", []):
                progress.note(f"warning: {w}")
    if bone is not None:
        plan = with_bone_advice(plan, bone, anatomies)
        for s in plan.screws:
            advice = plan.planning[s.id]["bone_quality"].get("advice")
            if advice:
                progress.note(f"{s.id}: {advice}")
    progress.stage("checking the plan")
    surfaces = {}
    plan_report = check_plan(plan, seg, anatomies=anatomies, surfaces=surfaces)
    for f in plan_report.failures:
        progress.note(f"plan check failed: {f}: {f.detail}")
    built = []
    for level in levels:
        screws = plan.by_level(level)
        if not screws:
            continue
        progress.stage(f"building the {level} guide")
        guide = build_guide(screws, anatomies[level], seg, design, surfaces=surfaces)
        for w in guide.warnings:
            progress.note(f"warning: {level}: {w}")
        progress.stage(f"checking the {level} guide")
        report = check_guide(
            guide.mesh,
            screws,
            seg,
            bone=guide.bone,
            anatomy=anatomies[level],
            design=design,
            process=options.process,
            material_class=GUIDE_MATERIAL_CLASS,
            process_min_wall_mm=min_feature_mm(options.process, GUIDE_MATERIAL_CLASS),
            quality=guide.quality,
            surfaces=surfaces,
        )
        for f in report.failures:
            progress.note(f"guide check failed: {level}: {f}")
        built.append(GuidedLevel(level, tuple(screws), guide, report))
    if not built:
        raise NothingToPrint(options.plan, "no drill guide made: no screw at the requested levels")
    return GuideSet(plan, plan_report, tuple(levels), tuple(built), user_plan is not None)


def add_guides(stage, manifest: dict, guides: GuideSet, options: GuideOptions, made: dict | None = None) -> dict:
    """Write ``plan.json`` and the guides into ``stage``; return the manifest with
    their records (replacing earlier guides). The meshes made are added to ``made``
    (print file -> mesh) when given."""
    plan_sha = write_plan(stage.path("plan.json"), guides.plan.as_dict())
    records = []
    for item in guides.built:
        rel = f"guides/{item.level}-guide.stl"
        sha = write_stl(stage.path(rel), item.guide.mesh, f"{item.level} drill guide")
        if made is not None:
            made[rel] = item.guide.mesh
        records.append(_record(item, guides, rel, sha, options))
    manifest = merge_prints(drop_kind(manifest, "guide"), records)
    manifest["parameters"]["guide"] = {
        "levels": list(guides.levels),
        "plan": "user" if guides.user_plan else "osteoprint",
        "plan_file": "plan.json",
        "plan_sha256": plan_sha,
        "process": options.process,
        "material": options.material,
        "design": options.design().as_dict(),
    }
    return manifest


def _record(item: GuidedLevel, guides: GuideSet, rel: str, sha: str, options: GuideOptions) -> dict:
    ids = [s.id for s in item.screws]
    plan_part = guides.plan_report.of_screws(ids)
    guide, facts = item.guide, item.report.facts
    return print_record(
        guide.mesh,
        file=rel,
        kind="guide",
        label=f"{guide.level} drill guide",
        sha256=sha,
        quality=guide.quality,
        purpose=PURPOSE,
        smallest_feature_mm=float(facts.thinnest_wall_mm or 0.0),
        extra={
            "level": guide.level,
            "material": options.material,
            "checks_passed": bool(item.report.passed and plan_part.passed),
            "plan": {
                "source": guides.plan.source,
                "screws": list(screw_summaries(guides.plan, plan_part, ids)),
                "passed": plan_part.passed,
            },
            "plan_checks": [c.to_dict() for c in plan_part.checks],
            "guide_checks": [c.to_dict() for c in item.report.checks],
            "failed": [str(f) for f in item.report.failures + plan_part.failures],
            "measured": facts.to_dict(),
            "design": guide.design.as_dict(),
            "placement_direction_lps": [round(float(v), 5) for v in guide.placement_direction],
            "contact_pads_lps": [[round(float(v), 3) for v in p] for p in guide.pads],
        },
    )


def run_check_guide(
    scan: str | os.PathLike,
    plan_path: str | os.PathLike,
    guide_path: str | os.PathLike,
    report_path: str | os.PathLike | None = None,
    progress=None,
    *,
    series: str | None = None,
    drill_mm: float = GuideDesign.drill_diameter_mm,
    clearance_mm: float = GuideDesign.clearance_mm,
    process: str = "vat_photopolymerization",
    preset: str = "bone",
    hu_low: float | None = None,
    hu_high: float | None = None,
) -> GuideCheckReport:
    """Check a screw plan and a drill-guide STL (from any tool) against the scan.

    The screws checked are those of the plan whose entry lies within 10 mm of the
    guide (:func:`pipeline.guide.screws_served`); the guide's sleeves are recovered
    from the mesh, not taken from the plan. ``drill_mm`` and ``clearance_mm`` are
    the drill the sleeves must guide and the clearance the guide was designed with
    (reported next to the measured one); ``preset``, ``hu_low`` and ``hu_high`` the
    segmentation's bone thresholds.

    Returns
    -------
    GuideCheckReport
        ``passed`` (false when any plan or guide check fails), the plan's and the
        guide's reports, per screw size, grade, breach, wall and angles, the files'
        SHA-256 and the scan's hash; ``to_dict()`` is the JSON report, written
        atomically to ``report_path`` when given.
    """
    progress = progress or Quiet()
    options = GuideOptions(
        series=series,
        drill_mm=drill_mm,
        clearance_mm=clearance_mm,
        process=process,
        preset=preset,
        hu_low=hu_low,
        hu_high=hu_high,
    )
    if report_path is not None:
        check_output_file(report_path, not_same_as=(scan, plan_path, guide_path))
    plan = Plan.from_dict(read_plan(plan_path))
    mesh = read_stl(guide_path)
    screws = screws_served(plan, mesh)
    if not screws:
        raise InputError(guide_path, f"no screw of the plan {plan_path} enters bone within 10 mm of this guide")
    volume = read_volume(scan, options.series, progress)
    _same_scan(plan, volume, plan_path)
    seg = segment(volume, options, progress)
    require_vertebrae(seg, scan)
    levels = list(dict.fromkeys(s.level for s in screws))
    missing = [lv for lv in levels if lv not in seg.levels.values()]
    if missing:
        raise InputError(
            plan_path,
            f"levels {', '.join(missing)} of the plan are not in the scan's segmentation "
            f"(found {', '.join(seg.levels.values())})",
        )
    progress.stage(f"finding pedicles: {', '.join(levels)}")
    anatomies = analyse_segmentation(seg, levels)
    sub = Plan(tuple(screws), plan.series_hash, plan.source)
    surfaces = {}
    progress.stage("checking the plan")
    plan_report = check_plan(sub, seg, anatomies=anatomies, surfaces=surfaces)
    progress.stage("checking the guide")
    anatomy = anatomies[levels[0]]
    bone = guide_bone(seg, anatomy.frame, mesh, surfaces=surfaces)
    guide_report = check_guide(
        mesh,
        screws,
        seg,
        bone=bone,
        anatomy=anatomy,
        design=options.design(),
        process=process,
        material_class=GUIDE_MATERIAL_CLASS,
        process_min_wall_mm=min_feature_mm(process, GUIDE_MATERIAL_CLASS),
        surfaces=surfaces,
    )
    report = GuideCheckReport(
        plan_report,
        guide_report,
        screw_summaries(sub, plan_report),
        tuple(levels),
        volume.info.series_hash,
        file_sha256(plan_path),
        file_sha256(guide_path),
    )
    if report_path is not None:
        write_check_report(report_path, report.to_dict())
    for f in report.failures:
        progress.note(f"check failed: {f}")
    return report
