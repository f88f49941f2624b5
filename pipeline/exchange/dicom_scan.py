"""Find DICOM images in a folder, read their headers and group them into series.

Only headers are read here (``stop_before_pixels``), so scanning a folder of a few
thousand files is fast and memory-light. Every file that cannot be part of a CT
volume is recorded with the reason, for the report the user sees.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dicom_geometry import GeometryError, image_plane
from .dicom_tags import about, float_value, has_rescale, int_value, padding, rescale, transfer_syntax, words

ENHANCED_CT_IMAGES = ("1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2")
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
# Objects that may carry pixels or geometry but are never a scan to read.
_NON_IMAGE_MODALITIES = {
    "SEG",
    "RTSTRUCT",
    "RTPLAN",
    "RTDOSE",
    "RTRECORD",
    "SR",
    "PR",
    "KO",
    "REG",
    "FID",
    "RWV",
    "DOC",
    "PLAN",
    "AU",
    "ECG",
}
_LOCALIZER_WORDS = {"LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "SCANOGRAM"}


class Skip(Exception):
    """A file or image that cannot be used: ``category`` (counted) and ``reason`` (shown)."""

    def __init__(self, category: str, reason: str):
        super().__init__(reason)
        self.category = category
        self.reason = reason


@dataclass(frozen=True)
class ImageRecord:
    """What the reader needs to know about one 2-D image (a file, or a frame of one).

    Positions are LPS mm, spacing mm; ``spacing`` is DICOM PixelSpacing order
    (between rows, between columns).
    """

    path: Path
    frame: int | None
    series_uid: str  # SeriesInstanceUID, or a substitute key (see :func:`series_key`)
    ipp: np.ndarray
    iop: np.ndarray
    rows: int
    columns: int
    spacing: tuple[float, float]
    slope: float
    intercept: float
    bits_stored: int
    pixel_representation: int
    padding: tuple[int, int] | None
    transfer_syntax: str
    forced: bool
    tilt_deg: float
    modality: str
    original: bool
    series_number: int | None
    description: str
    about: tuple[tuple[str, str], ...] = field(default=())
    bits_allocated: int = 16
    rescale_given: bool = True


@dataclass
class FolderScan:
    """The result of scanning a folder: images grouped by series, and what was skipped."""

    folder: Path
    n_files: int = 0
    series: dict[str, list[ImageRecord]] = field(default_factory=dict)
    # (path relative to folder, category, reason)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SeriesSummary:
    """One series found in a folder, as shown to the user (no identifiers).

    ``number`` is the SeriesNumber (None if absent); ``note`` says why a series
    would not be chosen automatically ("" for a usable CT series).
    """

    hash: str
    number: int | None
    description: str
    modality: str
    n_images: int
    chosen: bool = False
    note: str = ""


def series_hash(series_uid: str) -> str:
    """The short, non-reversible series identifier used in reports and manifests."""
    return hashlib.sha256(series_uid.encode("ascii", "replace")).hexdigest()[:12]


def iter_files(folder: Path):
    """Every non-hidden file below ``folder``, in a stable order.

    Raises OSError when ``folder`` itself cannot be listed (sub-folders that cannot
    be are left out, as unreadable media are).
    """
    os.listdir(folder)
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def scan_folder(folder: Path) -> FolderScan:
    """Read the header of every file below ``folder`` and group the images by series."""
    scan = FolderScan(folder=folder)
    for path in iter_files(folder):
        scan.n_files += 1
        rel = os.path.relpath(path, folder)
        try:
            ds, forced = read_header(path)
            for rec in image_records(path, ds, forced):
                scan.series.setdefault(rec.series_uid, []).append(rec)
        except Skip as skip:
            scan.skipped.append((rel, skip.category, skip.reason))
    return scan


def read_header(path: Path):
    """Read a DICOM header without pixel data; return ``(dataset, forced)``.

    Raises
    ------
    Skip
        For anything that is not a readable DICOM dataset.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    _regular_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, stop_before_pixels=True), False
    except InvalidDicomError:
        pass
    except OSError as exc:
        raise Skip("unreadable file", f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    except Exception as exc:  # pydicom raises many types on corrupt headers
        raise Skip("unreadable DICOM file", f"corrupt DICOM header ({_short(exc)})") from None
    if not _looks_like_raw_dataset(path):
        raise Skip("non-DICOM file", "not a DICOM file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:
        raise Skip("unreadable DICOM file", f"corrupt DICOM dataset ({_short(exc)})") from None
    if "SOPClassUID" not in ds and "Modality" not in ds:
        raise Skip("non-DICOM file", "not a DICOM file")
    return ds, True


def _regular_file(path: Path) -> None:
    """Skip anything that is not a regular file: reading a named pipe or a device
    would block forever or never end."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise Skip("unreadable file", "broken link (its target does not exist)") from None
    except OSError as exc:
        raise Skip("unreadable file", f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(mode):
        kind = (
            "named pipe"
            if stat.S_ISFIFO(mode)
            else "socket"
            if stat.S_ISSOCK(mode)
            else "device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "special file"
        )
        raise Skip("special file", f"not a regular file ({kind})")


def _looks_like_raw_dataset(path: Path) -> bool:
    """True if the file starts like a DICOM dataset written without preamble.

    Such files (common from old PACS exports) begin directly with a group 0002 or
    0008 element tag; ``force=True`` is used only for them, because pydicom will
    otherwise "read" almost any binary file.
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8:
        return False
    group_le = int.from_bytes(head[0:2], "little")
    element_le = int.from_bytes(head[2:4], "little")
    group_be = int.from_bytes(head[0:2], "big")
    return (group_le in (0x0002, 0x0008) and element_le < 0x0100) or group_be == 0x0008


def image_records(path: Path, ds, forced: bool) -> list[ImageRecord]:
    """The 2-D images a header describes (one, or one per frame of an enhanced CT).

    Raises
    ------
    Skip
        For objects that are not cross-sectional images with a usable geometry.
    """
    meta = getattr(ds, "file_meta", None)
    sop_class = str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta is not None else ""))
    if sop_class == _MEDIA_DIRECTORY or "DirectoryRecordSequence" in ds:
        raise Skip("DICOMDIR", "DICOMDIR (an index of the media, not an image)")
    modality = str(ds.get("Modality", "") or "").upper()
    if modality in _NON_IMAGE_MODALITIES:
        raise Skip("non-image object", f"not an image ({modality} object, {_sop_name(sop_class)})")
    if "Rows" not in ds or "Columns" not in ds:
        raise Skip("non-image object", f"not an image ({_sop_name(sop_class)})")
    if sop_class.startswith(_SECONDARY_CAPTURE_PREFIX):
        raise Skip("secondary capture", f"secondary capture ({_sop_name(sop_class)})")
    image_type = words(ds.get("ImageType"))
    if image_type & _LOCALIZER_WORDS:
        raise Skip("localizer image", "localizer (scout) image")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise Skip("colour image", "colour image, not a CT slice")

    common = dict(
        path=path,
        series_uid=series_key(ds),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16),
        bits_allocated=int(ds.get("BitsAllocated", 16) or 16),
        pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
        padding=padding(ds),
        transfer_syntax=transfer_syntax(ds),
        forced=forced,
        tilt_deg=float_value(ds.get("GantryDetectorTilt"), 0.0),
        modality=modality or "?",
        original=not ({"DERIVED", "SECONDARY"} & image_type),
        series_number=int_value(ds.get("SeriesNumber")),
        description=str(ds.get("SeriesDescription", "") or ""),
        about=about(ds),
    )
    n_frames = int_value(ds.get("NumberOfFrames")) or 1
    if "PerFrameFunctionalGroupsSequence" in ds or sop_class in ENHANCED_CT_IMAGES:
        return _frames(ds, n_frames, common)
    if n_frames > 1:
        raise Skip("multi-frame image", f"multi-frame image without per-frame geometry ({_sop_name(sop_class)})")
    ipp, iop, spacing = _geometry(
        ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient"), ds.get("PixelSpacing")
    )
    slope, intercept = rescale(ds)
    return [
        ImageRecord(
            frame=None,
            ipp=ipp,
            iop=iop,
            spacing=spacing,
            slope=slope,
            intercept=intercept,
            rescale_given=has_rescale(ds),
            **common,
        )
    ]


def _frames(ds, n_frames: int, common: dict) -> list[ImageRecord]:
    """Per-frame records of an enhanced (multi-frame) image from its functional groups."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != n_frames:
        raise Skip(
            "unreadable DICOM file", f"enhanced image lists {len(per_frame)} frame descriptions for {n_frames} frames"
        )

    def item(group: str, frame_item):
        for source in (frame_item, shared):
            if source is not None and group in source and source[group].value:
                return source[group].value[0]
        return None

    records = []
    for k, fg in enumerate(per_frame):
        frame_type = item("CTImageFrameTypeSequence", fg)
        if frame_type is not None and words(frame_type.get("FrameType")) & _LOCALIZER_WORDS:
            continue
        pos, ori, meas = (
            item(g, fg) for g in ("PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence")
        )
        ipp, iop, spacing = _geometry(
            pos.get("ImagePositionPatient") if pos is not None else None,
            ori.get("ImageOrientationPatient") if ori is not None else None,
            meas.get("PixelSpacing") if meas is not None else None,
        )
        transform = item("PixelValueTransformationSequence", fg)
        source = transform if transform is not None else ds
        slope, intercept = rescale(source)
        records.append(
            ImageRecord(
                frame=k,
                ipp=ipp,
                iop=iop,
                spacing=spacing,
                slope=slope,
                intercept=intercept,
                rescale_given=has_rescale(source),
                **common,
            )
        )
    if not records:
        raise Skip("localizer image", "enhanced image holding only localizer frames")
    return records


#: Prefix of the grouping key of images whose SeriesInstanceUID is empty.
NO_SERIES_UID = "no-series-uid|"


def series_key(ds) -> str:
    """SeriesInstanceUID, or for images without one (some anonymisers blank it) a key
    made of the study, frame of reference, series number, description and modality."""
    uid = str(ds.get("SeriesInstanceUID", "") or "").strip()
    if uid:
        return uid
    parts = (
        ds.get(k, "")
        for k in ("StudyInstanceUID", "FrameOfReferenceUID", "SeriesNumber", "SeriesDescription", "Modality")
    )
    return NO_SERIES_UID + "|".join(str(p or "") for p in parts)


def _geometry(ipp, iop, spacing):
    try:
        return image_plane(ipp, iop, spacing)
    except GeometryError as exc:
        raise Skip("image without geometry", str(exc)) from None


def _sop_name(sop_class: str) -> str:
    from pydicom.uid import UID

    if not sop_class:
        return "no SOP class"
    name = UID(sop_class).name
    return name if name != sop_class else "unknown SOP class"


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def summarize(scan: FolderScan) -> list[SeriesSummary]:
    """One summary per series, ordered by SeriesNumber then hash (no chosen flag)."""
    out = []
    for uid, recs in scan.series.items():
        # Files of one series may disagree (a stray scout); show what most of them say.
        modality = most_common(r.modality for r in recs)
        note = ""
        if modality != "CT":
            note = f"{modality}, not CT"
        elif len(recs) < 2:
            note = "single image"
        elif not any(r.original for r in recs):
            note = "derived images"
        out.append(
            SeriesSummary(
                hash=series_hash(uid),
                number=most_common(r.series_number for r in recs),
                description=most_common(r.description for r in recs),
                modality=modality,
                n_images=len(recs),
                note=note,
            )
        )
    return sorted(out, key=lambda s: (s.number is None, s.number or 0, s.hash))


def most_common(values):
    return Counter(values).most_common(1)[0][0]


_NOUNS = {  # skip category -> (singular, plural) as shown in warnings
    "inconsistent image": (
        "image inconsistent with the rest of its series",
        "images inconsistent with the rest of their series",
    ),
    "DICOMDIR": ("DICOMDIR", "DICOMDIRs"),
    "image without geometry": ("image without geometry", "images without geometry"),
}


def count_phrase(counts: Counter) -> str:
    """E.g. "2 localizer images, 1 DICOMDIR and 1 non-DICOM file"."""
    parts = []
    for cat, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        one, many = _NOUNS.get(cat, (cat, cat + "s"))
        parts.append(f"{n} {one if n == 1 else many}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
