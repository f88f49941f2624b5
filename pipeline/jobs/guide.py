"""The ``guide`` and ``check-guide`` jobs: pedicle-screw plans and drill guides, checked.

``run_guide`` plans screws (or takes the user's plan), checks the plan, builds one
drill guide per vertebra, checks each guide, and writes ``plan.json``,
``guides/<LEVEL>-guide.stl`` and ``guide`` records in ``manifest.json``.
``run_check_guide`` checks any plan and guide STL (osteoprint's or another
tool's) against the scan and returns the report.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, OsteoprintError
from ..exchange.atomic import staged_output, write_bytes_atomic
from ..exchange.manifest import manifest_bytes, merge_prints
from ..exchange.plan_files import plan_json, read_plan
from ..exchange.stl import read_stl, write_stl
from ..guide import GuideDesign, Plan, analyse_segmentation, build_guide, check_guide, check_plan, plan_screws
from ..guide.augmentation import with_bone_advice
from ..guide.guide_checks import guide_bone
from ..printing import PROCESSES
from ..prints import print_record
from ..segment import segment_vertebrae
from .common import Quiet, drop_kind, read_scan, segmentation_entry, start_manifest, write_label_map
from .deliver import remove_stale_outputs, stage_folder_outputs, study_for

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

    def design(self) -> GuideDesign:
        return GuideDesign(clearance_mm=self.clearance_mm, sleeve_length_mm=self.sleeve_length_mm,
                           drill_diameter_mm=self.drill_mm)


def _validate(options: GuideOptions) -> None:
    """Refuse impossible options before the long steps (one line each)."""
    if options.process not in PROCESSES:
        raise OsteoprintError(f"unknown printing process {options.process!r} (known: {', '.join(PROCESSES)})")
    if not 0.0 <= options.clearance_mm <= 1.0:
        raise OsteoprintError(f"clearance {options.clearance_mm} mm is outside 0-1 mm")
    if not 5.0 <= options.sleeve_length_mm <= 40.0:
        raise OsteoprintError(f"sleeve length {options.sleeve_length_mm} mm is outside 5-40 mm")
    if not 0.5 <= options.drill_mm <= 6.0:
        raise OsteoprintError(f"drill diameter {options.drill_mm} mm is outside 0.5-6 mm")


def _same_scan(plan: Plan, volume, plan_path) -> None:
    if plan.series_hash and volume.info.series_hash and plan.series_hash != volume.info.series_hash:
        raise InputError(plan_path, f"the plan belongs to another scan (series {plan.series_hash}, "
                                    f"this scan {volume.info.series_hash}); its coordinates do not apply")


def _screw_summary(plan: Plan, plan_report: dict, screw_ids: list) -> list:
    rows = []
    by_id = {r["id"]: r for r in plan_report["screws"]}
    for sid in screw_ids:
        s = plan.screw(sid)
        r = by_id[sid]
        breach = next(c for c in r["checks"] if c["name"] == "breach")
        walls = [w for w in r["measured"]["isthmus_walls_mm"].values() if w is not None]
        bone = plan.planning.get(sid, {}).get("bone_quality")
        rows.append({**s.as_dict(), "grade": breach["details"]["grade"], "breach_mm": breach["value"],
                     "breach_direction": breach["details"]["direction"],
                     "min_isthmus_wall_mm": min(walls) if walls else None,
                     "medial_angle_deg": r["measured"]["medial_angle_deg"],
                     "cranial_angle_deg": r["measured"]["cranial_angle_deg"], "checks_passed": r["passed"],
                     **({"bone_quality": bone} if bone is not None else {})})
    return rows


def run_guide(scan: str | os.PathLike, out_dir: str | os.PathLike, options: GuideOptions = GuideOptions(),
              progress=None, *, volume=None, segmentation=None, bone_quality=None, deliver: bool = True,
              made: dict | None = None) -> dict:
    """Plan (or take) pedicle screws, build and check a drill guide per vertebra, write them.

    Writes ``plan.json``, ``guides/<LEVEL>-guide.stl`` and ``guide`` records (every
    plan and guide check, the plan's summary) in ``manifest.json``; returns the
    manifest. Nothing is written if any step fails; guides of an earlier run that
    this run did not make are removed (``plan.json`` describes this run's screws).
    A failing check does not stop the job: it is recorded (``checks_passed``).
    Screws in vertebrae whose trabecular density is in the likely-osteoporosis band
    carry augmentation advice (:mod:`pipeline.guide.augmentation`); ``bone.json`` is
    written beside the plan. The folder's ``labels.png``, ``prints.3mf``,
    ``report.html`` (and DICOM prints with ``options.dicom``) are rewritten.
    ``volume``, ``segmentation`` and ``bone_quality`` spare reading, segmenting and
    measuring again (``osteoprint run``); ``deliver=False`` leaves out the picture,
    3MF, report and DICOM and adds the guides' meshes to ``made`` (print file ->
    mesh) instead.
    """
    from .bone import measure, stage_bone
    from .model import segment

    progress = progress or Quiet()
    _validate(options)
    design = options.design()
    user_plan = read_plan(options.plan) if options.plan else None
    volume = volume if volume is not None else read_scan(scan, options.series, progress)
    if user_plan is not None:
        _same_scan(user_plan, volume, options.plan)
    study = study_for(scan, volume, options.dicom and deliver, progress)
    seg = segmentation if segmentation is not None else segment(volume, progress=progress)
    names = list(seg.levels.values())
    if user_plan is not None:
        levels = [lv for lv in user_plan.levels() if not options.levels or lv in options.levels]
    else:
        levels = list(options.levels) if options.levels else [n for n in names if n != "S1"]
    missing = [lv for lv in levels if lv not in names]
    if missing:
        raise OsteoprintError(f"levels {', '.join(missing)} are not in the segmentation (found {', '.join(names)})")
    if not levels:
        raise OsteoprintError("no level to plan: the plan has no screw at the requested levels")
    progress.stage(f"finding pedicles: {', '.join(levels)}")
    anatomies = analyse_segmentation(seg, levels)
    for an in anatomies.values():
        for w in an.warnings:
            progress.note(f"warning: {w}")
    if user_plan is not None:
        plan = Plan(tuple(s for s in user_plan.screws if s.level in levels), user_plan.series_hash or
                    volume.info.series_hash, user_plan.source, user_plan.planning)
    else:
        progress.stage("planning screws")
        plan = plan_screws(anatomies=anatomies, series_hash=volume.info.series_hash)
        for info in plan.planning.values():
            for w in info.get("warnings", []):
                progress.note(f"warning: {w}")
    bone = bone_quality if bone_quality is not None else measure(volume, seg, progress)
    plan = with_bone_advice(plan, bone, anatomies)
    for s in plan.screws:
        advice = plan.planning[s.id]["bone_quality"].get("advice")
        if advice:
            progress.note(f"{s.id}: {advice}")
    progress.stage("checking the plan")
    surfaces = {}
    plan_report = check_plan(plan, seg, anatomies=anatomies, surfaces=surfaces)
    for c in plan_report["failed"]:
        progress.note(f"plan check failed: {c['name']} ({c['subject']}): {c['value']} {c['unit']}")
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
        report = check_guide(guide.mesh, screws, seg, bone=guide.bone, anatomy=anatomies[level], design=design,
                             process=options.process, material_class=GUIDE_MATERIAL_CLASS, quality=guide.quality,
                             surfaces=surfaces)
        for name in report["failed"]:
            progress.note(f"guide check failed: {level}: {name}")
        built.append((level, screws, guide, report))
    manifest = start_manifest(volume, out_dir)
    write_labels = "segmentation" not in manifest
    if write_labels:
        manifest["segmentation"] = segmentation_entry(seg)
    records, meshes = [], {}
    plan_text = plan_json(plan).encode()
    progress.stage("writing guides")
    with staged_output(out_dir) as stage:
        if write_labels:
            write_label_map(stage.path("segmentation.nii.gz"), seg, volume)
        stage.path("plan.json").write_bytes(plan_text)
        for level, screws, guide, report in built:
            rel = f"guides/{level}-guide.stl"
            sha = write_stl(stage.path(rel), guide.mesh, f"{level} drill guide")
            meshes[rel] = guide.mesh
            records.append(_record(guide, report, plan, plan_report, screws, rel, sha, options))
        manifest = merge_prints(drop_kind(manifest, "guide"), records)
        manifest["parameters"]["guide"] = {
            "levels": levels, "plan": "user" if user_plan is not None else "osteoprint",
            "plan_file": "plan.json", "plan_sha256": hashlib.sha256(plan_text).hexdigest(),
            "process": options.process, "material": options.material, "design": design.as_dict(),
        }
        manifest = stage_bone(stage, manifest, bone, volume.info.series_hash)
        if deliver:
            manifest = stage_folder_outputs(stage, manifest, volume=volume, segmentation=seg, meshes=meshes,
                                            study=study, progress=progress)
        stage.path("manifest.json").write_bytes(manifest_bytes(manifest))
    _remove_stale(Path(out_dir) / "guides", {Path(r["file"]).name for r in records})
    if deliver:
        remove_stale_outputs(out_dir, manifest)
    if made is not None:
        made.update(meshes)
    return manifest


def _record(guide, report: dict, plan: Plan, plan_report: dict, screws: list, rel: str, sha: str,
            options: GuideOptions) -> dict:
    ids = [s.id for s in screws]
    screw_checks = [c for r in plan_report["screws"] if r["id"] in ids for c in r["checks"]]
    pair_checks = [c for c in plan_report["pairs"] if set(c["subject"].split("/")) <= set(ids)]
    plan_ok = all(c["passed"] is not False for c in screw_checks + pair_checks)
    facts = report["facts"]
    return print_record(
        guide.mesh, file=rel, kind="guide", label=f"{guide.level} drill guide", sha256=sha,
        quality=guide.quality, purpose=PURPOSE, smallest_feature_mm=float(facts["thinnest_wall_mm"] or 0.0),
        extra={
            "level": guide.level,
            "material": options.material,
            "checks_passed": bool(report["passed"] and plan_ok),
            "plan": {"source": plan.source, "screws": _screw_summary(plan, plan_report, ids), "passed": plan_ok},
            "plan_checks": screw_checks + pair_checks,
            "guide_checks": report["checks"],
            "failed": report["failed"] + [f"{c['name']} ({c['subject']})" for c in screw_checks + pair_checks
                                          if c["passed"] is False],
            "measured": facts,
            "design": guide.design.as_dict(),
            "placement_direction_lps": [round(float(v), 5) for v in guide.placement_direction],
            "contact_pads_lps": [[round(float(v), 3) for v in p] for p in guide.pads],
        },
    )


def _remove_stale(folder: Path, written: set[str]) -> None:
    """Remove guide STLs of an earlier run that this run did not produce."""
    if folder.is_dir():
        for f in folder.glob("*-guide.stl"):
            if f.name not in written:
                f.unlink()


def _served_screws(plan: Plan, mesh, reach_mm: float = 10.0) -> list:
    """The plan's screws whose entry lies within ``reach_mm`` of the guide's surface."""
    from scipy.spatial import cKDTree

    tree = cKDTree(np.asarray(mesh.vertices))
    return [s for s in plan.screws if tree.query(s.entry)[0] <= reach_mm]


def run_check_guide(scan: str | os.PathLike, plan_path: str | os.PathLike, guide_path: str | os.PathLike,
                    report_path: str | os.PathLike | None = None, progress=None, *, series: str | None = None,
                    drill_mm: float = GuideDesign.drill_diameter_mm, clearance_mm: float = GuideDesign.clearance_mm,
                    process: str = "vat_photopolymerization") -> dict:
    """Check a screw plan and a drill-guide STL (from any tool) against the scan.

    The screws checked are those of the plan whose entry lies within 10 mm of the
    guide; the guide's sleeves are recovered from the mesh, not taken from the plan.
    ``drill_mm`` and ``clearance_mm`` are the drill the sleeves must guide and the
    clearance the guide was designed with (reported next to the measured one).

    Returns
    -------
    dict
        JSON-ready report: ``passed`` (false when any plan or guide check fails),
        ``plan_checks`` and ``guide_checks`` (flat lists of checks: name, subject,
        value, unit, threshold, comparison, source, passed, details), ``failed``
        (``"name (subject)"``), ``plan.screws`` (per screw: size, grade, breach, wall,
        angles), ``measured`` (guide figures), the files' SHA-256 and the scan's hash.
        Written atomically to ``report_path`` when given.
    """
    progress = progress or Quiet()
    if process not in PROCESSES:
        raise OsteoprintError(f"unknown printing process {process!r} (known: {', '.join(PROCESSES)})")
    plan = read_plan(plan_path)
    mesh = read_stl(guide_path)
    screws = _served_screws(plan, mesh)
    if not screws:
        raise InputError(guide_path, f"no screw of the plan {plan_path} enters bone within 10 mm of this guide")
    volume = read_scan(scan, series, progress)
    _same_scan(plan, volume, plan_path)
    progress.stage("segmenting vertebrae")
    seg = segment_vertebrae(volume)
    levels = list(dict.fromkeys(s.level for s in screws))
    missing = [lv for lv in levels if lv not in seg.levels.values()]
    if missing:
        raise InputError(plan_path, f"levels {', '.join(missing)} of the plan are not in the scan's segmentation "
                                    f"(found {', '.join(seg.levels.values())})")
    progress.stage(f"finding pedicles: {', '.join(levels)}")
    anatomies = analyse_segmentation(seg, levels)
    sub = Plan(tuple(screws), plan.series_hash, plan.source)
    surfaces = {}
    progress.stage("checking the plan")
    plan_report = check_plan(sub, seg, anatomies=anatomies, surfaces=surfaces)
    progress.stage("checking the guide")
    design = GuideDesign(clearance_mm=clearance_mm, drill_diameter_mm=drill_mm)
    anatomy = anatomies[levels[0]]
    bone = guide_bone(seg, anatomy.frame, mesh, surfaces=surfaces)
    guide_report = check_guide(mesh, screws, seg, bone=bone, anatomy=anatomy, design=design, process=process,
                               material_class=GUIDE_MATERIAL_CLASS, surfaces=surfaces)
    plan_checks = [c for r in plan_report["screws"] for c in r["checks"]] + plan_report["pairs"]
    failed = [f"{c['name']} ({c['subject']})" for c in plan_checks if c["passed"] is False] + guide_report["failed"]
    report = {
        "passed": bool(plan_report["passed"] and guide_report["passed"]),
        "scan": {"series_hash": volume.info.series_hash},
        "plan": {"file": Path(plan_path).name, "sha256": _sha256(plan_path),
                 "screws": _screw_summary(sub, plan_report, [s.id for s in screws])},
        "guide": {"file": Path(guide_path).name, "sha256": _sha256(guide_path), "levels": levels},
        "failed": failed,
        "plan_checks": plan_checks,
        "guide_checks": guide_report["checks"],
        "measured": guide_report["facts"],
    }
    if report_path is not None:
        write_bytes_atomic(report_path, (json.dumps(report, indent=2, allow_nan=False) + "\n").encode())
    for name in failed:
        progress.note(f"check failed: {name}")
    return report


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
