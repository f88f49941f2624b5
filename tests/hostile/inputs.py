"""Inputs of the hostile corpus, written at test time (nothing generated is committed).

Two base scans carry distinctive fake identity (names, IDs, dates, UIDs, free
text) that must never reach an output:

* a tiny body (12 slices of 40 x 40 pixels: air, fat, muscle, no bone), the base of
  the intensity, format and geometry cases: they fail in the reader, fast;
* the bundled phantom reduced 2x per axis (106 x 120 x 116 voxels, T12-S1 and
  the L1 fracture), for the cases that need a spine.

Every helper writes into a folder it is given and returns paths.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pydicom

#: Fake identity written into every DICOM file of the corpus.
IDENTITY = {
    "PatientName": "ZZTOPSECRET^HOSTILE",
    "PatientID": "PID-7731-HOSTILE",
    "PatientBirthDate": "19010203",
    "StudyDate": "19990909",
    "SeriesDate": "19990909",
    "AccessionNumber": "ACC7731ZZ",
    "InstitutionName": "ZZ HOSPITAL OF HOSTILITY",
    "ReferringPhysicianName": "ZZWHO^DOCTOR",
    "StudyDescription": "ZZTOPSECRET study of the spine",
}
SERIES_DESCRIPTION = "ZZTOPSECRET^HOSTILE lumbar CT"
STUDY_UID = "1.2.826.0.1.3680043.8.498.77310001"
SERIES_UID = "1.2.826.0.1.3680043.8.498.77310002"
#: Strings that must appear in no output file, file name, terminal line or log.
SECRETS = (
    "ZZTOPSECRET",
    "PID-7731",
    "19010203",
    "19990909",
    "ACC7731ZZ",
    "ZZ HOSPITAL",
    "ZZWHO",
    STUDY_UID,
    SERIES_UID,
)

BODY_AFFINE = np.array(
    [
        [0.0, 0.0, 1.5, -30.0],
        [0.0, 1.5, 0.0, -30.0],
        [2.5, 0.0, 0.0, -15.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def body_hu(shape=(12, 40, 40), seed: int = 0) -> np.ndarray:
    """Air around an elliptic body of fat and muscle with two thin rib-like rods
    (800 HU, 3 mm), but no vertebra; int16 HU."""
    _, y, x = np.indices(shape, dtype=float)
    r = ((y - (shape[1] - 1) / 2) / (0.42 * shape[1])) ** 2 + ((x - (shape[2] - 1) / 2) / (0.45 * shape[2])) ** 2
    hu = np.where(r < 1.0, -90.0, -1000.0)
    hu[r < 0.6] = 40.0
    hu[:, 12:14, 8:10] = 800.0
    hu[:, 12:14, 30:32] = 800.0
    hu += np.random.default_rng(seed).normal(0.0, 8.0, shape)
    return np.rint(hu).astype(np.int16)


def write_dicom(hu, affine, folder: Path, **kwargs) -> list[Path]:
    """A CT series with the corpus identity (see :data:`IDENTITY`)."""
    from pipeline.exchange.dicom_write import write_series

    extra = {**IDENTITY, **kwargs.pop("extra", {})}
    kwargs.setdefault("series_description", SERIES_DESCRIPTION)
    kwargs.setdefault("study_uid", STUDY_UID)
    kwargs.setdefault("series_uid", SERIES_UID)
    return write_series(hu, affine, folder, extra=extra, **kwargs)


def small_phantom(volume) -> tuple[np.ndarray, np.ndarray]:
    """The bundled phantom's volume averaged over 2x2x2 blocks: (hu, affine)."""
    hu = volume.hu.astype(np.float32)
    n = [s // 2 * 2 for s in hu.shape]
    hu = hu[: n[0], : n[1], : n[2]].reshape(n[0] // 2, 2, n[1] // 2, 2, n[2] // 2, 2).mean(axis=(1, 3, 5))
    affine = volume.affine.copy()
    affine[:3, :3] *= 2.0
    affine[:3, 3] = volume.affine[:3, :3] @ np.array([0.5, 0.5, 0.5]) + volume.affine[:3, 3]
    return np.rint(hu).astype(np.int16), affine


def copy_series(src: Path, folder: Path) -> list[Path]:
    shutil.copytree(src, folder)
    return sorted(p for p in folder.iterdir() if p.is_file())


def edit(paths, pixels=None, **changes) -> None:
    """Set (value) or delete (None) elements in every file; optionally new stored pixels."""
    import warnings

    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        with warnings.catch_warnings():  # invalid values are the point
            warnings.simplefilter("ignore")
            _set(ds, changes)
        if pixels is not None:
            arr = np.asarray(pixels[k])
            ds.PixelData = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        ds.save_as(path)


def _set(ds, changes: dict) -> None:
    for keyword, value in changes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


def set_raw(paths, tag: int, vr: str, raw: bytes) -> None:
    """Write an element's value bytes as given, unchecked (e.g. "NaN" in a DS)."""
    from pydicom.dataelem import RawDataElement

    for path in paths:
        ds = pydicom.dcmread(path)
        ds[tag] = RawDataElement(pydicom.tag.Tag(tag), vr, len(raw), raw, 0, False, True)
        ds.save_as(path)


def set_meta(paths, transfer_syntax: str) -> None:
    """Claim another transfer syntax for the (unchanged) pixel data."""
    from pydicom.encaps import encapsulate

    for path in paths:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
        ds.save_as(path)


def write_nifti_array(path: Path, data: np.ndarray, affine=None, *, slope=None) -> Path:
    """A NIfTI file of ``data`` as given (NaN, odd types...), via nibabel."""
    import nibabel as nib

    img = nib.Nifti1Image(data, np.diag([-1.5, -1.5, 2.5, 1.0]) if affine is None else affine)
    if slope is not None:
        img.header.set_slope_inter(slope, 0.0)
    nib.save(img, str(path))
    return path


def nifti_declaring(path: Path, shape, dtype=np.int16, data_bytes: int = 1024, *, data=None, sform=None) -> Path:
    """A (gzipped if .gz) NIfTI written byte by byte: the header declares ``shape``
    and ``sform`` (stored as given, e.g. singular; default RAS of an LPS identity),
    the data is ``data`` or ``data_bytes`` zero bytes."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    sform = np.diag([-1.0, -1.0, 1.0, 1.0]) if sform is None else sform
    header.set_sform(np.asarray(sform, float), code=1)
    header["vox_offset"] = 352
    payload = bytes(data_bytes) if data is None else np.asarray(data, dtype).tobytes(order="F")
    blob = header.binaryblock + b"\x00" * 4 + payload
    if str(path).endswith(".gz"):
        blob = gzip.compress(blob, mtime=0)
    path.write_bytes(blob)
    return path


def plan_and_guide(folder: Path, centre) -> tuple[Path, Path]:
    """A valid one-screw plan at ``centre`` (LPS mm) and a closed box STL around its
    entry: enough for ``check-guide`` to get as far as reading the scan."""
    import json

    import trimesh

    from pipeline.exchange.stl import write_stl

    centre = np.asarray(centre, float)
    plan = {
        "format": "osteoprint-screw-plan",
        "version": 1,
        "units": "mm",
        "coordinate_system": "LPS",
        "source": "manual",
        "screws": [
            {
                "id": "L3-left",
                "level": "L3",
                "side": "left",
                "entry_lps": list(centre + [5, 30, 0]),
                "target_lps": list(centre),
                "diameter_mm": 6.5,
                "length_mm": 45,
            }
        ],
    }
    plan_path = folder / "plan.json"
    plan_path.write_text(json.dumps(plan))
    box = trimesh.creation.box(extents=(8.0, 8.0, 8.0))
    box.apply_translation(centre + [5, 32, 0])
    guide_path = folder / "guide.stl"
    write_stl(guide_path, box)
    return plan_path, guide_path
