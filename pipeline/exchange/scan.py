"""Open whatever CT the user points at: a DICOM folder, a DICOM file or a NIfTI file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..volume import CTVolume
from .dicom_read import ReadReport, SeriesSummary, load_series
from .nifti import is_nifti, read_ct_nifti


def load_scan(
    path: str | os.PathLike, series: str | int | None = None, *, on_progress: Callable[[int, int], None] | None = None
) -> tuple[CTVolume, ReadReport]:
    """Read a CT scan in Hounsfield units with its exact LPS geometry.

    Parameters
    ----------
    path : path
        A folder of DICOM files (searched recursively), one DICOM file (its series
        is read from its folder), or a NIfTI CT in HU (``.nii`` / ``.nii.gz``).
    series : str or int, optional
        DICOM only: series hash, SeriesNumber or 1-based index into
        :func:`~pipeline.exchange.dicom_read.list_series` (see
        :func:`~pipeline.exchange.dicom_read.load_series`).
    on_progress : callable, optional
        ``on_progress(done, total)`` while DICOM slices are decoded.

    Returns
    -------
    volume : CTVolume
    report : ReadReport
        Skipped files and series found (for NIfTI: one series, nothing skipped).

    Raises
    ------
    InputError
        Missing path, unreadable or unsuitable data (one line naming the path).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            path, "no such file or folder" if not os.path.lexists(path) else "broken link (its target does not exist)"
        )
    if not path.is_file() and not path.is_dir():
        raise InputError(path, "not a regular file or folder (a named pipe or device cannot be a scan)")
    if path.is_file() and is_nifti(path):
        if series is not None:
            raise InputError(path, "a NIfTI file holds one volume; 'series' applies to DICOM only")
        volume = read_ct_nifti(path)
        summary = SeriesSummary(
            hash=volume.info.series_hash,
            number=None,
            description=volume.info.description,
            modality="CT",
            n_images=volume.shape[0],
            chosen=True,
        )
        if on_progress is not None:
            on_progress(1, 1)
        return volume, ReadReport(skipped=[], series=[summary])
    return load_series(path, series, on_progress=on_progress)
