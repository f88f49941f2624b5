"""Euclidean distances inside and outside masks, in millimetres.

The ``edt`` package is several times faster than scipy's transform on these volumes
and handles anisotropic voxels; scipy is the fallback.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

try:
    import edt as _edt
except ImportError:  # pragma: no cover - declared dependency
    _edt = None


def depth_mm(mask: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm) from each voxel of ``mask`` to the nearest voxel outside it.

    The array border does not count as outside: a structure cut by the scan's edge
    keeps its depth there.
    """
    spacing = tuple(float(s) for s in spacing)
    mask = np.ascontiguousarray(mask, dtype=bool)
    if _edt is not None:
        return _edt.edt(mask, anisotropy=spacing, black_border=False, parallel=2)
    if mask.all():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return ndimage.distance_transform_edt(mask, sampling=spacing).astype(np.float32)


def within_mm(mask: np.ndarray, spacing, distance: float) -> np.ndarray:
    """Voxels at most ``distance`` mm from ``mask`` (a Euclidean dilation)."""
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return out
    # Only the mask's box, widened by the distance, can be reached: transform that.
    reach = np.ceil(float(distance) / np.asarray(spacing, dtype=float)).astype(int) + 1
    box = tuple(slice(max(s.start - r, 0), s.stop + r) for s, r in zip(ndimage.find_objects(mask.view(np.uint8))[0], reach))
    out[box] = depth_mm(~mask[box], spacing) <= distance
    return out
