"""Values read out of a DICOM header's elements, as the reader needs them.

Each helper takes a dataset (or a value) and returns a plain Python value, never
raising on a malformed element: what cannot be read is a default, or NaN where the
reader must refuse it (a rescale), so that the caller decides.
"""

from __future__ import annotations

import numpy as np

_FALLBACK_SYNTAX = {  # (implicit VR, little endian) of a file without file meta
    (True, True): "1.2.840.10008.1.2",
    (False, True): "1.2.840.10008.1.2.1",
    (False, False): "1.2.840.10008.1.2.2",
}


def rescale(ds) -> tuple[float, float]:
    """(slope, intercept) as the file gives them: missing means stored values are
    HU already (slope 1, intercept 0); present but unreadable or not finite gives
    NaN, and a slope of 0 stays 0, for the reader to refuse (never silently fixed)."""
    return _rescale_value(ds.get("RescaleSlope"), 1.0), _rescale_value(ds.get("RescaleIntercept"), 0.0)


def _rescale_value(value, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        if not isinstance(value, (int, float, str)) and hasattr(value, "__len__"):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return float("nan")


def has_rescale(ds) -> bool:
    return ds.get("RescaleSlope") not in (None, "") or ds.get("RescaleIntercept") not in (None, "")


def padding(ds) -> tuple[int, int] | None:
    value = int_value(ds.get("PixelPaddingValue"))
    if value is None:
        return None
    limit = int_value(ds.get("PixelPaddingRangeLimit"))
    return (min(value, limit), max(value, limit)) if limit is not None else (value, value)


def transfer_syntax(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return str(meta.TransferSyntaxUID)
    implicit, little = ds.original_encoding
    return _FALLBACK_SYNTAX.get((bool(implicit), bool(little)), "1.2.840.10008.1.2")


def about(ds) -> tuple[tuple[str, str], ...]:
    """Non-identifying acquisition details for the scan description and the bone
    density record (kVp, whether a contrast agent is named, the bolus delay)."""
    keys = ("Manufacturer", "ManufacturerModelName", "ConvolutionKernel", "SliceThickness", "KVP")
    from pydicom.multival import MultiValue

    out = []
    for key in keys:
        value = ds.get(key)
        if isinstance(value, MultiValue):  # e.g. ConvolutionKernel "Br38f\\3"
            value = "\\".join(str(v) for v in value)
        if value not in (None, ""):
            out.append((key, str(value).strip()))
    return tuple(out) + _contrast(ds)


#: ContrastBolusAgent values that say no agent was given.
_NO_AGENT = {"", "NONE", "NO", "N/A", "NA", "NIL", "-", "0"}


def _contrast(ds) -> tuple[tuple[str, str], ...]:
    """Whether a contrast agent is named, and the seconds from bolus start to
    acquisition; only the yes/no and the difference are kept (the agent's name is
    free text, the times are times of day)."""
    agent = str(ds.get("ContrastBolusAgent", "") or "").strip().upper()
    out = [("ContrastStated", "no" if agent in _NO_AGENT else "yes")]
    start = _seconds(ds.get("ContrastBolusStartTime"))
    scan = _seconds(ds.get("AcquisitionTime")) or _seconds(ds.get("ContentTime"))
    if out[0][1] == "yes" and start is not None and scan is not None:
        delay = (scan - start) % 86400.0  # a bolus before midnight, a scan after it
        if delay < 3600.0:
            out.append(("ContrastDelay", f"{delay:.1f}"))
    return tuple(out)


def _seconds(value) -> float | None:
    """Seconds since midnight of a DICOM TM value (HHMMSS.FFFFFF), None if unreadable."""
    text = str(value or "").strip().replace(":", "")
    if len(text) < 6 or not text[:6].isdigit():
        return None
    try:
        frac = float("0" + text[6:]) if len(text) > 6 else 0.0
    except ValueError:
        frac = 0.0
    h, m, sec = int(text[:2]), int(text[2:4]), int(text[4:6])
    if h > 23 or m > 59 or sec > 60:
        return None
    return h * 3600.0 + m * 60.0 + sec + frac


def words(value) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        value = value.split("\\")
    return {str(v).strip().upper() for v in value}


def float_value(value, default: float) -> float:
    try:
        if value is None or value == "":
            return default
        if not isinstance(value, (int, float, str)) and hasattr(value, "__len__"):
            value = value[0]
        out = float(value)
        return out if np.isfinite(out) else default
    except (TypeError, ValueError, IndexError):
        return default


def int_value(value) -> int | None:
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None
