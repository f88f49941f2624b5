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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..volume import CTVolume, ScanInfo
from .dicom_geometry import (
    DuplicateClash,
    GeometryError,
    drop_duplicates,
    majority_geometry,
    plan_stack,
    resample_positions,
    slice_normal,
    sort_by_position,
)
from .dicom_pixels import check_decoders, check_rescale, check_sizes, decode_hu, decode_stack, final_dtype, syntax_name
from .dicom_scan import (
    NO_SERIES_UID,
    FolderScan,
    ImageRecord,
    SeriesSummary,
    Skip,
    count_phrase,
    most_common,
    read_header,
    scan_folder,
    series_hash,
    series_key,
    summarize,
)
from .nifti import is_nifti
from .plausible import check_hounsfield


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
    scan = _scan(folder)
    summaries = summarize(scan)
    try:
        chosen = _choose(scan, summaries, None, folder)
    except InputError:
        return summaries
    return [_mark(s, s.hash == series_hash(chosen)) for s in summaries]


def load_series(
    folder_or_file: str | os.PathLike,
    series: str | int | None = None,
    *,
    on_progress: Callable[[int, int], None] | None = None,
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
    scan = _scan(folder)
    if scan.n_files == 0:
        raise InputError(folder, "folder is empty")
    summaries = summarize(scan)
    uid = _choose(scan, summaries, series, folder, preferred=preferred)
    report = ReadReport(
        skipped=[(rel, reason) for rel, _, reason in scan.skipped],
        series=[_mark(s, s.hash == series_hash(uid)) for s in summaries],
    )
    records, excluded = majority_geometry(scan.series[uid])
    for rec, reason in excluded:
        report.skipped.append((_rel(rec, folder), reason))
    volume = _assemble(records, folder, uid, on_progress)
    skip_counts = Counter(cat for _, cat, _ in scan.skipped)
    skip_counts.update("inconsistent image" for _ in excluded)
    notes = []
    used = _used_series(scan, summaries, uid)
    if used:
        notes.append(used)
    if skip_counts:
        notes.append("skipped " + count_phrase(skip_counts))
    if not any(r.original for r in records):
        notes.append("the series holds derived (secondary) images, not original ones")
    if uid.startswith(NO_SERIES_UID):
        notes.append(
            "the images have no SeriesInstanceUID; they were grouped into a series by "
            "study, frame of reference, series number and description"
        )
    others = Counter(s.modality for s in summaries if s.hash != series_hash(uid))
    if others:
        notes.append(
            f"{sum(others.values())} other series in the folder not used ("
            + ", ".join(f"{n} {m}" for m, n in sorted(others.items()))
            + ")"
        )
    return volume.with_warnings(*notes), report


def _scan(folder: Path) -> FolderScan:
    try:
        return scan_folder(folder)
    except OSError as exc:
        raise InputError(folder, f"cannot be read ({exc.strerror or type(exc).__name__})") from None


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
        hint = (
            "; give the path of a NIfTI file itself to read it"
            if any(is_nifti(rel) for rel, _, _ in scan.skipped)
            else ""
        )
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
                raise InputError(
                    folder, "the CT series found hold a single image each; a volume needs at least 2 slices"
                )
            found = Counter(s.modality for s in summaries)
            raise InputError(
                folder,
                "no CT series found; found only " + ", ".join(f"{m} ({n} series)" for m, n in sorted(found.items())),
            )

        def rank(s):
            # Usable, axial, most slices; then the larger field of view (the one
            # that covers the spine when a second reconstruction zooms elsewhere);
            # then the hash, so that file order never decides.
            majority, _ = majority_geometry(scan.series[by_hash[s.hash]])
            axial = abs(slice_normal(majority[0].iop)[2]) > 0.7
            return (not s.note, axial, len(majority), round(field_of_view_mm2(majority[0]), 1), s.hash)

        uid = by_hash[max(candidates, key=rank).hash]
    modality = most_common(r.modality for r in scan.series[uid])
    if modality != "CT":
        raise InputError(folder, f"series {series_hash(uid)} is {modality}, not CT")
    return uid


def field_of_view_mm2(rec: ImageRecord) -> float:
    """In-plane area an image covers, mm²."""
    return rec.rows * rec.spacing[0] * rec.columns * rec.spacing[1]


def _used_series(scan: FolderScan, summaries, uid: str) -> str | None:
    """Which of several CT series was read, for the terminal and the manifest."""
    cts = [s for s in summaries if s.modality == "CT" and s.n_images >= 2]
    if len(cts) < 2:
        return None
    ref = scan.series[uid][0]
    h = series_hash(uid)
    s = next(s for s in summaries if s.hash == h)
    fov = f"{ref.columns * ref.spacing[1]:.0f} x {ref.rows * ref.spacing[0]:.0f} mm"
    return (
        f"read CT series {h} (number {s.number}, {s.n_images} images, {fov} field of view), "
        f"one of {len(cts)} CT series in the folder; --series chooses another"
    )


def _select(summaries: list[SeriesSummary], selector, folder) -> SeriesSummary:
    text = str(selector).strip().lower()
    matches = [s for s in summaries if s.hash == text]
    if not matches and len(text) >= 4 and all(c in "0123456789abcdef" for c in text) and not text.isdigit():
        matches = [s for s in summaries if s.hash.startswith(text)]
    if not matches and text.lstrip("+-").isdigit():
        number = int(text)
        matches = [s for s in summaries if s.number == number]
        if not matches and 1 <= number <= len(summaries):
            matches = [summaries[number - 1]]
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(
        f"{i}: {s.hash} (number {s.number}, {s.modality}, {s.n_images} images)" for i, s in enumerate(summaries, 1)
    )
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
        raise InputError(folder, f"series {series_hash(uid)} has a single slice; a volume needs at least 2")
    check_decoders(records)
    check_rescale(records)
    check_sizes(records, len(records), folder)
    order, positions = sort_by_position(np.array([r.ipp for r in records]), iop)
    records = [records[i] for i in order]
    records, dup_warnings = _drop_duplicates(records, positions, folder)
    if len(records) < 2:
        raise InputError(
            folder, f"series {series_hash(uid)} has a single distinct slice position; a volume needs at least 2"
        )
    try:
        plan = plan_stack(
            np.array([r.ipp for r in records]),
            iop,
            records[0].spacing,
            tilt_tag_deg=max((r.tilt_deg for r in records), key=abs),
        )
    except GeometryError as exc:
        raise InputError(folder, f"series {series_hash(uid)}: {exc}") from None

    integral = all(float(r.slope).is_integer() and float(r.intercept).is_integer() for r in records)
    stack = decode_stack(records, plan, integral, on_progress)
    if plan.targets is not None:
        stack = resample_positions(stack, plan.positions, plan.targets)
    hu = final_dtype(stack, integral)
    check_hounsfield(hu, folder, _rescale_hint(records))
    syntaxes = sorted({r.transfer_syntax for r in records})
    info = ScanInfo(
        series_hash=series_hash(uid),
        modality="CT",
        source_format="dicom",
        transfer_syntax=" + ".join(syntax_name(s) for s in syntaxes),
        n_files=len({r.path for r in records}),
        description=_description(records[0]),
        warnings=tuple(dup_warnings) + plan.warnings,
        **_acquisition(records[0]),
    )
    return CTVolume(hu=hu, affine=plan.affine, info=info)


def _rescale_hint(records) -> str:
    """Why decoded values might not be HU, for the message refusing them."""
    ref = records[0]
    if not any(r.rescale_given for r in records):
        if ref.pixel_representation == 0:
            return (
                "stored values are unsigned and the files give no RescaleSlope/RescaleIntercept: "
                "the rescale to HU is missing"
            )
        return "the files give no RescaleSlope/RescaleIntercept"
    return f"as rescaled by RescaleSlope {ref.slope:g} and RescaleIntercept {ref.intercept:g}"


def _drop_duplicates(records, positions, folder):
    """Keep one of several identical slices at one position; refuse differing ones."""
    try:
        keep = drop_duplicates(positions, lambda i, j: np.array_equal(decode_hu(records[i]), decode_hu(records[j])))
    except DuplicateClash as clash:
        a, b = records[clash.first], records[clash.second]
        raise InputError(
            folder,
            f"two different images at the same slice position "
            f"({b.ipp[0]:.2f}, {b.ipp[1]:.2f}, {b.ipp[2]:.2f}) mm: "
            f"{_rel(a, folder)} and {_rel(b, folder)}",
        ) from None
    n = len(records) - len(keep)
    notes = (
        [f"{n} duplicate slice{'s' if n != 1 else ''} (identical images at an already present position) ignored"]
        if n
        else []
    )
    return [records[i] for i in keep], notes


def _acquisition(rec: ImageRecord) -> dict:
    """kVp and contrast facts for :class:`ScanInfo` (see :func:`.dicom_tags._contrast`)."""
    about = dict(rec.about)
    kvp = _number(about.get("KVP"))
    return {
        "kvp": kvp if kvp and kvp > 0 else None,
        "contrast_stated": about.get("ContrastStated") == "yes",
        "contrast_delay_s": _number(about.get("ContrastDelay")),
    }


def _number(text) -> float | None:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _description(rec: ImageRecord) -> str:
    """What scanner and reconstruction made the series. Never the SeriesDescription:
    it is free text that can hold names, and de-identification profiles remove it."""
    about = dict(rec.about)
    parts = []
    device = " ".join(v for v in (about.get("Manufacturer"), about.get("ManufacturerModelName")) if v)
    if device:
        parts.append(device)
    if about.get("ConvolutionKernel"):
        parts.append(f"kernel {about['ConvolutionKernel']}")
    if about.get("SliceThickness"):
        parts.append(f"slice thickness {about['SliceThickness']} mm")
    if about.get("KVP"):
        parts.append(f"{about['KVP']} kV")
    return "; ".join(parts)
