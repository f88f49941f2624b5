"""The ``model`` job: scan -> labelled vertebrae -> one STL each + label map + manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..exchange.atomic import staged_output
from ..exchange.manifest import manifest_bytes, merge_prints
from ..exchange.stl import stl_bytes
from ..models import VertebraModel, vertebra_models
from ..prints import print_record
from ..progress import detail
from ..segment import VertebraSegmentation, segment_vertebrae
from .common import Quiet, drop_kind, read_scan, segmentation_entry, start_manifest, write_label_map
from .deliver import remove_stale_outputs, stage_folder_outputs, study_for


@dataclass(frozen=True)
class ModelOptions:
    """Options of the ``model`` job (see ``osteoprint model --help``)."""

    series: str | None = None
    preset: str = "bone"
    hu_low: float | None = None
    hu_high: float | None = None
    levels: tuple[str, ...] | None = None
    purpose: str = "planning"
    decimate: float = 0.5
    dicom: bool = False


def model_records(models: list[VertebraModel], purpose: str, stl_data: dict[str, bytes]) -> list[dict]:
    """Manifest records of vertebra models whose STL bytes are in ``stl_data``."""
    import hashlib

    records = []
    for m in models:
        file = f"vertebrae/{m.level}.stl"
        records.append(
            print_record(
                m.mesh,
                file=file,
                kind="anatomical_model",
                label=m.level,
                sha256=hashlib.sha256(stl_data[file]).hexdigest(),
                quality=m.quality,
                purpose=purpose,
                smallest_feature_mm=m.smallest_feature_mm,
                extra={
                    "label_value": m.label_value,
                    "mask_volume_mm3": round(m.mask_volume_mm3, 3),
                    "mesh_to_mask_volume_ratio": round(m.quality.volume_mm3 / m.mask_volume_mm3, 5)
                    if m.mask_volume_mm3
                    else None,
                    "cut_by_scan_edge": m.cut_by_scan_edge,
                },
            )
        )
    return records


def run_model(
    scan: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: ModelOptions = ModelOptions(),
    progress=None,
    *,
    volume=None,
    segmentation: VertebraSegmentation | None = None,
    bone_quality=None,
    deliver: bool = True,
    made: dict | None = None,
) -> dict:
    """Scan to one STL per vertebra, a label map and the manifest in ``out_dir``.

    Writes ``vertebrae/<LEVEL>.stl``, ``segmentation.nii.gz``, ``bone.json``,
    ``labels.png``, ``prints.3mf``, ``report.html``, with ``options.dicom``
    ``dicom/vertebrae/<LEVEL>.dcm``, and ``manifest.json``; returns the manifest.
    Nothing is written if any step fails. ``volume``, ``segmentation`` and
    ``bone_quality``, when given (``osteoprint run``), spare reading, segmenting and
    measuring the scan again; ``deliver=False`` leaves out the picture, 3MF, report
    and DICOM (``run`` writes them once, at its end, from the meshes this job adds
    to ``made``: print file -> mesh).
    """
    from .bone import measure, stage_bone

    progress = progress or Quiet()
    volume = volume if volume is not None else read_scan(scan, options.series, progress)
    study = study_for(scan, volume, options.dicom and deliver, progress)
    seg = segmentation if segmentation is not None else segment(volume, options, progress)
    bone = bone_quality if bone_quality is not None else measure(volume, seg, progress)
    progress.stage("meshing vertebrae")
    models = vertebra_models(
        seg,
        levels=list(options.levels) if options.levels else None,
        decimate=options.decimate,
        on_level=lambda level: detail(progress, f"meshed {level}"),
    )
    stl_data = {f"vertebrae/{m.level}.stl": stl_bytes(m.mesh, f"{m.level} vertebra model") for m in models}
    manifest = start_manifest(volume, out_dir)
    manifest = merge_prints(drop_kind(manifest, "anatomical_model"), model_records(models, options.purpose, stl_data))
    manifest["segmentation"] = segmentation_entry(seg)
    manifest["parameters"]["model"] = {
        **seg.parameters,
        "purpose": options.purpose,
        "decimate_fraction": options.decimate,
        "mesh": "Gaussian 0.6 voxel + marching cubes (scikit-image) + 10 Taubin passes (lambda 0.5, mu -0.53)",
    }
    manifest["warnings"] = sorted(set(manifest["warnings"]) | set(seg.warnings))
    progress.stage("writing prints")
    with staged_output(out_dir) as stage:
        for rel, data in stl_data.items():
            stage.path(rel).write_bytes(data)
        write_label_map(stage.path("segmentation.nii.gz"), seg, volume)
        manifest = stage_bone(stage, manifest, bone, volume.info.series_hash)
        meshes = {f"vertebrae/{m.level}.stl": m.mesh for m in models}
        if deliver:
            manifest = stage_folder_outputs(stage, manifest, volume=volume, segmentation=seg, study=study,
                                            meshes=meshes, progress=progress)
        stage.path("manifest.json").write_bytes(manifest_bytes(manifest))
    _remove_stale(Path(out_dir) / "vertebrae", set(stl_data))
    if deliver:
        remove_stale_outputs(out_dir, manifest)
    if made is not None:
        made.update(meshes)
    return manifest


def segment(volume, options: ModelOptions = ModelOptions(), progress=None) -> VertebraSegmentation:
    """Segment with the model options' thresholds, reporting warnings to ``progress``."""
    progress = progress or Quiet()
    progress.stage("segmenting vertebrae")
    seg = segment_vertebrae(volume, options.preset, low=options.hu_low, high=options.hu_high)
    for message in seg.warnings:
        progress.note(f"warning: {message}")
    return seg


def _remove_stale(folder: Path, written: set[str]) -> None:
    """Remove vertebra STLs from an earlier run that this run did not produce."""
    if not folder.is_dir():
        return
    keep = {Path(p).name for p in written}
    for f in folder.glob("*.stl"):
        if f.name not in keep:
            f.unlink()
