"""The ``bone`` job, and the bone-quality record every job adds to its manifest.

``run_bone`` reads and segments the scan, measures the trabecular density of every
vertebral body (:mod:`pipeline.bone_quality`) and writes ``bone.json`` and the
manifest's ``bone_quality`` block. The model, scaffold and guide jobs call
:func:`measure` and :func:`stage_bone` so that every manifest carries the same
values, with ``bone.json`` beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..bone_quality import BoneQuality, measure_bone_quality
from ..exchange.bone_files import bone_json_bytes
from .common import (
    Quiet,
    check_output,
    finish_result,
    read_volume,
    require_vertebrae,
    segment,
    segmentation_entry,
    staged_result,
    start_manifest,
    write_label_map,
)

BONE_FILE = "bone.json"


@dataclass(frozen=True)
class BoneOptions:
    """Options of the ``bone`` job.

    Attributes
    ----------
    series : str, optional
        DICOM series to read (hash, number or index), as for every job.
    dicom : bool
        Also write the folder's prints as DICOM Encapsulated STL (see ``model``).
    """

    series: str | None = None
    dicom: bool = False


def measure(volume, segmentation, progress=None, fractures=None) -> BoneQuality:
    """Bone quality of the scan, reporting its warnings and screening line to ``progress``."""
    progress = progress or Quiet()
    progress.stage("measuring trabecular bone density")
    bone = measure_bone_quality(segmentation, volume, fractures=fractures)
    for w in bone.warnings:
        progress.note(f"warning: {w}")
    return bone


def stage_bone(stage, manifest: dict, bone: BoneQuality, series_hash: str) -> dict:
    """Write ``bone.json`` into ``stage`` and put its record in ``manifest`` (returned)."""
    record = bone.to_dict()
    stage.path(BONE_FILE).write_bytes(bone_json_bytes(record, series_hash))
    out = dict(manifest)
    out["bone_quality"] = {"file": BONE_FILE, **record}
    return out


def run_bone(
    scan: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: BoneOptions = BoneOptions(),
    progress=None,
    *,
    volume=None,
    segmentation=None,
) -> dict:
    """Trabecular density per vertebra and the osteoporosis screening flag of a scan.

    Writes ``bone.json`` and the ``bone_quality`` block of ``manifest.json`` (created,
    with the label map, when absent), and the folder's ``labels.png``,
    ``report.html`` and ``prints.3mf``; returns the manifest. The folder's result is
    replaced whole, or not at all; a scan without a vertebra is a failure
    (:class:`~pipeline.errors.NothingToPrint`). ``volume`` and ``segmentation``
    spare reading and segmenting again.
    """
    from .deliver import study_for

    progress = progress or Quiet()
    check_output(out_dir, scan)
    volume = volume if volume is not None else read_volume(scan, options.series, progress)
    study = study_for(scan, volume, options.dicom, progress)
    seg = segmentation if segmentation is not None else segment(volume, progress=progress)
    require_vertebrae(seg, scan)
    bone = measure(volume, seg, progress)
    progress.stage("writing the bone-quality record")
    with staged_result(out_dir, scan) as stage:
        manifest = start_manifest(volume, stage, progress)
        if "segmentation" not in manifest:
            manifest["segmentation"] = segmentation_entry(seg)
            write_label_map(stage.path("segmentation.nii.gz"), seg, volume)
        manifest = stage_bone(stage, manifest, bone, volume.info.series_hash)
        manifest = finish_result(
            stage,
            manifest,
            prints_required=False,
            progress=progress,
            deliver={"volume": volume, "segmentation": seg, "study": study},
        )
    return manifest
