"""Euclidean distances inside, outside and across masks, in millimetres.

The ``edt`` package is several times faster than scipy's transform on these
volumes and handles anisotropic voxels; scipy is the fallback. Distances are from
voxel centre to the nearest voxel centre of the other phase; :func:`signed_distance`
moves them onto the boundary half a voxel in.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

try:
    import edt as _edt
except ImportError:  # pragma: no cover - declared dependency
    _edt = None


def depth_mm(mask: np.ndarray, spacing, *, edge_is_outside: bool = False) -> np.ndarray:
    """Distance (mm) from each voxel of ``mask`` to the nearest voxel outside it.

    Parameters
    ----------
    mask : ndarray of bool, 2-D or 3-D
    spacing : sequence of float
        Voxel size along each array axis, mm.
    edge_is_outside : bool
        Whether the array's border counts as outside. False (the default) suits
        anatomy cut by the scan's edge, which keeps its depth there; True suits a
        crop whose border is known to be outside (a depth that must stay finite).

    Returns
    -------
    ndarray of float32
        0 outside the mask; ``inf`` everywhere when nothing is outside.
    """
    spacing = tuple(float(s) for s in spacing)
    mask = np.ascontiguousarray(mask, dtype=bool)
    if len(spacing) != mask.ndim:
        raise ValueError(f"spacing has {len(spacing)} values for a {mask.ndim}-D mask")
    if _edt is not None:
        return _edt.edt(mask, anisotropy=spacing, black_border=edge_is_outside, parallel=2)
    if edge_is_outside:
        padded = np.pad(mask, 1)
        inner = tuple(slice(1, -1) for _ in range(mask.ndim))
        return ndimage.distance_transform_edt(padded, sampling=spacing)[inner].astype(np.float32)
    if mask.all():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return ndimage.distance_transform_edt(mask, sampling=spacing).astype(np.float32)


def within_mm(mask: np.ndarray, spacing, distance: float) -> np.ndarray:
    """Voxels at most ``distance`` mm (centre to centre) from ``mask``: a Euclidean dilation."""
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return out
    # Only the mask's box, widened by the distance, can be reached: transform that.
    spacing = np.broadcast_to(np.asarray(spacing, dtype=float), (mask.ndim,))
    reach = np.ceil(float(distance) / spacing).astype(int) + 1
    found = ndimage.find_objects(mask.view(np.uint8))[0]
    box = tuple(slice(max(s.start - r, 0), s.stop + r) for s, r in zip(found, reach))
    out[box] = depth_mm(~mask[box], spacing) <= distance
    return out


def signed_distance(mask: np.ndarray, spacing) -> np.ndarray:
    """Signed distance (mm) to the boundary of ``mask``: negative inside, positive outside.

    The boundary lies half a voxel from the centres on either side of it, hence
    the half-voxel correction (the mean spacing for anisotropic voxels: exact along
    each axis of an isotropic grid). The array's border is not a boundary.

    Parameters
    ----------
    mask : ndarray of bool
    spacing : float or sequence of float
        Voxel size, mm (one value for an isotropic grid).

    Returns
    -------
    ndarray of float32
    """
    mask = np.asarray(mask, dtype=bool)
    spacing = np.broadcast_to(np.asarray(spacing, float), (mask.ndim,))
    half = 0.5 * float(spacing.mean())
    inside = depth_mm(mask, spacing)
    outside = depth_mm(~mask, spacing)
    return np.where(mask, -(inside - half), outside - half).astype(np.float32)
