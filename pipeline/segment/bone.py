"""From thresholded voxels to solid bone: hole filling and island removal.

Cancellous bone in osteoporotic vertebrae (80-160 HU) is darker than any bone
threshold, so a threshold gives only the cortical shell. Segmentations such as
TotalSegmentator's label each vertebra solid; we recover the interior by filling:
first in 3-D (interiors enclosed by cortex and endplates), then slice by slice
(:mod:`.marrow`) for interiors that leak through a vascular foramen, a blurred
endplate or a faint cortex.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import filters
from .distance import in_plane_depth_mm
from .marrow import MARROW_MIN_HU, fill_marrow_slices

try:  # fill_voids and cc3d are 5-7x faster than scipy on these volumes
    import fill_voids
except ImportError:  # pragma: no cover - declared dependency
    fill_voids = None
try:
    import cc3d
except ImportError:  # pragma: no cover - declared dependency
    cc3d = None

#: Locally averaged HU of normal (non-osteoporotic) cancellous bone, 150-300 HU; above
#: discs (~80), muscle (~50) and unenhanced blood (~40).
DENSE_MARROW_HU = 130.0
#: Where between the soft tissue outside and the cortex peak inside the bone edge is
#: drawn. Half-way (0.5) is exact for a thick plate; for a cortex about as thin as
#: the scanner's blur (~1 mm) the blurred profile is wider than the plate, and 0.65
#: puts the mesh surface on the true bone surface with no bias (mean signed error
#: under 0.02 mm on the phantom), where 0.5 left it 0.1 mm outside.
EDGE_FRACTION = 0.65
#: Voxels this small (mm) resolve a cortex: its edge is half its peak.
RESOLVED_MM = 1.6
#: How far from thresholded bone a dense voxel may lie and still be marrow, mm.
NEAR_BONE_MM = 3.0


def fill_3d(mask: np.ndarray) -> np.ndarray:
    """Fill cavities that are enclosed in 3-D."""
    if fill_voids is not None:
        return fill_voids.fill(mask, in_place=False)
    return ndimage.binary_fill_holes(mask)


def label_components(mask: np.ndarray, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Connected components (26-connected by default) as ``(labels, count)``."""
    if cc3d is not None:
        labels, n = cc3d.connected_components(mask, connectivity=connectivity, return_N=True)
        return labels, int(n)
    structure = ndimage.generate_binary_structure(3, 3 if connectivity == 26 else 1)
    labels, n = ndimage.label(mask, structure=structure)
    return labels, int(n)


def remove_islands(mask: np.ndarray, spacing, min_volume_mm3: float) -> np.ndarray:
    """Drop connected components smaller than ``min_volume_mm3`` (physical size).

    Parameters
    ----------
    mask : ndarray of bool
    spacing : sequence of 3 float
        Voxel size along each array axis, mm.
    min_volume_mm3 : float
        Smallest island kept, mm³.
    """
    labels, n = label_components(mask)
    if n == 0:
        return mask.copy()
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    keep = counts * float(np.prod(spacing)) >= min_volume_mm3
    keep[0] = False
    return keep[labels]


def solid_bone(
    hu: np.ndarray,
    low: float,
    high: float,
    spacing,
    *,
    axis: int = 0,
    marrow_min_hu: float = MARROW_MIN_HU,
    dense_marrow_hu: float = DENSE_MARROW_HU,
) -> np.ndarray:
    """Threshold, then recover the marrow inside bone (see module notes).

    Two mechanisms, because clinical bone comes in two kinds. Osteoporotic
    marrow is uniformly dark inside a continuous cortex: filling holes (3-D, then
    slice-wise with the canal excluded by its HU) recovers it. Normal marrow is a
    mottled mix of trabeculae above and below any threshold: a threshold leaves a
    sponge whose holes do not close, so voxels within ``NEAR_BONE_MM`` of thresholded
    bone whose locally averaged HU is at least ``dense_marrow_hu`` are added too; discs
    (~80 HU) and muscle stay out.
    """
    spacing = tuple(float(s) for s in spacing)
    mask = (hu >= low) & (hu <= high)
    if dense_marrow_hu is not None and mask.any():
        smooth = filters.gaussian(hu, [1.0 / s for s in spacing])
        # "Near bone" as a blurred bone fraction: within ~NEAR_BONE_MM of thresholded
        # bone the fraction exceeds 1 %, at a fraction of a distance transform's cost.
        near = filters.gaussian(mask, [NEAR_BONE_MM / 2.5 / s for s in spacing]) > 0.01
        dense = (smooth >= dense_marrow_hu) & near
        # The blur that finds mottled marrow also spreads the cortex's brightness a
        # millimetre or two into the soft tissue outside: keep only dense voxels
        # deeper than that inside the combined solid, measured within the slice so
        # that marrow near an endplate (close to the disc above or below) is kept.
        solid = fill_3d(mask | dense)
        mask |= in_plane_depth_mm(solid, spacing, axis) >= NEAR_BONE_MM
    mask = fill_3d(mask)
    mask = fill_marrow_slices(mask, hu, spacing, axis=axis, marrow_min_hu=marrow_min_hu)
    mask = fill_3d(mask)
    return refine_surface(mask, hu)


def partial_volume_edge(mask: np.ndarray, hu: np.ndarray, spacing=(1.0, 1.0, 1.0), passes: int = 3,
                        keep: np.ndarray | None = None) -> np.ndarray:
    """Peel the surface voxels of solid ``mask`` that are less than half bone.

    A voxel on the edge of bone holds bone and soft tissue; its HU lies between the
    tissue just outside and the bone just inside, in proportion. It is bone when it
    is at least half-way: ``hu >= outside + 0.5 * (inside - outside)``, with
    ``outside`` the mean HU of its face neighbours outside the mask and ``inside``
    the bone next to it: where the scan resolves the cortex (voxels under
    ``RESOLVED_MM``), the brightest bone within ``RESOLVED_MM``, so the blurred
    fringe of a 1000 HU cortex is peeled to its true surface; on coarser grids, where
    a voxel averages cortex and marrow, the mean of its face neighbours inside, so
    that a thin, faint cortex at 3 mm keeps its half-bone edge voxels. Voxels in
    ``keep`` (marrow known to be inside a body) are never peeled.
    """
    out = np.asarray(mask, dtype=bool).copy()
    if not out.any():
        return out
    spacing = np.asarray(spacing, dtype=float)
    box = ndimage.find_objects(out.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    m = out[box]
    h = np.asarray(hu[box], dtype=np.float32)
    fixed = np.zeros_like(m) if keep is None else np.asarray(keep[box], dtype=bool)
    cross = ndimage.generate_binary_structure(3, 1)
    kernel = cross.astype(np.float32)
    kernel[1, 1, 1] = 0.0
    reach = np.floor(RESOLVED_MM / spacing).astype(int)
    near = None
    if reach.any():
        grid = np.indices(2 * reach + 1).reshape(3, -1).T - reach
        ball = (((grid * spacing) ** 2).sum(axis=1) <= RESOLVED_MM ** 2).reshape(tuple(2 * reach + 1))
        near = ball
    for _ in range(passes if near is None else 2):
        surface = m & ~filters.binary_erosion(m, cross) & ~fixed
        outside_n = ndimage.convolve((~m).astype(np.float32), kernel, mode="nearest")
        outside_s = ndimage.convolve(np.where(m, 0.0, h).astype(np.float32), kernel, mode="nearest")
        if near is not None:
            inside_all = ndimage.maximum_filter(np.where(m, h, -np.inf).astype(np.float32), footprint=near, mode="nearest")
        else:
            inside_n = ndimage.convolve(m.astype(np.float32), kernel, mode="nearest")
            inside_s = ndimage.convolve(np.where(m, h, 0.0).astype(np.float32), kernel, mode="nearest")
            inside_all = inside_s / np.maximum(inside_n, 1.0)
        ok = surface & (outside_n > 0)
        inside = inside_all[ok]
        outside = outside_s[ok] / outside_n[ok]
        peel = np.zeros_like(m)
        peel[ok] = (inside > outside) & (h[ok] < outside + 0.5 * (inside - outside))
        if not peel.any():
            break
        m = m & ~peel
    out[box] = m
    return out


def refine_surface(mask: np.ndarray, hu: np.ndarray) -> np.ndarray:
    """Move the outer surface of bone to the cortex edge of the local profile.

    A fixed threshold (226 HU) sits outside the true edge of dense cortex: a voxel
    only a third inside a 1000 HU cortex already reads ~350 HU. The edge is where the
    blurred profile crosses ``EDGE_FRACTION`` of the way from the soft tissue just
    outside to the cortex just inside; surface voxels darker than that are peeled
    (one voxel at most), so thin or faint osteoporotic cortex (low local maximum)
    keeps its threshold edge.
    """
    if not mask.any():
        return mask
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in box)
    m = mask[box]
    img = filters.gaussian(hu[box], 0.5)
    cross = ndimage.generate_binary_structure(3, 1)
    surface = m & ~filters.binary_erosion(m, cross)
    inside_peak = filters.maximum(np.where(m, img, -np.inf), 5)
    outside_floor = filters.minimum(np.where(m, np.inf, img), 5)
    ok = surface & np.isfinite(outside_floor)
    half = outside_floor[ok] + EDGE_FRACTION * (inside_peak[ok] - outside_floor[ok])
    peel = np.zeros_like(m)
    peel[ok] = img[ok] < half
    out = mask.copy()
    out[box] = m & ~peel
    return out
