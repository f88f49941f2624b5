"""What every job shares: reading the scan with progress, the result folder it
replaces whole, and the manifest it extends."""

from __future__ import annotations

import os
from contextlib import contextmanager

from ..errors import InputError, NothingToPrint, OptionError
from ..exchange.atomic import MANIFEST, Staging, check_output_folder, staged_output
from ..exchange.manifest import is_result_folder, manifest_bytes, new_manifest, read_manifest
from ..progress import Quiet, detail
from ..segment import VertebraSegmentation, segment_vertebrae
from ..volume import CTVolume, obliquity_deg

#: Largest angle between the scan's axes and the patient's that segmentation and
#: level naming are trusted with (they work on axial, sagittal or coronal slices;
#: the phantom rotated 30 deg in-plane still segments and names correctly, at 40
#: deg a level's centre moves by 7 mm).
MAX_OBLIQUITY_DEG = 20.0
#: Voxel sizes a CT of the spine can have, mm: a vertebral body 25-50 mm across
#: needs voxels well under 10 mm; below 0.05 mm is micro-CT of a specimen.
VOXEL_MM = (0.05, 10.0)


def read_volume(scan: str | os.PathLike, series: str | None = None, progress=None) -> CTVolume:
    """The scan's :class:`CTVolume`, checked for a CT of the spine, with skipped files
    and warnings reported to ``progress``.

    :func:`pipeline.exchange.scan.load_scan` reads the file and returns the volume and
    its read report; this is the jobs' reading step on top of it, hence the name.

    Raises :class:`InputError` as the reader does, and for a scan whose voxel sizes
    are outside :data:`VOXEL_MM` or whose axes are more than
    :data:`MAX_OBLIQUITY_DEG` from the patient's.
    """
    from ..exchange.scan import load_scan

    progress = progress or Quiet()
    progress.stage("reading scan")
    volume, report = load_scan(scan, series=series)
    for path, reason in report.skipped:
        detail(progress, f"skipped {path}: {reason}")
    for message in volume.info.warnings:
        progress.note(f"warning: {message}")
    sizes = volume.spacing
    if min(sizes) < VOXEL_MM[0] or max(sizes) > VOXEL_MM[1]:
        shown = " x ".join(f"{s:.3g}" for s in sizes)
        raise InputError(
            scan,
            f"voxels of {shown} mm are not those of a CT of the spine "
            f"({VOXEL_MM[0]:g} to {VOXEL_MM[1]:g} mm along every axis)",
        )
    angle = obliquity_deg(volume.affine)
    if angle > MAX_OBLIQUITY_DEG:
        raise InputError(
            scan,
            f"the image axes are oblique, {angle:.0f} deg from the patient's axes; vertebrae "
            f"are segmented in axial, sagittal or coronal scans (at most {MAX_OBLIQUITY_DEG:.0f} "
            "deg off): reformat the series to axial slices",
        )
    return volume


def segment(volume: CTVolume, options=None, progress=None) -> VertebraSegmentation:
    """Segment with a job's thresholds (``options.preset``, ``hu_low``, ``hu_high``;
    the bone preset without options), reporting warnings to ``progress``."""
    progress = progress or Quiet()
    progress.stage("segmenting vertebrae")
    if options is None:
        seg = segment_vertebrae(volume)
    else:
        seg = segment_vertebrae(volume, options.preset, low=options.hu_low, high=options.hu_high)
    for message in seg.warnings:
        progress.note(f"warning: {message}")
    return seg


def check_output(out_dir, scan=None):
    """The result folder, checked before any work (see :func:`check_output_folder`)."""
    return check_output_folder(out_dir, scan=scan, is_result=is_result_folder)


@contextmanager
def staged_result(out_dir, scan=None):
    """A :class:`Staging` for a job's result folder, committed whole on success."""
    with staged_output(out_dir, scan=scan, is_result=is_result_folder) as stage:
        yield stage


def require_vertebrae(seg: VertebraSegmentation, scan) -> None:
    """A scan without a vertebra makes no print: refuse it before anything is written."""
    if not seg.levels:
        raise NothingToPrint(
            scan, "no vertebra found (no bone region is thick enough to be a vertebral body): nothing to print"
        )


def require_levels(seg: VertebraSegmentation, levels, option: str) -> None:
    """Levels asked for with ``option`` must be in the segmentation (else OptionError)."""
    names = list(seg.levels.values())
    missing = [lv for lv in levels or () if lv not in names]
    if missing:
        raise OptionError(option, ",".join(levels), f"{', '.join(missing)} not in this scan (found {', '.join(names)})")


def segmentation_entry(seg: VertebraSegmentation) -> dict:
    """Manifest block describing the label map and the thresholds it was made with."""
    made_with = {k: seg.parameters[k] for k in ("threshold_preset", "hu_low", "hu_high") if k in seg.parameters}
    return {
        "file": "segmentation.nii.gz",
        "label_values": {name: int(value) for value, name in seg.levels.items()},
        "label_convention": seg.parameters.get("label_convention", ""),
        "levels_named": bool(seg.named),
        "naming_evidence": seg.evidence,
        **made_with,
    }


def stage_segmentation(stage: Staging, manifest: dict, seg: VertebraSegmentation, volume: CTVolume) -> dict:
    """Write the label map this job's prints were made from; return the manifest
    recording it (replacing any earlier one, which may have other thresholds)."""
    write_label_map(stage.path("segmentation.nii.gz"), seg, volume)
    return {**manifest, "segmentation": segmentation_entry(seg)}


def start_manifest(volume: CTVolume, stage: Staging, progress=None) -> dict:
    """The manifest to extend: the previous result's if it describes the same scan.

    Prints made from another scan are dropped: a folder's manifest always describes
    one scan. A previous manifest that cannot be read is replaced, with a note.
    """
    fresh = new_manifest(volume)
    if stage.previous is None or not (stage.previous / MANIFEST).is_file():
        return fresh
    try:
        old = read_manifest(stage.previous / MANIFEST)
    except InputError as exc:
        (progress or Quiet()).note(f"warning: the previous result is replaced: {exc}")
        return fresh
    if old["input"]["series_hash"] == fresh["input"]["series_hash"]:
        fresh["prints"] = old["prints"]
        fresh["parameters"] = old.get("parameters", {})
        fresh["warnings"] = old.get("warnings", [])
        if "segmentation" in old:
            fresh["segmentation"] = old["segmentation"]
    return fresh


def finish_result(
    stage: Staging, manifest: dict, *, prints_required: bool = True, deliver: dict | None = None, progress=None
) -> dict:
    """Take over the previous files the manifest still names, add the folder's
    outputs, and write the manifest.

    A record whose file is neither new nor in the previous result is dropped; a
    result without any print is a failure (:class:`NothingToPrint`) unless the job
    makes none (``bone``: a measurement). ``deliver``, when given, holds the
    arguments of :func:`~pipeline.jobs.deliver.stage_folder_outputs` (``volume``,
    ``segmentation``, ``meshes``, ``study``): the label picture, ``prints.3mf``,
    ``report.html`` and DICOM prints, made for the whole folder as it will be.
    """
    out = dict(manifest)
    out["prints"] = [_kept_print(stage, p) for p in manifest["prints"] if stage.keep(p["file"])]
    if "segmentation" in out and not stage.keep(out["segmentation"]["file"]):
        del out["segmentation"]
    guide = out.get("parameters", {}).get("guide")
    if guide and not stage.keep(guide.get("plan_file", "plan.json")):
        out["parameters"] = {k: v for k, v in out["parameters"].items() if k != "guide"}
    bone = out.get("bone_quality")
    if bone and not stage.keep(bone.get("file", "bone.json")):
        del out["bone_quality"]
    if prints_required and not out["prints"]:
        raise NothingToPrint(None, "the job made no print")
    if deliver is not None:
        from .deliver import LABELS_PICTURE, stage_folder_outputs

        if out.get("segmentation"):
            stage.keep(LABELS_PICTURE)  # shown again when this job draws no new one
        out = stage_folder_outputs(stage, out, progress=progress, **deliver)
    stage.path(MANIFEST).write_bytes(manifest_bytes(out))
    return out


def _kept_print(stage: Staging, record: dict) -> dict:
    """A print record whose DICOM instance, if it had one, is kept too (or forgotten)."""
    dicom = record.get("dicom")
    if dicom and not stage.keep(dicom.get("file", "")):
        return {k: v for k, v in record.items() if k != "dicom"}
    return record


def write_label_map(path, seg: VertebraSegmentation, volume: CTVolume) -> None:
    """Write the label map on the scan's own grid: DICOM scans in the usual NIfTI
    (column, row, slice) order, NIfTI scans in exactly the input file's layout."""
    from ..exchange.nifti import write_nifti

    write_nifti(path, seg.labels, seg.affine, order="file" if volume.info.source_format == "nifti" else "dicom")


def drop_kind(manifest: dict, kind: str) -> dict:
    """``manifest`` without its prints of ``kind`` (they are about to be remade)."""
    out = dict(manifest)
    out["prints"] = [p for p in manifest["prints"] if p["kind"] != kind]
    return out
