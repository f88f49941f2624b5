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
from ..exchange.atomic import staged_output
from ..exchange.bone_files import bone_json_bytes
from ..exchange.manifest import manifest_bytes
from .common import Quiet, read_scan, segmentation_entry, start_manifest, write_label_map

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


def run_bone(scan: str | os.PathLike, out_dir: str | os.PathLike, options: BoneOptions = BoneOptions(),
             progress=None, *, volume=None, segmentation=None) -> dict:
    """Trabecular density per vertebra and the osteoporosis screening flag of a scan.

    Writes ``bone.json`` and the ``bone_quality`` block of ``manifest.json`` (created,
    with the label map, when absent), and rewrites the folder's ``labels.png``,
    ``report.html`` and ``prints.3mf``; returns the manifest. Nothing is written if a
    step fails. ``volume`` and ``segmentation`` spare reading and segmenting again.
    """
    from .deliver import remove_stale_outputs, stage_folder_outputs, study_for
    from .model import segment

    progress = progress or Quiet()
    volume = volume if volume is not None else read_scan(scan, options.series, progress)
    study = study_for(scan, volume, options.dicom, progress)
    seg = segmentation if segmentation is not None else segment(volume, progress=progress)
    bone = measure(volume, seg, progress)
    manifest = start_manifest(volume, out_dir)
    write_labels = "segmentation" not in manifest
    if write_labels:
        manifest["segmentation"] = segmentation_entry(seg)
    progress.stage("writing the bone-quality record")
    with staged_output(out_dir) as stage:
        if write_labels:
            write_label_map(stage.path("segmentation.nii.gz"), seg, volume)
        manifest = stage_bone(stage, manifest, bone, volume.info.series_hash)
        manifest = stage_folder_outputs(stage, manifest, volume=volume, segmentation=seg, study=study,
                                        progress=progress)
        stage.path("manifest.json").write_bytes(manifest_bytes(manifest))
    remove_stale_outputs(out_dir, manifest)
    return manifest
