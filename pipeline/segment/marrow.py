"""Marrow inside bone, slice by slice: which enclosed regions are marrow.

Cancellous bone in osteoporotic vertebrae (80-160 HU) is darker than any bone
threshold; where the cortex does not enclose it in 3-D (a vascular foramen, a
blurred endplate, a faint cortex on clinical CT), it is recovered slice by slice.
The slice-wise fill must not fill the spinal canal, which is also enclosed by bone in
pedicle-level slices, nor a disc, which an endplate rim can enclose: a cavity is
filled if its median HU looks like bone marrow, not like cerebrospinal fluid or
epidural fat, if bone makes most of its rim, and if it is not darker than the
tissue above and below it. On clinical CT the cortex is rarely closed at a bone
threshold in every slice, so large dark regions (canal, fat) count as walls of the
marrow cavity.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import filters
from .distance import close_in_plane

try:  # fill_voids is 5-7x faster than scipy on these volumes
    import fill_voids
except ImportError:  # pragma: no cover - declared dependency
    fill_voids = None

#: Median HU above which an enclosed hole is marrow, not canal (CSF ~10, cord ~35).
MARROW_MIN_HU = 50.0
#: Dark regions (below MARROW_MIN_HU after a 1 mm blur) at least this large in a
#: slice are canal or fat, never marrow, mm² (the canal is ~150-250 mm²).
CANAL_MIN_MM2 = 30.0
#: Share of a marrow cavity's rim that must be bone (the rest may be dark tissue
#: such as the canal where the posterior wall is open). The partial-volume ring
#: between the canal and its bony wall has about half.
MARROW_RIM_BONE = 0.6
#: A cavity darker than the tissue 4-6 mm above and below it by this much (median,
#: HU) is a disc, not marrow (see :func:`disc_dip`).
DISC_DIP_HU = 25.0
#: A cavity next to a disc cavity and at most this much brighter (median HU) is
#: more of the same disc.
DISC_MATCH_HU = 15.0
#: The thickest intervertebral disc (lower lumbar), mm.
MAX_DISC_MM = 12.0


def fill_marrow_slices(
    mask: np.ndarray,
    hu: np.ndarray,
    spacing,
    axis: int = 0,
    marrow_min_hu: float = MARROW_MIN_HU,
    seal_mm: float = 3.0,
) -> np.ndarray:
    """Fill 2-D holes, slice by slice along ``axis``, whose median HU is marrow-like.

    Parameters
    ----------
    mask : ndarray of bool
        Bone mask.
    hu : ndarray
        The CT in HU, same shape.
    spacing : sequence of 3 float
        Voxel size per axis, mm.
    axis : int
        Slice axis (the superior-inferior axis for axial slices).
    marrow_min_hu : float
        Holes with a median below this (canal, fat, air) are left open.
    seal_mm : float
        Gaps in the cortex up to about twice this (the basivertebral foramen, a
        blurred stretch of thin cortex) are bridged when looking for holes; a
        bridge becomes bone only where it opens onto filled marrow and not onto
        the outside.
    """
    sealed = close_in_plane(mask, spacing, seal_mm, axis) | mask
    plane = np.expand_dims(ndimage.generate_binary_structure(2, 1), axis)
    plane = np.concatenate([np.zeros_like(plane), plane, np.zeros_like(plane)], axis=axis)
    dark = _dark_walls(hu, sealed, spacing, axis, plane, marrow_min_hu)
    walls = sealed | dark
    enclosed = _fill_planar(walls, axis)
    marrow = _marrow_cavities(enclosed & ~walls, hu, sealed, dark, spacing, axis, plane, marrow_min_hu)
    marrow &= ~_dark_fringe(marrow, hu, dark, spacing, axis, plane, marrow_min_hu)
    gaps = sealed & ~mask
    marrow |= _filled_gaps(gaps, marrow, hu, enclosed, _fill_planar(sealed, axis), plane, marrow_min_hu)
    return mask | marrow


def _dark_walls(hu, sealed, spacing, axis, plane, marrow_min_hu) -> np.ndarray:
    """Large dark regions in each slice: CSF, epidural and outer fat, air.

    They are walls of the marrow cavity too. On real scans the posterior wall of
    the body is often too faint or too open (basivertebral foramen) to seal, and the
    canal leaks to the outside between the laminae: with the canal as a wall the
    marrow is still a cavity. Dark is below marrow HU after a 1 mm in-plane blur;
    fat islands inside marrow are a few mm² and are not walls.
    """
    sigma = [0.0 if i == axis else 1.0 / float(s) for i, s in enumerate(spacing)]
    dark = ~sealed & (filters.gaussian(hu, sigma) < marrow_min_hu)
    labels, n = ndimage.label(dark, structure=plane)
    pixel_mm2 = float(np.prod([s for i, s in enumerate(spacing) if i != axis]))
    large = np.bincount(labels.ravel(), minlength=n + 1) * pixel_mm2 >= CANAL_MIN_MM2
    large[0] = False
    return large[labels]


def _marrow_cavities(holes, hu, sealed, dark, spacing, axis, plane, marrow_min_hu) -> np.ndarray:
    """The cavities (in-plane holes between walls) that are marrow.

    A cavity is marrow when its median HU is marrow-like (a canal not sealed off by
    darkness is not), when most of its rim is bone (soft tissue ringed by fat, a
    muscle between fat planes, has a dark rim), and when it is not a disc: a disc
    ringed by its endplate rim (partial volume, a calcified annulus) has a median HU
    (70-110) that overlaps osteoporotic marrow, but is darker than the marrow a few
    millimetres above and below it.
    """
    labels, n = ndimage.label(holes, structure=plane)
    if n == 0:
        return np.zeros(holes.shape, dtype=bool)
    rim, owner = _rim(holes, labels, sealed | dark, plane, axis)
    bone_rim = np.bincount(owner[sealed.ravel()[rim]], minlength=n + 1)[1:]
    dark_rim = np.bincount(owner[dark.ravel()[rim]], minlength=n + 1)[1:]
    median = _median_per_label(labels, hu, n)
    dip = _median_per_label(labels, disc_dip(hu, spacing, axis), n)
    disc = np.zeros(n + 1, dtype=bool)
    disc[1:] = dip >= DISC_DIP_HU
    # Only cavities no darker than their surroundings (not marrow beside a darker
    # disc, which dips below 0) may be outer slices of a disc, and within half the
    # thickest disc of the one the dip found.
    could = np.concatenate([[False], (dip >= -0.5 * DISC_DIP_HU)])
    steps = max(int(round(0.5 * MAX_DISC_MM / float(spacing[axis]))), 1)
    disc = _spread_disc(labels, disc, median, could, axis, steps)
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = (median >= marrow_min_hu) & (bone_rim >= MARROW_RIM_BONE * (bone_rim + dark_rim))
    keep &= ~disc
    return keep[labels]


def _spread_disc(labels, disc, median, could, axis: int, steps: int) -> np.ndarray:
    """Extend the disc verdict to the disc's other slices.

    The dip test sees a disc only where the tissue a few millimetres above and
    below is marrow: in the outer slices of a thick (lumbar) disc one side is still
    disc. A cavity that ``could`` be disc, overlapping a disc cavity in the next
    slice by half its area, with a median HU no brighter than the disc's by
    ``DISC_MATCH_HU``, is the same disc; ``steps`` slices at most.
    """
    a = np.moveaxis(labels, axis, 0)
    lo, hi = a[:-1].ravel(), a[1:].ravel()
    both = (lo > 0) & (hi > 0)
    if not both.any():
        return disc
    n = len(disc) - 1
    pairs, overlap = np.unique(lo[both].astype(np.int64) * (n + 1) + hi[both], return_counts=True)
    p, q = pairs // (n + 1), pairs % (n + 1)
    area = np.bincount(labels.ravel(), minlength=n + 1)
    big = overlap >= 0.5 * np.minimum(area[p], area[q])
    p, q = np.concatenate([p[big], q[big]]), np.concatenate([q[big], p[big]])
    med = np.concatenate([[np.inf], median])
    disc = disc.copy()
    for _ in range(steps):
        grow = disc[p] & ~disc[q] & could[q] & (med[q] <= med[p] + DISC_MATCH_HU)
        if not grow.any():
            break
        disc[q[grow]] = True
    return disc


def _dark_fringe(marrow, hu, dark, spacing, axis, plane, marrow_min_hu) -> np.ndarray:
    """Dark voxels of the marrow cavities that are connected to a dark wall.

    Where the posterior wall of the body is open, the band of the canal between its
    dark core (a wall) and its bony ring is joined to the marrow through the gap and
    would be judged, and filled, with it. With a light (0.5 mm) blur that band is
    still CSF-dark; dark spots inside marrow (fat) do not touch a dark wall.
    """
    sigma = [0.0 if i == axis else 0.5 / float(s) for i, s in enumerate(spacing)]
    low = marrow & (filters.gaussian(hu, sigma) < marrow_min_hu)
    labels, n = ndimage.label(low, structure=plane)
    if n == 0:
        return low
    fringe = np.zeros(n + 1, dtype=bool)
    fringe[np.unique(labels[filters.binary_dilation(dark, plane) & low])] = True
    fringe[0] = False
    return fringe[labels]


def _filled_gaps(gaps, marrow, hu, enclosed, bone_outline, plane, marrow_min_hu) -> np.ndarray:
    """The bridges and pores of the sealing (sealed, not bone) that become bone.

    A gap becomes bone when it opens onto marrow (the basivertebral foramen, a faint
    stretch of cortex, the spaces between trabeculae) or lies inside the bone's own
    outline (in a spinous process or a lamina, a few millimetres thick, the closing
    covers the whole marrow space); not when it spans fat or air or reaches the
    outside: then it is a closing over an outer notch or a joint space (a facet joint
    filled in would weld two vertebrae). "Inside" uses the outline of bone alone:
    once dark fat counts as a wall, every concave corner would be enclosed.
    """
    labels, m = ndimage.label(gaps, structure=plane)
    if m == 0:
        return np.zeros(gaps.shape, dtype=bool)

    def touched(region):
        return np.unique(labels[filters.binary_dilation(region, plane) & gaps])

    join = np.ones(m + 1, dtype=bool)
    join[touched(~bone_outline)] = False
    join[touched(marrow)] = True
    join[1:] &= _median_per_label(labels, hu, m) >= marrow_min_hu
    join[touched(~enclosed)] = False
    join[0] = False
    return join[labels]


def _rim(holes, labels, walls, plane, axis):
    """Wall voxels beside a hole (flat indices) and the hole label each borders.

    A wall voxel touching two holes is counted for the higher label, as a maximum
    filter over the in-plane 4-neighbourhood would; only the rim is visited.
    """
    rim = np.flatnonzero(filters.binary_dilation(holes, plane) & walls)
    coords = np.unravel_index(rim, labels.shape)
    flat = labels.ravel()
    owner = np.zeros(len(rim), dtype=labels.dtype)
    strides = np.cumprod((labels.shape[1:] + (1,))[::-1])[::-1]
    for dim in (d for d in range(labels.ndim) if d != axis):
        for step in (-1, 1):
            ok = (coords[dim] + step >= 0) & (coords[dim] + step < labels.shape[dim])
            np.maximum(owner, np.where(ok, flat[np.where(ok, rim + step * strides[dim], rim)], 0), out=owner)
    return rim, owner


def disc_dip(hu: np.ndarray, spacing, axis: int = 0, steps_mm=(4.0, 6.0)) -> np.ndarray:
    """How much darker each voxel is than the tissue above and below it, HU.

    ``min(above, below) - here`` on a 1 mm blur, for neighbours ``steps_mm`` away
    along ``axis`` (the larger of the two steps' scores); 0 where a neighbour falls
    outside the scan. A disc between two vertebral bodies scores 40-80 HU on
    clinical CT; marrow, which has marrow or a disc on one side, scores about 0.
    """
    smooth = filters.gaussian(hu, [1.0 / float(s) for s in spacing])
    out = np.zeros(hu.shape, dtype=np.float32)
    moved_s = np.moveaxis(smooth, axis, 0)
    moved_o = np.moveaxis(out, axis, 0)
    n = moved_s.shape[0]
    for step_mm in steps_mm:
        k = max(int(round(step_mm / float(spacing[axis]))), 1)
        if n <= 2 * k:
            continue
        centre = moved_s[k : n - k]
        score = np.minimum(moved_s[: n - 2 * k], moved_s[2 * k :]) - centre
        np.maximum(moved_o[k : n - k], score, out=moved_o[k : n - k])
    return out


def _median_per_label(labels: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Lower median of ``values`` over each label 1..n (faster than ndimage.median)."""
    sel = labels > 0
    lab = labels[sel]
    val = values[sel]
    order = np.lexsort((val, lab))
    lab, val = lab[order], val[order]
    ids = np.arange(1, n + 1)
    starts = np.searchsorted(lab, ids)
    ends = np.searchsorted(lab, ids, side="right")
    return val[(starts + ends - 1) // 2].astype(float)


def _fill_planar(mask: np.ndarray, axis: int) -> np.ndarray:
    out = np.empty_like(mask)
    moved_in = np.moveaxis(mask, axis, 0)
    moved_out = np.moveaxis(out, axis, 0)
    for k in range(moved_in.shape[0]):
        sl = moved_in[k]
        if fill_voids is not None:
            moved_out[k] = fill_voids.fill(np.ascontiguousarray(sl), in_place=False)
        else:
            moved_out[k] = ndimage.binary_fill_holes(sl)
    return out
