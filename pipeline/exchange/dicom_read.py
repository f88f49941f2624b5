"""Read a CT volume from a folder of DICOM files (pipeline stage 1).

The folder may hold anything: several series, localizers, reports, a DICOMDIR,
files without names or extensions, in any order. The reader picks the CT series the
user means, checks its geometry, decodes it one file at a time and returns a
:class:`~pipeline.volume.CTVolume` whose affine places every voxel at its patient
position. What it skipped, tolerated or corrected is reported; patient identifiers
and raw UIDs never leave this module (series are named by a short hash).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..volume import CTVolume, ScanInfo
from .dicom_geometry import (DuplicateClash, GeometryError, align_slice, drop_duplicates,
                             majority_geometry, plan_stack, resample_positions, slice_normal,
                             sort_by_position)
from .dicom_scan import (NO_SERIES_UID, FolderScan, ImageRecord, SeriesSummary, Skip,
                         count_phrase, most_common, read_header, scan_folder, series_hash,
                         series_key, summarize)
from .nifti import is_nifti

#: Transfer syntax UID prefix -> pip package whose pydicom plugin decodes it.
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.5": "pylibjpeg-libjpeg",   # JPEG baseline, extended, lossless
    "1.2.840.10008.1.2.4.7": "pylibjpeg-libjpeg",   # JPEG lossless SV1
    "1.2.840.10008.1.2.4.8": "pyjpegls",            # JPEG-LS
    "1.2.840.10008.1.2.4.9": "pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.20": "pylibjpeg-openjpeg",  # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}
#: HU given to Pixel Padding Value voxels (outside the reconstructed field of view)
#: and to the image edges uncovered when tilted slices are shifted.
AIR_HU = -1024.0


@dataclass
class ReadReport:
    """What the reader saw, for the terminal: skipped files and the series found.

    ``skipped`` holds (path relative to the input folder, reason) pairs.
    """

    skipped: list[tuple[str, str]] = field(default_factory=list)
    series: list[SeriesSummary] = field(default_factory=list)


def list_series(folder: str | os.PathLike) -> list[SeriesSummary]:
    """The image series in ``folder`` (recursively), the default choice flagged.

    Ordered by SeriesNumber, then hash; a 1-based index into this list is one way
    to select a series in :func:`load_series`.
    """
    folder = _existing_folder(folder)
    scan = scan_folder(folder)
    summaries = summarize(scan)
    try:
        chosen = _choose(scan, summaries, None, folder)
    except InputError:
        return summaries
    return [_mark(s, s.hash == series_hash(chosen)) for s in summaries]


def load_series(folder_or_file: str | os.PathLike, series: str | int | None = None, *,
                on_progress: Callable[[int, int], None] | None = None
                ) -> tuple[CTVolume, ReadReport]:
    """Read one CT series from a DICOM folder (or the folder of one of its files).

    Parameters
    ----------
    folder_or_file : path
        A folder (searched recursively) or one DICOM file, whose series is read
        from its folder.
    series : str or int, optional
        Which series: its 12-hex hash (or a unique prefix of at least 4 hex
        characters, not all digits), its SeriesNumber (an int or digit string;
        when no single series has that number it is taken as a 1-based index into
        :func:`list_series`). Default: the file's series, or else the original
        axial CT series with the most slices.
    on_progress : callable, optional
        Called as ``on_progress(done, total)`` while slices are decoded.

    Returns
    -------
    volume : CTVolume
        HU (int16 when every rescale is integral and the values fit, else float32),
        axes (slice, row, column) with slices ascending along the image normal, and
        the exact affine to LPS mm.
    report : ReadReport
        Skipped files with reasons and the series found.

    Raises
    ------
    InputError
        For anything about the input that prevents a trustworthy volume.
    """
    path = Path(folder_or_file)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    preferred = None
    if path.is_file():
        ds, _ = _header_of_given_file(path)
        preferred = series_key(ds)
        folder = path.parent
    else:
        folder = path
    scan = scan_folder(folder)
    if scan.n_files == 0:
        raise InputError(folder, "folder is empty")
    summaries = summarize(scan)
    uid = _choose(scan, summaries, series, folder, preferred=preferred)
    report = ReadReport(skipped=[(rel, reason) for rel, _, reason in scan.skipped],
                        series=[_mark(s, s.hash == series_hash(uid)) for s in summaries])
    records, excluded = majority_geometry(scan.series[uid])
    for rec, reason in excluded:
        report.skipped.append((_rel(rec, folder), reason))
    volume = _assemble(records, folder, uid, on_progress)
    skip_counts = Counter(cat for _, cat, _ in scan.skipped)
    skip_counts.update("inconsistent image" for _ in excluded)
    notes = []
    if skip_counts:
        notes.append("skipped " + count_phrase(skip_counts))
    if not any(r.original for r in records):
        notes.append("the series holds derived (secondary) images, not original ones")
    if uid.startswith(NO_SERIES_UID):
        notes.append("the images have no SeriesInstanceUID; they were grouped into a series by "
                     "study, frame of reference, series number and description")
    others = Counter(s.modality for s in summaries if s.hash != series_hash(uid))
    if others:
        notes.append(f"{sum(others.values())} other series in the folder not used ("
                     + ", ".join(f"{n} {m}" for m, n in sorted(others.items())) + ")")
    return volume.with_warnings(*notes), report


def _header_of_given_file(path: Path):
    try:
        return read_header(path)
    except Skip as skip:
        raise InputError(path, skip.reason) from None


def _existing_folder(folder) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise InputError(folder, "no such folder")
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    return folder


def _mark(summary: SeriesSummary, chosen: bool) -> SeriesSummary:
    from dataclasses import replace

    return replace(summary, chosen=chosen)


def _choose(scan: FolderScan, summaries, selector, folder, preferred=None) -> str:
    """SeriesInstanceUID of the series to read."""
    by_hash = {series_hash(uid): uid for uid in scan.series}
    if not scan.series:
        counts = Counter(cat for _, cat, _ in scan.skipped)
        found = count_phrase(counts) if counts else "nothing"
        hint = "; give the path of a NIfTI file itself to read it" \
            if any(is_nifti(rel) for rel, _, _ in scan.skipped) else ""
        raise InputError(folder, f"no DICOM images found (found {found}){hint}")
    if selector is not None:
        uid = by_hash[_select(summaries, selector, folder).hash]
    elif preferred is not None and preferred in scan.series:
        uid = preferred
    else:
        candidates = [s for s in summaries if s.modality == "CT" and s.n_images >= 2]
        if not candidates:
            cts = [s for s in summaries if s.modality == "CT"]
            if cts:
                raise InputError(folder, "the CT series found hold a single image each; a "
                                         "volume needs at least 2 slices")
            found = Counter(s.modality for s in summaries)
            raise InputError(folder, "no CT series found; found only "
                             + ", ".join(f"{m} ({n} series)" for m, n in sorted(found.items())))

        def rank(s):
            majority, _ = majority_geometry(scan.series[by_hash[s.hash]])
            axial = abs(slice_normal(majority[0].iop)[2]) > 0.7
            return (not s.note, axial, len(majority))

        uid = by_hash[max(candidates, key=rank).hash]
    modality = most_common(r.modality for r in scan.series[uid])
    if modality != "CT":
        raise InputError(folder, f"series {series_hash(uid)} is {modality}, not CT")
    return uid


def _select(summaries: list[SeriesSummary], selector, folder) -> SeriesSummary:
    text = str(selector).strip().lower()
    matches = [s for s in summaries if s.hash == text]
    if not matches and len(text) >= 4 and all(c in "0123456789abcdef" for c in text) \
            and not text.isdigit():
        matches = [s for s in summaries if s.hash.startswith(text)]
    if not matches and text.lstrip("+-").isdigit():
        number = int(text)
        matches = [s for s in summaries if s.number == number]
        if not matches and 1 <= number <= len(summaries):
            matches = [summaries[number - 1]]
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(f"{i}: {s.hash} (number {s.number}, {s.modality}, {s.n_images} images)"
                        for i, s in enumerate(summaries, 1))
    what = "matches several series" if matches else "matches no series"
    raise InputError(folder, f"series {selector!r} {what}; available: {listing}")


def _rel(rec: ImageRecord, folder: Path) -> str:
    rel = os.path.relpath(rec.path, folder)
    return rel if rec.frame is None else f"{rel} (frame {rec.frame + 1})"


# ---------------------------------------------------------------- decoding


def _assemble(records, folder: Path, uid: str, on_progress) -> CTVolume:
    """Sort, deduplicate, decode and regularise the slices of one series."""
    iop = records[0].iop
    if len(records) < 2:
        raise InputError(folder, f"series {series_hash(uid)} has a single slice; a volume "
                                 "needs at least 2")
    _check_decoders(records)
    order, positions = sort_by_position(np.array([r.ipp for r in records]), iop)
    records = [records[i] for i in order]
    records, dup_warnings = _drop_duplicates(records, positions, folder)
    if len(records) < 2:
        raise InputError(folder, f"series {series_hash(uid)} has a single distinct slice "
                                 "position; a volume needs at least 2")
    try:
        plan = plan_stack(np.array([r.ipp for r in records]), iop, records[0].spacing,
                          tilt_tag_deg=max((r.tilt_deg for r in records), key=abs))
    except GeometryError as exc:
        raise InputError(folder, f"series {series_hash(uid)}: {exc}") from None

    integral = all(float(r.slope).is_integer() and float(r.intercept).is_integer()
                   for r in records)
    stack = _decode_stack(records, plan, integral, on_progress)
    if plan.targets is not None:
        stack = resample_positions(stack, plan.positions, plan.targets)
    hu = _final_dtype(stack, integral)
    syntaxes = sorted({r.transfer_syntax for r in records})
    info = ScanInfo(
        series_hash=series_hash(uid),
        modality="CT",
        source_format="dicom",
        transfer_syntax=" + ".join(_syntax_name(s) for s in syntaxes),
        n_files=len({r.path for r in records}),
        description=_description(records[0]),
        warnings=tuple(dup_warnings) + plan.warnings,
        **_acquisition(records[0]),
    )
    return CTVolume(hu=hu, affine=plan.affine, info=info)


def _check_decoders(records) -> None:
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    for syntax in sorted({r.transfer_syntax for r in records}):
        example = next(r.path for r in records if r.transfer_syntax == syntax)
        name = _syntax_name(syntax)
        try:
            decoder = get_decoder(UID(syntax))
        except NotImplementedError:
            raise InputError(example, f"transfer syntax {name} is not supported "
                                      "(no pixel data decoder exists for it)") from None
        if not decoder.is_available:
            package = next((pkg for prefix, pkg in _DECODER_PACKAGES.items()
                            if syntax.startswith(prefix)), "a pydicom pixel data plugin")
            raise InputError(example, f"cannot decode {name}: install the '{package}' "
                                      "package (pydicom plugin)")


def _syntax_name(syntax: str) -> str:
    from pydicom.uid import UID

    name = UID(syntax).name
    return name if name != syntax else f"unknown ({syntax})"


def _drop_duplicates(records, positions, folder):
    """Keep one of several identical slices at one position; refuse differing ones."""
    try:
        keep = drop_duplicates(positions, lambda i, j: np.array_equal(
            _decode_hu(records[i]), _decode_hu(records[j])))
    except DuplicateClash as clash:
        a, b = records[clash.first], records[clash.second]
        raise InputError(folder, f"two different images at the same slice position "
                                 f"({b.ipp[0]:.2f}, {b.ipp[1]:.2f}, {b.ipp[2]:.2f}) mm: "
                                 f"{_rel(a, folder)} and {_rel(b, folder)}") from None
    n = len(records) - len(keep)
    notes = [f"{n} duplicate slice{'s' if n != 1 else ''} (identical images at an already "
             "present position) ignored"] if n else []
    return [records[i] for i in keep], notes


def _decode_hu(rec: ImageRecord) -> np.ndarray:
    """HU of a single image (used to compare duplicates)."""
    (_, image), = _decode_file(rec, [rec.frame], [0])
    return _to_hu(image, rec)


def _decode_stack(records, plan, integral: bool, on_progress) -> np.ndarray:
    """Decode every slice into one array, aligning sheared slices in-plane.

    Files are read one at a time, so besides the output array only one file's
    pixel data (one slice, or all frames of an enhanced file) is in memory.
    """
    n = len(records)
    shape = (n, records[0].rows, records[0].columns)
    exact = integral and plan.shifts_px is None and plan.targets is None
    stack = np.empty(shape, dtype=np.int16 if exact else np.float32)
    slots: dict[Path, list[tuple[int, int | None]]] = {}
    for index, rec in enumerate(records):
        slots.setdefault(rec.path, []).append((index, rec.frame))
    done = 0
    for path, wanted in slots.items():
        for index, image in _decode_file(records[wanted[0][0]], [f for _, f in wanted],
                                         [i for i, _ in wanted]):
            rec = records[index]
            hu = _to_hu(image, rec)
            if plan.shifts_px is not None:
                hu = align_slice(hu, plan.shifts_px[index], AIR_HU)
            if stack.dtype == np.int16 and (hu.min() < -32768 or hu.max() > 32767):
                stack = stack.astype(np.float32)
            stack[index] = hu
            done += 1
            if on_progress is not None:
                on_progress(done, n)
    return stack


def _decode_file(rec: ImageRecord, frames, indices):
    """Yield ``(index, stored array)`` for the requested frames of one file."""
    import pydicom
    from pydicom.pixels import iter_pixels

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(rec.path, force=rec.forced)
            if rec.forced:
                from pydicom.dataset import FileMetaDataset

                meta = getattr(ds, "file_meta", None) or FileMetaDataset()
                meta.TransferSyntaxUID = rec.transfer_syntax
                ds.file_meta = meta
            if "PixelData" not in ds:
                raise InputError(rec.path, "image has no pixel data")
            if frames == [None]:
                images = {None: ds.pixel_array}
            else:
                want = set(frames)
                images = {k: a for k, a in enumerate(iter_pixels(ds)) if k in want}
    except InputError:
        raise
    except Exception as exc:  # decoders raise many types on corrupt data
        raise InputError(rec.path, _decode_problem(exc)) from None
    for index, frame in zip(indices, frames):
        yield index, images[frame]


def _decode_problem(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "less than expected" in text or "shorter" in text or "truncat" in text.lower():
        return "pixel data is shorter than expected (truncated or corrupt file)"
    return f"cannot decode pixel data ({type(exc).__name__}: {text[:160]})"


def _to_hu(stored: np.ndarray, rec: ImageRecord) -> np.ndarray:
    """HU of one slice, float64: masked to BitsStored, rescaled, padding set to air."""
    stored = np.asarray(stored)
    if stored.shape != (rec.rows, rec.columns):
        raise InputError(rec.path, f"pixel data has shape {stored.shape}, expected "
                                   f"{rec.rows}x{rec.columns}")
    values = stored.astype(np.int64)
    bits = rec.bits_stored
    if 0 < bits < 64:
        # Some scanners leave overlay or garbage bits above BitsStored.
        values &= (1 << bits) - 1
        if rec.pixel_representation == 1:
            values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
    hu = values * rec.slope + rec.intercept
    if rec.padding is not None:
        lo, hi = rec.padding
        if rec.pixel_representation == 0 and lo < 0:
            lo, hi = lo & ((1 << bits) - 1), hi & ((1 << bits) - 1)
        hu[(values >= lo) & (values <= hi)] = AIR_HU
    return hu


def _final_dtype(stack: np.ndarray, integral: bool) -> np.ndarray:
    """int16 when every rescale is integral and the HU fit; else float32."""
    if stack.dtype == np.int16:
        return stack
    if integral and stack.min() >= -32768 and stack.max() <= 32767:
        # Interpolated values are rounded: a fraction of an HU is far below CT noise.
        return np.rint(stack).astype(np.int16)
    return stack.astype(np.float32, copy=False)


def _acquisition(rec: ImageRecord) -> dict:
    """kVp and contrast facts for :class:`ScanInfo` (see :func:`.dicom_scan._contrast`)."""
    about = dict(rec.about)
    kvp = _number(about.get("KVP"))
    return {"kvp": kvp if kvp and kvp > 0 else None,
            "contrast_stated": about.get("ContrastStated") == "yes",
            "contrast_delay_s": _number(about.get("ContrastDelay"))}


def _number(text) -> float | None:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _description(rec: ImageRecord) -> str:
    about = dict(rec.about)
    parts = [rec.description] if rec.description else []
    device = " ".join(v for v in (about.get("Manufacturer"), about.get("ManufacturerModelName"))
                      if v)
    if device:
        parts.append(device)
    if about.get("ConvolutionKernel"):
        parts.append(f"kernel {about['ConvolutionKernel']}")
    if about.get("SliceThickness"):
        parts.append(f"slice thickness {about['SliceThickness']} mm")
    if about.get("KVP"):
        parts.append(f"{about['KVP']} kV")
    return "; ".join(parts)
