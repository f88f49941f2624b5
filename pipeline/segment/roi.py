"""Where the spine is, found cheaply on a coarse copy of the scan.

A 512 x 512 x 400 abdominal CT holds ~100 million voxels, of which the spine and what
touches it occupy a tenth. Every later step (hole filling, distance transforms,
watershed) costs time and memory in proportion to the voxels it sees, so the
segmentation first finds the column of vertebral bodies on a ~2.5 mm grid and then
works only inside a box around it: the full height of the scan, the width needed to
see ribs and iliac wings leave the spine (the "far lateral" seeds), and the depth
from the front of the bodies to the tips of the spinous processes.
"""

from __future__ import annotations

import numpy as np

from .bone import fill_3d
from .distance import in_plane_depth_mm
from .vertebrae import find_cores, spine_chain

#: Coarse voxel size, mm.
COARSE_MM = 2.5
#: Locally averaged HU of vertebral bodies on the coarse grid (cortex and marrow
#: averaged); discs (~80 HU) and muscle stay below.
COARSE_BODY_HU = 150.0
#: Margins around the body column, mm: left-right, in front, behind.
LATERAL_MARGIN_MM = 85.0
ANTERIOR_MARGIN_MM = 40.0
POSTERIOR_MARGIN_MM = 90.0


def spine_box(hu: np.ndarray, spacing) -> tuple[slice, slice, slice] | None:
    """Index box around the spine in a volume with canonical SPL axes, or None.

    Parameters
    ----------
    hu : ndarray
        CT in HU, axis 0 towards the head, axis 1 posterior, axis 2 patient-left.
    spacing : sequence of 3 float
        Voxel size per axis, mm.
    """
    spacing = np.asarray(spacing, dtype=float)
    step = np.maximum(np.round(COARSE_MM / spacing).astype(int), 1)
    if np.all(step == 1):
        return None
    shape = (np.asarray(hu.shape) // step) * step
    if np.any(shape == 0):
        return None
    blocks = hu[: shape[0], : shape[1], : shape[2]].reshape(
        shape[0] // step[0], step[0], shape[1] // step[1], step[1], shape[2] // step[2], step[2]
    )
    coarse = blocks.sum(axis=(1, 3, 5), dtype=np.int32) / float(np.prod(step))
    coarse_spacing = spacing * step
    solid = fill_3d(coarse >= COARSE_BODY_HU)
    _, cores = find_cores(in_plane_depth_mm(solid, coarse_spacing), coarse_spacing, 8.0)
    chain = spine_chain(cores, min_volume_mm3=1000.0)
    if len(chain) < 2:
        return None
    y = np.array([c.centroid[1] for c in chain])
    x = np.array([c.centroid[2] for c in chain])
    lo = [0, y.min() - ANTERIOR_MARGIN_MM, x.min() - LATERAL_MARGIN_MM]
    hi = [np.inf, y.max() + POSTERIOR_MARGIN_MM, x.max() + LATERAL_MARGIN_MM]
    box = []
    for axis in range(3):
        if axis == 0:
            box.append(slice(0, hu.shape[0]))
            continue
        a = max(int(np.floor(lo[axis] / spacing[axis])), 0)
        b = min(int(np.ceil(hi[axis] / spacing[axis])) + 1, hu.shape[axis])
        box.append(slice(a, b))
    return tuple(box)
