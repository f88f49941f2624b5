"""What every job leaves besides its STL files: the label picture, ``prints.3mf``,
``report.html`` and, when asked, one DICOM Encapsulated STL per print.

These describe the whole output folder (every print its manifest lists), so a
``scaffold`` run after a ``model`` run leaves one 3MF and one report holding both.
They are staged with the job's other files and appear together with them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..exchange.dicom_stl import encapsulated_stl, prints_series_uid
from ..exchange.report import print_order, report_html
from ..exchange.stl import read_stl
from ..exchange.threemf import PlatePart, write_3mf
from ..parallel import Background
from ..progress import Quiet
from ..render import label_picture, print_colour, print_thumbnail

LABELS_PICTURE = "labels.png"
PRINTS_3MF = "prints.3mf"
REPORT = "report.html"
DICOM_FOLDER = "dicom"
KIND_NAMES = {"anatomical_model": "vertebra model", "scaffold": "scaffold", "guide": "drill guide"}


def study_for(scan, volume, wanted: bool, progress=None):
    """The source's patient and study for ``--dicom`` (None when not asked).

    Read before the long steps, so that a scan that cannot be exported (NIfTI)
    fails at once.
    """
    if not wanted:
        return None
    from ..exchange.dicom_study import read_study

    progress = progress or Quiet()
    study = read_study(scan, volume.info.series_hash)
    for message in study.warnings:
        progress.note(f"warning: {message}")
    return study


def print_name(record: dict) -> str:
    """What the slicer and the DICOM viewer call a print, e.g. "L1 vertebra model"."""
    if record["kind"] == "anatomical_model":
        return f"{record['label']} vertebra model"
    return record["label"]


def dicom_file(record: dict) -> str:
    """Where a print's DICOM instance goes: its STL path under ``dicom/``, ``.dcm``."""
    return f"{DICOM_FOLDER}/{Path(record['file']).with_suffix('.dcm').as_posix()}"


def stage_folder_outputs(
    stage,
    manifest: dict,
    *,
    volume=None,
    segmentation=None,
    meshes: dict | None = None,
    study=None,
    label_png: bytes | None = None,
    progress=None,
) -> dict:
    """Stage ``labels.png``, ``prints.3mf``, ``report.html`` (and DICOM) for a folder.

    Parameters
    ----------
    stage : pipeline.exchange.atomic.Staging
        The job's staging; files of this job are already written in it.
    manifest : dict
        The folder's manifest as it will be written (every print it lists).
    volume, segmentation : CTVolume, VertebraSegmentation, optional
        When the job has a segmentation, the label picture is drawn from it;
        otherwise the folder's existing picture is kept and shown.
    meshes : dict, optional
        Print file -> trimesh of the prints this job made (others are read back).
    study : DicomStudy, optional
        Write one DICOM Encapsulated STL per print (``--dicom``).
    label_png : bytes, optional
        The label picture of ``segmentation``, when the job has drawn it already.

    Returns
    -------
    dict
        The manifest with ``outputs`` and, per print with DICOM, ``dicom``.
    """
    progress = progress or Quiet()
    meshes = dict(meshes or {})
    manifest = dict(manifest)
    manifest["prints"] = [dict(p) for p in manifest["prints"]]
    ordered = sorted(manifest["prints"], key=print_order)
    parts, colours = [], {}
    for record in ordered:
        mesh = meshes.get(record["file"]) or read_stl(_current(stage, record["file"]))
        vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
        colours[record["file"]] = print_colour(record)
        parts.append(
            PlatePart(
                print_name(record), vertices, faces, colours[record["file"]], _material(record), _metadata(record)
            )
        )
    # the thumbnails (numpy) are drawn while the label picture and the 3MF are made
    thumbnails = Background(_thumbnails, [r["file"] for r in ordered], parts)
    if segmentation is not None and volume is not None and segmentation.levels:
        if label_png is None:
            progress.stage("drawing the label picture")
            label_png = label_picture(volume, segmentation)
        stage.path(LABELS_PICTURE).write_bytes(label_png)
    elif manifest.get("segmentation") and (stage.destination / LABELS_PICTURE).is_file():
        # The folder's picture belongs to this scan (a manifest of another scan
        # would have been started afresh, without a segmentation).
        label_png = (stage.destination / LABELS_PICTURE).read_bytes()

    progress.stage("writing prints.3mf and the report")
    if parts:
        write_3mf(
            stage.path(PRINTS_3MF),
            parts,
            metadata={
                "series_hash": manifest["input"]["series_hash"],
                "units": "mm",
                "source_coordinate_system": "DICOM LPS (patient left, posterior, head)",
            },
        )

    if study is not None:
        progress.stage("writing DICOM Encapsulated STL")
        series_uid = prints_series_uid(study)
        for number, record in enumerate(manifest["prints"], start=1):
            data = encapsulated_stl(
                _current(stage, record["file"]).read_bytes(),
                study,
                title=print_name(record),
                instance_number=number,
                series_uid=series_uid,
            )
            rel = dicom_file(record)
            stage.path(rel).write_bytes(data)
            record["dicom"] = {"file": rel, "sha256": hashlib.sha256(data).hexdigest()}
        manifest["warnings"] = sorted(set(manifest["warnings"]) | set(study.warnings))

    manifest["outputs"] = {
        "report": REPORT,
        "prints_3mf": PRINTS_3MF if parts else None,
        "labels_picture": LABELS_PICTURE if label_png else None,
    }
    stage.path(REPORT).write_bytes(
        report_html(
            manifest,
            label_png=label_png,
            thumbnails=thumbnails.result(),
            colours=colours,
            files=_files(stage, manifest),
        )
    )
    return manifest


def remove_stale_outputs(out_dir, manifest: dict) -> None:
    """After a job: remove a label picture of another scan, and DICOM prints of
    earlier runs whose print was remade without ``--dicom`` or is gone (each
    remaining instance encapsulates a print of the manifest)."""
    picture = Path(out_dir) / LABELS_PICTURE
    if picture.is_file() and not (manifest.get("outputs") or {}).get("labels_picture"):
        picture.unlink()
    folder = Path(out_dir) / DICOM_FOLDER
    if not folder.is_dir():
        return
    keep = {p["dicom"]["file"] for p in manifest["prints"] if p.get("dicom")}
    for path in folder.rglob("*.dcm"):
        if path.relative_to(out_dir).as_posix() not in keep:
            path.unlink()
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(sub.iterdir()):
            sub.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()


def _current(stage, rel: str) -> Path:
    """A file as this job leaves it: staged if the job wrote it, else the folder's."""
    staged = stage.tmp / rel
    return staged if staged.is_file() else stage.destination / rel


def _thumbnails(files: list[str], parts: list[PlatePart]) -> dict:
    """PNG picture of each print (print file -> bytes)."""
    return {f: print_thumbnail(p.vertices, p.faces, p.colour) for f, p in zip(files, parts)}


def _material(record: dict) -> str:
    if record.get("material"):
        return str(record["material"])
    return f"anatomical model ({record.get('purpose', 'planning')})"


def _metadata(record: dict) -> dict:
    best = record["recommended_process"][0]
    out = {
        "kind": record["kind"],
        "label": record["label"],
        "file": record["file"],
        "sha256": record["sha256"],
        "material": _material(record),
        "purpose": record.get("purpose", ""),
        "recommended_process": best["category"] if best["score"] > 0 else "none",
        "units": "mm",
        "source_coordinate_system": "LPS",
    }
    level = record.get("level") or (record["label"] if record["kind"] == "anatomical_model" else None)
    if level:
        out["level"] = level
    return out


def _files(stage, manifest: dict) -> dict:
    out = {"manifest.json": "provenance, parameters, measured quality, recommended process (JSON)"}
    if manifest.get("segmentation"):
        out["segmentation.nii.gz"] = "vertebra label map on the scan's grid (NIfTI)"
    if manifest["outputs"]["labels_picture"]:
        out[LABELS_PICTURE] = "sagittal and coronal label check (the picture above)"
    if manifest["outputs"]["prints_3mf"]:
        out[PRINTS_3MF] = "every print on one build plate, named and coloured; LPS transform per part in its metadata"
    for p in manifest["prints"]:
        out[p["file"]] = f"{print_name(p)}: binary STL, mm, header SPACE=LPS"
    n_dicom = sum(1 for p in manifest["prints"] if p.get("dicom"))
    if n_dicom:
        out[f"{DICOM_FOLDER}/"] = (
            f"{n_dicom} DICOM Encapsulated STL instance{'s' if n_dicom != 1 else ''} "
            "in the CT's study: they carry the patient's identifiers"
        )
    if (stage.tmp / "plan.json").is_file() or (stage.destination / "plan.json").is_file():
        out["plan.json"] = "pedicle-screw plan (docs/plan-format.md)"
    if manifest.get("bone_quality"):
        out[manifest["bone_quality"].get("file") or "bone.json"] = (
            "trabecular bone density per vertebra, screening flag"
        )
    return out
