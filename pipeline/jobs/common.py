"""What every job shares: reading the scan with progress, and the manifest to extend."""

from __future__ import annotations

import os
from pathlib import Path

from ..exchange.manifest import new_manifest, read_manifest
from ..progress import detail
from ..segment import VertebraSegmentation
from ..volume import CTVolume


class Quiet:
    """Progress reporter that says nothing (the API default)."""

    def stage(self, name: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def detail(self, message: str) -> None:
        pass


def read_scan(scan: str | os.PathLike, series: str | None = None, progress=None) -> CTVolume:
    """Read a DICOM folder/file or NIfTI CT and report skipped files to ``progress``."""
    from ..exchange.scan import load_scan

    progress = progress or Quiet()
    progress.stage("reading scan")
    volume, report = load_scan(scan, series=series)
    for path, reason in report.skipped:
        detail(progress, f"skipped {path}: {reason}")
    for message in volume.info.warnings:
        progress.note(f"warning: {message}")
    return volume


def segmentation_entry(seg: VertebraSegmentation) -> dict:
    """Manifest block describing the label map."""
    return {
        "file": "segmentation.nii.gz",
        "label_values": {name: int(value) for value, name in seg.levels.items()},
        "label_convention": seg.parameters.get("label_convention", ""),
        "levels_named": bool(seg.named),
        "naming_evidence": seg.evidence,
    }


def start_manifest(volume: CTVolume, out_dir) -> dict:
    """The manifest to extend: the existing one if it describes the same scan.

    Prints made from another scan are dropped: a folder's manifest always describes
    one scan.
    """
    path = Path(out_dir) / "manifest.json"
    fresh = new_manifest(volume)
    if path.is_file():
        old = read_manifest(path)
        if old["input"]["series_hash"] == fresh["input"]["series_hash"]:
            fresh["prints"] = old["prints"]
            fresh["parameters"] = old.get("parameters", {})
            fresh["warnings"] = old.get("warnings", [])
            if "segmentation" in old:
                fresh["segmentation"] = old["segmentation"]
    return fresh


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
