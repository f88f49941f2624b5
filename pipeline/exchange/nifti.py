"""NIfTI-1 volumes (CT input, label maps, masks) via nibabel.

NIfTI affines are RAS; osteoprint works in LPS. The two differ by negating x and y,
done here and nowhere else.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..volume import CTVolume, ScanInfo
from .atomic import write_bytes_atomic

_RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_nifti(path: str | os.PathLike) -> bool:
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI image as ``(array, affine_lps)``.

    The array keeps the file's axis order; ``affine_lps`` maps its indices to LPS mm.
    Raises :class:`InputError` when the file is missing, not NIfTI, or not 3-D.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(path, f"not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(path, f"expected a 3-D image, found shape {data.shape}")
    affine = _RAS_FROM_LPS @ np.asarray(img.affine, dtype=float)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(path, "its affine is singular or not finite")
    return data, affine


def read_ct_nifti(path: str | os.PathLike) -> CTVolume:
    """Read a NIfTI CT (values already in HU) into a :class:`CTVolume`."""
    data, affine = read_nifti(path)
    if np.issubdtype(data.dtype, np.integer) and data.min() >= -32768 and data.max() <= 32767:
        hu = data.astype(np.int16, copy=False)
    else:
        hu = data.astype(np.float32, copy=False)
    lo, hi = float(hu.min()), float(hu.max())
    if hi - lo < 200 or lo > 0 or hi < 200:
        raise InputError(path, f"values {lo:.0f}..{hi:.0f} do not look like CT Hounsfield units")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    info = ScanInfo(
        series_hash=digest.hexdigest()[:12],
        modality="CT",
        source_format="nifti",
        n_files=1,
        description="NIfTI volume",
    )
    return CTVolume(hu=np.ascontiguousarray(hu), affine=affine, info=info)


def write_nifti(path: str | os.PathLike, array: np.ndarray, affine_lps: np.ndarray, *, order: str = "dicom") -> None:
    """Write ``array`` with its LPS affine as a (gzipped) NIfTI-1 file, atomically.

    Parameters
    ----------
    order : {"dicom", "file"}
        ``"dicom"``: the array is in DICOM (slice, row, column) order and is stored in
        the conventional (column, row, slice) order that viewers and
        nnU-Net/TotalSegmentator tools expect; reading it back with
        :func:`read_nifti` gives the transposed array and the matching affine.
        ``"file"``: the array came from a NIfTI file (:func:`read_nifti` keeps the
        file's axis order) and is stored as it is, so a label map lies voxel for
        voxel on the input image's grid.
        Either way every voxel keeps its LPS position.
    """
    import nibabel as nib

    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if order == "dicom":
        stored = np.ascontiguousarray(np.transpose(array, (2, 1, 0)))
        aff = np.asarray(affine_lps, dtype=float)[:, [2, 1, 0, 3]]
    elif order == "file":
        stored = np.ascontiguousarray(array)
        aff = np.asarray(affine_lps, dtype=float)
    else:
        raise ValueError(f"order must be 'dicom' or 'file', not {order!r}")
    img = nib.Nifti1Image(stored, _RAS_FROM_LPS @ aff)
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    img.header.set_xyzt_units("mm")
    write_bytes_atomic(path, _nifti_bytes(img, str(path).lower().endswith(".gz")))


def _nifti_bytes(img, gz: bool) -> bytes:
    import gzip

    raw = img.to_bytes()
    return gzip.compress(raw, compresslevel=6, mtime=0) if gz else raw
