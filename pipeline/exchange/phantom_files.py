"""Write a synthetic phantom to disk: the DICOM series and, apart, its truth.

Layout of ``out_dir``::

    dicom/               the CT series (one file per slice)
    truth/labels.nii.gz  vertebra labels (VerSe values), same grid as the series
    truth/defect.nii.gz  fracture-defect mask, same grid
    truth/truth.json     measurements (LPS mm), see pipeline.phantom.truth

The pipeline never reads ``truth/``; tests and benchmarks compare against it. Every
file appears at once, when the whole phantom has been written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .atomic import check_output_folder, staged_output, write_bytes_atomic
from .dicom_write import write_series
from .nifti import write_nifti

SERIES_DESCRIPTION = "osteoprint lumbar phantom"
#: What a phantom folder consists of; anything else in it is carried over.
PHANTOM_ENTRIES = frozenset({"dicom", "truth"})


def is_phantom_folder(folder) -> bool:
    """Whether ``folder`` holds a phantom written by :func:`write_phantom`."""
    try:
        data = json.loads((Path(folder) / "truth" / "truth.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("files"), dict) and "dicom" in data["files"]


def check_phantom_folder(out_dir) -> Path:
    """Where a phantom will go, checked before it is generated (OptionError if unusable)."""
    return check_output_folder(out_dir, option="OUT_DIR", is_result=is_phantom_folder)


def write_phantom(
    phantom, out_dir: str | os.PathLike, *, transfer_syntax: str = "rle", file_names: str = "uid"
) -> dict:
    """Write ``phantom`` (a :class:`pipeline.phantom.Phantom`) under ``out_dir``.

    Parameters
    ----------
    phantom : Phantom
    out_dir : path
        Created if needed; an earlier phantom there is replaced whole, or not at all.
    transfer_syntax : str
        Any syntax :func:`~.dicom_write.write_series` knows ("rle",
        "jpegls_lossless", "j2k_lossless", "explicit_le", ...); all are lossless.
    file_names : {"uid", "sequential", "shuffled"}

    Returns
    -------
    dict
        ``dicom`` (folder), ``dicom_files`` (list, slice order), ``labels``,
        ``defect``, ``truth`` (paths as they are once written).
    """
    out_dir = Path(out_dir)
    vol = phantom.volume
    seed = int(phantom.truth.get("image", {}).get("seed", 0))
    truth = dict(phantom.truth)
    truth["files"] = {
        "dicom": "dicom/",
        "labels": "truth/labels.nii.gz",
        "defect": "truth/defect.nii.gz",
        "transfer_syntax": transfer_syntax,
    }
    with staged_output(out_dir, is_result=is_phantom_folder, entries=PHANTOM_ENTRIES) as stage:
        files = write_series(
            vol.hu,
            vol.affine,
            stage.path("dicom/.keep").parent,
            transfer_syntax=transfer_syntax,
            file_names=file_names,
            series_description=SERIES_DESCRIPTION,
            seed=seed,
            extra={
                "StudyDescription": "CT LUMBAR SPINE",
                "ConvolutionKernel": "STANDARD",
                "BodyPartExamined": "LSPINE",
                "SeriesNumber": 2,
            },
        )
        write_nifti(stage.path("truth/labels.nii.gz"), phantom.labels.astype(np.int16), vol.affine)
        write_nifti(stage.path("truth/defect.nii.gz"), phantom.defect.astype(np.uint8), vol.affine)
        text = json.dumps(truth, indent=1, sort_keys=False) + "\n"
        write_bytes_atomic(stage.path("truth/truth.json"), text.encode("utf-8"))
    return {
        "dicom": out_dir / "dicom",
        "dicom_files": [out_dir / "dicom" / f.name for f in files],
        "labels": out_dir / "truth" / "labels.nii.gz",
        "defect": out_dir / "truth" / "defect.nii.gz",
        "truth": out_dir / "truth" / "truth.json",
    }
