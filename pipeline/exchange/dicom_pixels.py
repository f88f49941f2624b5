"""Decode the pixel data of a DICOM series into Hounsfield units, after checking
that the files can hold what their headers declare and the machine the volume.

Files are decoded one at a time; besides the output array only one file's pixel
data is ever in memory. Rescale values are used as given: a slope of 0 or a value
that is not a finite number is refused, never silently replaced.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dicom_geometry import align_slice
from .dicom_scan import ImageRecord

#: Transfer syntax UID prefix -> pip package whose pydicom plugin decodes it.
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.5": "pylibjpeg-libjpeg",  # JPEG baseline, extended, lossless
    "1.2.840.10008.1.2.4.7": "pylibjpeg-libjpeg",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.8": "pyjpegls",  # JPEG-LS
    "1.2.840.10008.1.2.4.9": "pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.20": "pylibjpeg-openjpeg",  # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}
#: Uncompressed transfer syntaxes: the pixel data's size follows from the header.
_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
#: HU given to Pixel Padding Value voxels (outside the reconstructed field of view)
#: and to the image edges uncovered when tilted slices are shifted.
AIR_HU = -1024.0


def check_rescale(records) -> None:
    """Refuse a RescaleSlope of 0 or a slope/intercept that is not a finite number."""
    for rec in records:
        for name, value in (("RescaleSlope", rec.slope), ("RescaleIntercept", rec.intercept)):
            if not math.isfinite(value):
                raise InputError(
                    rec.path, f"{name} is not a finite number: stored values cannot be turned into Hounsfield units"
                )
        if rec.slope == 0:
            raise InputError(rec.path, "RescaleSlope is 0: stored values cannot be turned into Hounsfield units")


def check_sizes(records, n_slices: int, folder) -> None:
    """Before decoding: every uncompressed file holds the pixels its header declares,
    and the volume fits in the memory budget."""
    from .plausible import check_file_holds, check_memory

    frames: dict[Path, int] = {}
    for rec in records:
        frames[rec.path] = max(frames.get(rec.path, 0), (rec.frame or 0) + 1)
    seen = set()
    for rec in records:
        if rec.path in seen or rec.transfer_syntax not in _NATIVE:
            continue
        seen.add(rec.path)
        bits = max(rec.bits_allocated, 1)
        need = math.ceil(rec.rows * rec.columns * frames[rec.path] * bits / 8)
        what = (
            f"its header declares {rec.rows}x{rec.columns} pixels"
            + (f" x {frames[rec.path]} frames" if frames[rec.path] > 1 else "")
            + f" of {bits} bits, which"
        )
        check_file_holds(rec.path, need, what)
    ref = records[0]
    check_memory(
        n_slices * ref.rows * ref.columns,
        folder,
        f"the series declares {n_slices} slices of {ref.rows}x{ref.columns} pixels",
    )


def check_decoders(records) -> None:
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    for syntax in sorted({r.transfer_syntax for r in records}):
        example = next(r.path for r in records if r.transfer_syntax == syntax)
        name = syntax_name(syntax)
        try:
            decoder = get_decoder(UID(syntax))
        except NotImplementedError:
            raise InputError(
                example, f"transfer syntax {name} is not supported (no pixel data decoder exists for it)"
            ) from None
        if not decoder.is_available:
            package = next(
                (pkg for prefix, pkg in _DECODER_PACKAGES.items() if syntax.startswith(prefix)),
                "a pydicom pixel data plugin",
            )
            raise InputError(example, f"cannot decode {name}: install the '{package}' package (pydicom plugin)")


def syntax_name(syntax: str) -> str:
    from pydicom.uid import UID

    name = UID(syntax).name
    return name if name != syntax else f"unknown ({syntax})"


def decode_hu(rec: ImageRecord) -> np.ndarray:
    """HU of a single image (used to compare duplicates)."""
    ((_, image),) = _decode_file(rec, [rec.frame], [0])
    return _to_hu(image, rec)


def decode_stack(records, plan, integral: bool, on_progress) -> np.ndarray:
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
    for wanted in slots.values():
        for index, image in _decode_file(records[wanted[0][0]], [f for _, f in wanted], [i for i, _ in wanted]):
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
                raise InputError(rec.path, "no pixel data: the file is truncated or incomplete")
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
    """HU of one slice (int32 for a unit slope and integral intercept, else float64):
    masked to BitsStored, rescaled, padding set to air."""
    stored = np.asarray(stored)
    if stored.shape != (rec.rows, rec.columns):
        raise InputError(rec.path, f"pixel data has shape {stored.shape}, expected {rec.rows}x{rec.columns}")
    bits = rec.bits_stored
    # 32-bit integers hold every CT's stored values (at most 16 bits) and their
    # integral rescale; 64-bit and float arithmetic only when needed.
    narrow = stored.dtype.itemsize <= 2 and 0 < bits <= 16
    values = stored.astype(np.int32 if narrow else np.int64)
    if 0 < bits < 64:
        # Some scanners leave overlay or garbage bits above BitsStored.
        values &= (1 << bits) - 1
        if rec.pixel_representation == 1:
            values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
    slope, intercept = float(rec.slope), float(rec.intercept)
    if narrow and slope == 1.0 and intercept.is_integer() and abs(intercept) < 2**30:
        hu = values + np.int32(intercept)  # the usual CT rescale: exact in integers
    else:
        hu = values * slope + intercept
    if rec.padding is not None:
        lo, hi = rec.padding
        if rec.pixel_representation == 0 and lo < 0:
            lo, hi = lo & ((1 << bits) - 1), hi & ((1 << bits) - 1)
        hu[(values >= lo) & (values <= hi)] = AIR_HU
    return hu


def final_dtype(stack: np.ndarray, integral: bool) -> np.ndarray:
    """int16 when every rescale is integral and the HU fit; else float32."""
    if stack.dtype == np.int16:
        return stack
    if integral and stack.min() >= -32768 and stack.max() <= 32767:
        # Interpolated values are rounded: a fraction of an HU is far below CT noise.
        return np.rint(stack).astype(np.int16)
    return stack.astype(np.float32, copy=False)
