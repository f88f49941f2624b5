"""The ``model`` job: scan -> labelled vertebrae -> one STL each + label map + manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..exchange.manifest import merge_prints
from ..exchange.stl import stl_bytes
from ..mesh import VertebraModel, vertebra_models
from ..parallel import Background
from ..printing import print_record
from ..progress import detail
from ..render import label_picture
from ..segment import VertebraSegmentation
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

    def __post_init__(self):
        from ..printing import purposes

        check.hu_thresholds(self.preset, self.hu_low, self.hu_high)
        object.__setattr__(self, "levels", check.levels("--levels", self.levels))
        check.choice("--purpose", self.purpose, purposes("anatomical_model"))
        check.number("--decimate", self.decimate, 0.0, 1.0, hi_open=True)


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
) -> dict:
    """Scan to one STL per vertebra, a label map and the manifest in ``out_dir``.

    Writes ``vertebrae/<LEVEL>.stl``, ``segmentation.nii.gz``, ``bone.json``,
    ``labels.png``, ``prints.3mf``, ``report.html``, with ``options.dicom``
    ``dicom/vertebrae/<LEVEL>.dcm``, and ``manifest.json``, replacing the folder's
    previous result whole (its scaffolds and guides of the same scan are kept);
    returns the manifest. Nothing is written if any step fails, and a scan without
    a vertebra is a failure (:class:`~pipeline.errors.NothingToPrint`). ``volume``,
    ``segmentation`` and ``bone_quality``, when given, spare reading, segmenting
    and measuring again.
    """
    from .bone import measure, stage_bone
    from .deliver import study_for

    progress = progress or Quiet()
    check_output(out_dir, scan)
    volume = volume if volume is not None else read_volume(scan, options.series, progress)
    study = study_for(scan, volume, options.dicom, progress)
    seg = segmentation if segmentation is not None else segment(volume, options, progress)
    require_vertebrae(seg, scan)
    require_levels(seg, options.levels, "--levels")
    models = mesh_models(seg, options, progress)
    # The vertebrae are meshed in forked processes first (no fork while a thread
    # runs); the bone density is then measured beside the label picture and the
    # models' files (both mostly numpy and zlib, which overlap on two cores).
    bone = Background(measure, volume, seg, progress) if bone_quality is None else None
    label_png = None
    if seg.levels:
        progress.stage("drawing the label picture")
        label_png = label_picture(volume, seg)
    progress.stage("writing prints")
    with staged_result(out_dir, scan) as stage:
        manifest = add_models(stage, start_manifest(volume, stage, progress), volume, seg, models, options)
        bone_quality = bone.result() if bone is not None else bone_quality
        manifest = stage_bone(stage, manifest, bone_quality, volume.info.series_hash)
        meshes = {f"vertebrae/{m.level}.stl": m.mesh for m in models}
        manifest = finish_result(
            stage,
            manifest,
            progress=progress,
            deliver={
                "volume": volume,
                "segmentation": seg,
                "meshes": meshes,
                "study": study,
                "label_png": label_png,
            },
        )
    return manifest


def mesh_models(seg: VertebraSegmentation, options: ModelOptions, progress=None) -> list[VertebraModel]:
    """The vertebra models ``options.levels`` asks for (all by default).

    Raises :class:`OptionError` when a requested level is not in the segmentation.
    """
    progress = progress or Quiet()
    require_levels(seg, options.levels, "--levels")
    progress.stage("meshing vertebrae")
    return vertebra_models(
        seg,
        levels=list(options.levels) if options.levels else None,
        decimate=options.decimate,
        on_level=lambda level: detail(progress, f"meshed {level}"),
    )


def add_models(
    stage, manifest: dict, volume, seg: VertebraSegmentation, models: list[VertebraModel], options: ModelOptions
) -> dict:
    """Write the models' STLs and the label map into ``stage``; return the manifest
    with the model records (replacing earlier ones) and the segmentation."""
    stl_data = {f"vertebrae/{m.level}.stl": stl_bytes(m.mesh, f"{m.level} vertebra model") for m in models}
    manifest = merge_prints(drop_kind(manifest, "anatomical_model"), model_records(models, options.purpose, stl_data))
    manifest["parameters"]["model"] = {
        **seg.parameters,
        "purpose": options.purpose,
        "decimate_fraction": options.decimate,
        "mesh": "Gaussian 0.6 voxel + marching cubes (scikit-image) + 10 Taubin passes (lambda 0.5, mu -0.53)",
    }
    manifest["warnings"] = sorted(set(manifest["warnings"]) | set(seg.warnings))
    for rel, data in stl_data.items():
        stage.path(rel).write_bytes(data)
    return stage_segmentation(stage, manifest, seg, volume)
