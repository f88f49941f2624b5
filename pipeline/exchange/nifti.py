"""NIfTI-1 volumes (CT input, label maps, masks) via nibabel.

NIfTI affines are RAS; osteoprint works in LPS. The two differ by negating x and y,
done here and nowhere else.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..volume import CTVolume, ScanInfo
from .atomic import atomic_file
from .manifest import file_sha256

_RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_nifti(path: str | os.PathLike) -> bool:
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI image as ``(array, affine_lps)``.

    The array keeps the file's axis order; ``affine_lps`` maps its indices to LPS mm.
    The header is checked before any voxel is read: the shape and data type it
    declares must fit in the file and in the memory budget
    (:mod:`pipeline.exchange.plausible`).

    Raises
    ------
    InputError
        Missing or non-regular file, not NIfTI, not 3-D, truncated, too large, or a
        singular or non-finite affine.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file" if not os.path.lexists(path) else "not a regular file")
    try:
        img = nib.load(str(path))
        header = img.header
        shape = tuple(int(n) for n in img.shape)
        dtype = np.dtype(header.get_data_dtype())
        offset = int(header.get_data_offset())
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(path, f"not a readable NIfTI file ({type(exc).__name__}: {_short(exc)})") from None
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(path, f"expected a 3-D image, found shape {shape}")
    if min(shape) < 1:
        raise InputError(path, f"the image is empty (shape {shape})")
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise InputError(path, f"voxels of type {dtype} are not scalar numbers")
    affine = _RAS_FROM_LPS @ np.asarray(img.affine, dtype=float)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(path, "its affine is singular or not finite")
    _check_declared_size(path, shape, dtype, offset)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise InputError(path, f"cannot read the voxel data ({type(exc).__name__}: {_short(exc)})") from None
    if data.ndim == 4:
        data = data[..., 0]
    return data, affine


def _check_declared_size(path: Path, shape, dtype: np.dtype, offset: int) -> None:
    """Refuse, before reading, a file that cannot hold what its header declares."""
    from .plausible import check_file_holds, check_gzip_holds, check_memory

    n = int(np.prod(shape, dtype=np.int64))
    what = f"{'x'.join(str(s) for s in shape)} {dtype.name} voxels"
    check_memory(n, path, f"the header declares {what}")
    needed = offset + n * dtype.itemsize
    if str(path).lower().endswith(".gz"):
        check_gzip_holds(path, needed, what)
    else:
        check_file_holds(path, needed, what)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160]


def read_ct_nifti(path: str | os.PathLike) -> CTVolume:
    """Read a NIfTI CT (values already in HU) into a :class:`CTVolume`.

    Raises :class:`InputError` for values that cannot be CT HU (NaN, out of range,
    no air or soft tissue; :func:`pipeline.exchange.plausible.check_hounsfield`).
    """
    from .plausible import check_hounsfield

    data, affine = read_nifti(path)
    check_hounsfield(data, path)
    if np.issubdtype(data.dtype, np.integer) and data.min() >= -32768 and data.max() <= 32767:
        hu = data.astype(np.int16, copy=False)
    else:
        hu = data.astype(np.float32, copy=False)
    info = ScanInfo(
        series_hash=file_sha256(path)[:12],
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
        # NIfTI stores the first index fastest: the transpose of a C-ordered (slice,
        # row, column) array is the (column, row, slice) image, a view, no copy.
        data = array.T
        aff = np.asarray(affine_lps, dtype=float)[:, [2, 1, 0, 3]]
    elif order == "file":
        data = array
        aff = np.asarray(affine_lps, dtype=float)
    else:
        raise ValueError(f"order must be 'dicom' or 'file', not {order!r}")
    ras = _RAS_FROM_LPS @ aff
    image = nib.Nifti1Image(data, ras, dtype=array.dtype)
    image.set_qform(ras, code=1)
    image.set_sform(ras, code=1)
    image.header.set_xyzt_units("mm")
    with atomic_file(path) as raw:
        # Level 1: label maps are mostly zeros and still compress ~50x, 5x faster
        # than level 6; mtime 0 so that identical inputs give identical files.
        gz = str(path).lower().endswith(".gz")
        out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0, filename="") if gz else raw
        # nibabel writes the header, then the data slab by slab from the array as it lies.
        image.to_file_map({"image": nib.FileHolder(fileobj=out), "header": nib.FileHolder(fileobj=out)})
        if gz:
            out.close()
