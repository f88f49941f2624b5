"""Write a CT volume as a DICOM CT Image Storage series.

osteoprint never needs to export DICOM for a patient; this writer exists so that
phantoms and tests can produce series with *known* geometry and content in every
transfer syntax the reader must handle, and so that deliberately awkward series
(tilted gantry, shuffled file names, descending slices, foreign series mixed in)
can be built on demand.

Big-endian note: pydicom 3.0 encodes the data elements of a dataset in big endian
when asked (``Explicit VR Big Endian`` is retired but still writable), but it does
not byte-swap OW/OB values such as *Pixel Data*; this module therefore stores the
pixel bytes in big-endian order itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import staged_output

TRANSFER_SYNTAXES = {
    "explicit_le": "1.2.840.10008.1.2.1",
    "implicit_le": "1.2.840.10008.1.2",
    "explicit_be": "1.2.840.10008.1.2.2",
    "rle": "1.2.840.10008.1.2.5",
    "jpegls_lossless": "1.2.840.10008.1.2.4.80",
    "j2k_lossless": "1.2.840.10008.1.2.4.90",
}
_ENCAPSULATED = {"rle", "jpegls_lossless", "j2k_lossless"}
_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_FILE_NAMINGS = ("sequential", "uid", "shuffled")


def write_series(
    hu: np.ndarray,
    affine: np.ndarray,
    out_dir: str | os.PathLike,
    *,
    transfer_syntax: str = "explicit_le",
    file_names: str = "sequential",
    series_description: str = "osteoprint phantom",
    study_uid: str | None = None,
    series_uid: str | None = None,
    rescale_intercept: float = -1024.0,
    rescale_slope: float = 1.0,
    seed: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``hu`` as one single-frame DICOM file per slice.

    Parameters
    ----------
    hu : ndarray, shape (n_slices, n_rows, n_columns)
        Hounsfield units (any real dtype; rounded to the stored integer grid).
    affine : ndarray, shape (4, 4)
        Voxel index ``(slice, row, column, 1)`` to LPS mm. Column 0 is the slice
        step, column 1 the row step, column 2 the column step, the translation is
        the ImagePositionPatient of slice 0. The slice step need not be parallel to
        the image normal: a sheared (gantry-tilted) series is written as such and
        its *Gantry/Detector Tilt* is set to the shear angle.
    out_dir : path
        Folder to write into (created if needed). Files appear all at once.
    transfer_syntax : {"explicit_le", "implicit_le", "explicit_be", "rle",
                       "jpegls_lossless", "j2k_lossless"}
        Encoding of the files; the compressed ones use pydicom's encoders (native
        RLE, pyjpegls, pylibjpeg-openjpeg) and are lossless. ``j2k_lossless``
        needs images of at least 32 x 32 pixels (openjpeg's fixed 6 wavelet levels).
    file_names : {"sequential", "uid", "shuffled"}
        ``IM00001``... in slice order; the SOP Instance UID without extension; or
        opaque random names (deterministic from ``seed``) in shuffled order.
    series_description : str
        SeriesDescription of every slice.
    study_uid, series_uid : str, optional
        Study and Series Instance UIDs; generated deterministically from ``seed``
        (and, for the series, ``series_description``) when omitted.
    rescale_intercept : float
        RescaleIntercept, HU.
    rescale_slope : float
        RescaleSlope, HU per stored unit.
    seed : int
        Source of every generated UID and of shuffled names.
    extra : mapping of str to object, optional
        DICOM keyword -> value set on every slice after the defaults (e.g.
        ``{"Modality": "MR"}``, ``{"ImageType": ["ORIGINAL", "PRIMARY",
        "LOCALIZER"]}``, ``{"SeriesNumber": 3}``); a value of ``None`` removes the
        element (e.g. ``{"RescaleSlope": None}``).

    Returns
    -------
    list of Path
        The written files, in slice-index order.

    Raises
    ------
    ValueError
        If the arguments are inconsistent (shape, singular affine, values that do
        not fit 16 bits after rescaling, unknown option).
    """
    from pydicom.uid import generate_uid

    hu = np.asarray(hu)
    if hu.ndim != 3 or min(hu.shape) < 1:
        raise ValueError(f"hu must be a non-empty 3-D array, got shape {hu.shape}")
    if not np.all(np.isfinite(hu)):
        raise ValueError("hu contains NaN or infinite values")
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise ValueError(f"transfer_syntax must be one of {sorted(TRANSFER_SYNTAXES)}")
    if file_names not in _FILE_NAMINGS:
        raise ValueError(f"file_names must be one of {_FILE_NAMINGS}")
    if rescale_slope == 0:
        raise ValueError("rescale_slope must be non-zero")
    if transfer_syntax == "j2k_lossless" and min(hu.shape[1:]) < 32:
        # pylibjpeg-openjpeg always uses 6 wavelet levels, which need 32 pixels a side.
        raise ValueError("j2k_lossless needs at least 32 rows and 32 columns")
    geometry = _slice_geometry(np.asarray(affine, dtype=float), hu.shape[0])
    stored, pixel_rep, bits_stored = _stored_values(hu, rescale_intercept, rescale_slope)

    study_uid = study_uid or generate_uid(entropy_srcs=["osteoprint-study", str(seed)])
    series_uid = series_uid or generate_uid(entropy_srcs=["osteoprint-series", str(seed), series_description])
    frame_uid = generate_uid(entropy_srcs=["osteoprint-frame", str(study_uid)])
    n = hu.shape[0]
    sop_uids = [generate_uid(entropy_srcs=["osteoprint-sop", str(series_uid), str(k)]) for k in range(n)]
    names, order = _file_names(file_names, sop_uids, seed)

    common = dict(
        study_uid=study_uid,
        series_uid=series_uid,
        frame_uid=frame_uid,
        description=series_description,
        intercept=rescale_intercept,
        slope=rescale_slope,
        pixel_rep=pixel_rep,
        bits_stored=bits_stored,
        geometry=geometry,
        extra=dict(extra or {}),
    )
    out_dir = Path(out_dir)
    with staged_output(out_dir) as stage:
        for k in order:
            ds = _slice_dataset(k, sop_uids[k], stored[k], **common)
            _encode_and_save(ds, stored[k], transfer_syntax, stage.path(names[k]))
    return [out_dir / name for name in names]


def _slice_geometry(affine: np.ndarray, n_slices: int) -> dict:
    """Per-series DICOM geometry derived from the affine (see module conventions)."""
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValueError("affine must be a finite 4x4 matrix")
    step, col_step, row_step = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    d_row, d_col = np.linalg.norm(col_step), np.linalg.norm(row_step)
    if d_row == 0 or d_col == 0:
        raise ValueError("affine has a zero in-plane step")
    row_cos, col_cos = row_step / d_col, col_step / d_row
    if abs(row_cos @ col_cos) > 1e-6:
        raise ValueError("in-plane axes of the affine are not orthogonal")
    normal = np.cross(row_cos, col_cos)
    along = float(step @ normal)
    if n_slices > 1 and abs(along) < 1e-6:
        raise ValueError("slice step lies in the image plane")
    # The tilt is the angle between the slice step and the image normal; its sign
    # follows the in-plane shear along the column direction (the usual tilt axis is
    # the patient's left-right axis, so the shear shows up along rows).
    shear = step - along * normal
    tilt = 0.0
    if n_slices > 1 and np.linalg.norm(shear) > 1e-9 * np.linalg.norm(step):
        tilt = float(np.degrees(np.arctan2(np.linalg.norm(shear), abs(along))))
        tilt *= 1.0 if (shear @ col_cos) * along >= 0 else -1.0
    return dict(
        origin=affine[:3, 3],
        step=step,
        normal=normal,
        iop=[*row_cos.tolist(), *col_cos.tolist()],
        pixel_spacing=[float(d_row), float(d_col)],
        thickness=abs(along) if n_slices > 1 else float(np.linalg.norm(step)) or 1.0,
        tilt=tilt,
    )


def _stored_values(hu: np.ndarray, intercept: float, slope: float):
    """Stored integers for ``hu`` and the pixel representation that holds them."""
    stored = np.rint((hu.astype(np.float64) - intercept) / slope)
    lo, hi = stored.min(), stored.max()
    if lo >= 0 and hi <= 65535:
        bits = 12 if hi <= 4095 else 16
        return stored.astype(np.uint16), 0, bits
    if lo >= -32768 and hi <= 32767:
        return stored.astype(np.int16), 1, 16
    raise ValueError(
        f"HU range {hu.min()}..{hu.max()} does not fit 16 bits with slope {slope} and intercept {intercept}"
    )


def _file_names(mode: str, sop_uids: list[str], seed: int):
    n = len(sop_uids)
    if mode == "sequential":
        return [f"IM{k + 1:05d}" for k in range(n)], list(range(n))
    if mode == "uid":
        return [str(u) for u in sop_uids], list(range(n))
    rng = np.random.default_rng(seed)
    names = [bytes(rng.integers(0, 256, 8, dtype=np.uint8)).hex().upper() for _ in range(n)]
    return names, [int(k) for k in rng.permutation(n)]


def _ds_str(x: float) -> str:
    """A DICOM decimal string (at most 16 characters) for ``x``."""
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(x))


def _slice_dataset(
    k,
    sop_uid,
    pixels,
    *,
    study_uid,
    series_uid,
    frame_uid,
    description,
    intercept,
    slope,
    pixel_rep,
    bits_stored,
    geometry,
    extra,
):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    g = geometry
    ipp = g["origin"] + k * g["step"]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = _CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "CT"
    ds.Manufacturer = "osteoprint"
    ds.ManufacturerModelName = "synthetic phantom"
    ds.SeriesDescription = description
    ds.PatientName = "PHANTOM^OSTEOPRINT"
    ds.PatientID = "PHANTOM"
    ds.BodyPartExamined = "SPINE"
    ds.KVP = "120"
    ds.SliceThickness = _ds_str(g["thickness"])
    ds.SpacingBetweenSlices = _ds_str(g["thickness"])
    ds.GantryDetectorTilt = _ds_str(g["tilt"])
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [_ds_str(v) for v in ipp]
    ds.ImageOrientationPatient = [_ds_str(v) for v in g["iop"]]
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds_str(ipp @ g["normal"])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.PixelSpacing = [_ds_str(v) for v in g["pixel_spacing"]]
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = pixel_rep
    ds.RescaleIntercept = _ds_str(intercept)
    ds.RescaleSlope = _ds_str(slope)
    ds.RescaleType = "HU"
    ds.WindowCenter = "400"
    ds.WindowWidth = "2000"
    for keyword, value in extra.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    return ds


def _encode_and_save(ds, pixels: np.ndarray, transfer_syntax: str, path: Path) -> None:
    from pydicom.uid import UID

    uid = UID(TRANSFER_SYNTAXES[transfer_syntax])
    pixels = np.ascontiguousarray(pixels)
    if transfer_syntax in _ENCAPSULATED:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
        ds["PixelData"].VR = "OW"
        ds.compress(uid, pixels, generate_instance_uid=False)
    else:
        order = ">" if transfer_syntax == "explicit_be" else "<"
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder(order)).tobytes()
        ds["PixelData"].VR = "OW"
        ds.file_meta.TransferSyntaxUID = uid
    ds.save_as(path, enforce_file_format=True)
