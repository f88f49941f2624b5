"""Joints between bones: thin dark layers between two bright plates.

Facet, costovertebral, costotransverse and sacroiliac joints separate bones that a
bone threshold often merges across a narrow or blurred joint space. The dip
survives: the joint space is darker than the bone on both sides of it. Labels are
flooded with joint spaces raised as walls, and joint space where two labels meet
belongs to neither.
"""

from __future__ import annotations

import numpy as np

from . import filters

#: Dip (HU) below both neighbouring plates that marks a joint space, see :func:`joint_gaps`.
JOINT_GAP_HU = 100.0
#: How a joint's dip weighs against bone depth in the watershed relief.
GAP_WEIGHT_MM_PER_HU = 0.1


def joint_gaps(hu: np.ndarray, spacing, step_mm: float = 1.5) -> np.ndarray:
    """How much darker each voxel is than bone on both sides of it, HU (>= 0).

    A joint between two bones (facet, costovertebral, sacroiliac) is a thin dark
    layer between two bright cortical plates. Thresholding at bone HU often merges
    the plates across a narrow or blurred joint space, but the dip survives: for each
    of the 13 axis and diagonal directions, compare the voxel with its neighbours
    ``step_mm`` away on either side; the score is the largest ``min(both sides) -
    centre`` found. Marrow under a single cortex and soft tissue beside bone score
    about zero because one side is as dark as the centre.
    """
    img = filters.gaussian(hu, 0.5)
    k = [max(int(round(step_mm / s)), 1) for s in spacing]
    best = np.zeros(img.shape, dtype=np.float32)
    directions = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) > (0, 0, 0)]
    for d in directions:
        shift = [int(di * ki) for di, ki in zip(d, k)]
        # Views, not rolled copies: voxels within a step of the array's edge have no
        # neighbour on one side and keep a score of 0.
        centre = tuple(slice(abs(h), n - abs(h)) for h, n in zip(shift, img.shape))
        fwd = tuple(slice(abs(h) - h, n - abs(h) - h) for h, n in zip(shift, img.shape))
        back = tuple(slice(abs(h) + h, n - abs(h) + h) for h, n in zip(shift, img.shape))
        view = best[centre]
        np.maximum(view, np.minimum(img[fwd], img[back]) - img[centre], out=view)
    return best


def open_joints(labels: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Give the joint space back to neither bone.

    Where blur merged two bones across a joint, the watershed line runs through
    the joint space and each side keeps part of it. Joint-space voxels (dark between
    bright plates) that touch a different label belong to neither bone.
    """
    big = np.iinfo(np.int32).max
    lo = filters.minimum(np.where(labels > 0, labels, big), 3)
    hi = filters.maximum(labels, 3)
    contact = (labels > 0) & ((lo != labels) | (hi != labels))
    out = labels.copy()
    out[contact & gap] = 0
    return out
