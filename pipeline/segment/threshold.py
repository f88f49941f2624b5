"""Hounsfield-unit threshold presets for bone.

The ranges are those of InVesalius's CT presets (the open tool our users know), plus
a looser ``osteoporotic`` preset: in osteoporotic vertebrae the cortex itself can be
thin and blurred to 200-300 HU in clinical CT, and the cancellous interior sits at
80-160 HU, darker than any bone threshold, so interiors are recovered by hole filling
rather than by lowering the threshold into soft tissue (~40 HU).
"""

from __future__ import annotations

import numpy as np

#: name -> (low HU, high HU, what it selects)
PRESETS: dict[str, tuple[float, float, str]] = {
    "bone": (226.0, 3071.0, "all bone (InVesalius 'Bone')"),
    "compact": (662.0, 1988.0, "cortical/compact bone only (InVesalius 'Compact Bone')"),
    "spongial": (148.0, 661.0, "cancellous/spongy bone (InVesalius 'Spongial Bone')"),
    "osteoporotic": (180.0, 3071.0, "thin, low-density cortex of osteoporotic vertebrae"),
}


def hu_range(preset: str | None = "bone", low: float | None = None, high: float | None = None) -> tuple[float, float]:
    """Resolve a preset name and optional overrides into a ``(low, high)`` HU range.

    Raises ``ValueError`` for an unknown preset or an empty range.
    """
    if preset is None:
        lo, hi = -np.inf, np.inf
    else:
        if preset not in PRESETS:
            raise ValueError(f"unknown threshold preset {preset!r}; choose from {', '.join(PRESETS)}")
        lo, hi, _ = PRESETS[preset]
    lo = lo if low is None else float(low)
    hi = hi if high is None else float(high)
    if not lo < hi:
        raise ValueError(f"empty HU range {lo}..{hi}")
    return float(lo), float(hi)


def threshold(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    """Boolean mask of voxels with ``low <= HU <= high``."""
    return (hu >= low) & (hu <= high)
