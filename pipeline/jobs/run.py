"""``osteoprint run``: every print for a scan in one go — models, scaffolds, a guide.

The scan is read, segmented and its bone density measured once, and handed to each job.
"""

from __future__ import annotations

import os

from ..errors import OsteoprintError
from ..exchange.atomic import staged_output
from ..exchange.manifest import manifest_bytes
from .bone import measure
from .common import Quiet, read_scan
from .deliver import remove_stale_outputs, stage_folder_outputs, study_for
from .model import ModelOptions, run_model, segment
from .scaffold import ScaffoldOptions, run_scaffold


def guide_levels_for(segmentation, fractured: list[str]) -> tuple[str, ...]:
    """The level to guide when the user names none.

    Below a fracture the first intact lumbar or thoracic vertebra takes the screws of
    a short stabilisation; without a fracture, the middle lumbar level. Returns an
    empty tuple when no named lumbar or thoracic level is present.
    """
    names = [n for n in segmentation.levels.values() if n[0] in "TL"]
    if not names:
        return ()
    for level in fractured:
        if level in names and names.index(level) + 1 < len(names):
            return (names[names.index(level) + 1],)
    lumbar = [n for n in names if n.startswith("L")] or names
    return (lumbar[len(lumbar) // 2],)


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
    manifest's warnings, not treated as errors. The label picture, ``prints.3mf``,
    ``report.html`` and (with ``model.dicom``) the DICOM prints are written once, at
    the end, for all prints.
    """
    from .guide import GuideOptions, run_guide

    progress = progress or Quiet()
    volume = read_scan(scan, model.series, progress)
    study = study_for(scan, volume, model.dicom, progress)
    seg = segment(volume, model, progress)
    bone = measure(volume, seg, progress)
    made: dict = {}
    shared = {"volume": volume, "segmentation": seg, "bone_quality": bone, "deliver": False, "made": made}
    manifest = run_model(scan, out_dir, model, progress, **shared)
    notes = []
    fractured = []
    try:
        manifest = run_scaffold(scan, out_dir, scaffold, progress, **shared)
        fractured = [p["defect"].get("level") for p in manifest["prints"] if p["kind"] == "scaffold" and isinstance(p.get("defect"), dict)]
    except OsteoprintError as exc:
        notes.append(f"no scaffold: {exc}")
        progress.note(f"no scaffold: {exc}")
    guide = guide or GuideOptions()
    levels = guide.levels or guide_levels_for(seg, [f for f in fractured if f])
    if levels:
        from dataclasses import replace

        manifest = run_guide(scan, out_dir, replace(guide, levels=tuple(levels)), progress, **shared)
    else:
        notes.append("no guide: no named thoracic or lumbar level to plan screws in")
    manifest["warnings"] = sorted(set(manifest["warnings"]) | set(notes))
    with staged_output(out_dir) as stage:
        manifest = stage_folder_outputs(stage, manifest, volume=volume, segmentation=seg, study=study,
                                        meshes=made, progress=progress)
        stage.path("manifest.json").write_bytes(manifest_bytes(manifest))
    remove_stale_outputs(out_dir, manifest)
    return manifest
