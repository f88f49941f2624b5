"""``osteoprint run``: every print for a scan in one go — models, scaffolds, a guide.

The scan is read, segmented and its bone density measured once, everything is
built into one staging folder
and committed in one step: the models, scaffolds and guide land together, or
nothing does.
"""

from __future__ import annotations

import os
from dataclasses import replace

from ..errors import NothingToPrint
from ..guide.anatomy import default_guide_levels
from ..parallel import Background
from ..render import label_picture
from .common import (
    Quiet,
    check_output,
    finish_result,
    read_volume,
    require_levels,
    require_vertebrae,
    segment,
    staged_result,
    start_manifest,
)
from .model import ModelOptions, add_models, mesh_models
from .scaffold import ScaffoldOptions, add_scaffolds, defect_regions, make_scaffolds


def run_all(
    scan: str | os.PathLike,
    out_dir: str | os.PathLike,
    model: ModelOptions = ModelOptions(),
    scaffold: ScaffoldOptions = ScaffoldOptions(),
    guide=None,
    progress=None,
) -> dict:
    """Vertebra models, scaffolds for the fractures found and a drill guide.

    Returns the final manifest. A scan without a fracture gets no scaffold and a
    scan without named lumbar or thoracic levels no guide; both are said in the
    manifest's warnings, not treated as errors. Any other failure (a scan without
    a vertebra, a scaffold or guide that cannot be built, a level asked for that is
    not in the scan) fails the whole job, and nothing is written. The label
    picture, ``prints.3mf``, ``report.html`` and (with ``model.dicom``) the DICOM
    prints are made once, for all prints.
    """
    from ..defect import find_compression_fractures
    from ..exchange.plan_files import read_plan
    from ..guide import Plan
    from .bone import measure, stage_bone
    from .deliver import study_for
    from .guide import GuideOptions, _same_scan, add_guides, design_guides

    progress = progress or Quiet()
    guide = guide or GuideOptions()
    check_output(out_dir, scan)
    user_plan = Plan.from_dict(read_plan(guide.plan)) if guide.plan else None
    volume = read_volume(scan, model.series, progress)
    if user_plan is not None:
        _same_scan(user_plan, volume, guide.plan)
    study = study_for(scan, volume, model.dicom, progress)
    seg = segment(volume, model, progress)
    require_vertebrae(seg, scan)
    require_levels(seg, model.levels, "--levels")  # before the long steps
    require_levels(seg, guide.levels, "--guide-levels")
    notes = []
    # Found once: the bone density measurement leaves fracture zones out, and the
    # scaffolds fill them.
    progress.stage("finding compression fractures")
    fractures = find_compression_fractures(seg, volume)
    bone = measure(volume, seg, progress, fractures)
    progress.stage("finding defect regions")
    try:
        regions = defect_regions(volume, seg, scaffold, None if scaffold.level else fractures)
    except NothingToPrint as exc:
        if scaffold.defect != "auto" or scaffold.level:
            raise
        regions = []
        notes.append(f"no scaffold: {exc.problem}")
        progress.note(f"no scaffold: {exc.problem}")
    fractured = [r.info.get("level") for r in regions if r.info.get("source") == "compression fracture"]
    levels = guide.levels or default_guide_levels(seg, [f for f in fractured if f])
    # The vertebrae are meshed in forked processes first (no fork while a thread
    # runs); then the guide here and, beside it, the scaffolds and the label
    # picture: independent of each other and mostly numpy, they overlap on two cores.
    models = mesh_models(seg, model, progress)
    side = Background(_scaffolds_and_labels, volume, seg, regions, scaffold, progress, bone)
    guides = None
    if levels or user_plan is not None:
        guides = design_guides(
            seg,
            volume,
            replace(guide, levels=tuple(levels) or None),
            user_plan,
            progress,
            option="--guide-levels",
            bone=bone,
        )
    else:
        notes.append("no guide: no named thoracic or lumbar level to plan screws in")
    made, label_png = side.result()
    progress.stage("writing prints")
    with staged_result(out_dir, scan) as stage:
        manifest = start_manifest(volume, stage, progress)
        manifest = add_models(stage, manifest, volume, seg, models, model)
        meshes = {f"vertebrae/{m.level}.stl": m.mesh for m in models}
        if made:
            manifest = add_scaffolds(stage, manifest, made, scaffold, progress, made=meshes)
        if guides is not None:
            manifest = add_guides(stage, manifest, guides, guide, made=meshes)
        manifest = stage_bone(stage, manifest, bone, volume.info.series_hash)
        manifest["warnings"] = sorted(set(manifest["warnings"]) | set(notes))
        manifest = finish_result(
            stage,
            manifest,
            progress=progress,
            deliver={"volume": volume, "segmentation": seg, "meshes": meshes, "study": study, "label_png": label_png},
        )
    return manifest


def _scaffolds_and_labels(volume, seg, regions, scaffold: ScaffoldOptions, progress, bone):
    """The branch beside the guide: the scaffolds (if any), then the label picture."""
    made = make_scaffolds(seg, regions, scaffold, progress, bone=bone) if regions else ()
    if not seg.levels:
        return made, None
    progress.stage("drawing the label picture")
    return made, label_picture(volume, seg)
