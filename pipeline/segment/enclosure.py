"""How completely bone surrounds each point of a slice: gap-tolerant hole finding.

Hole filling needs a closed wall, and real cortex is not closed at any threshold:
osteoporotic cortex is under 1 mm and faint, the basivertebral foramen opens the
back of every body, and 3 mm slices blur the rest. A point inside a vertebral body
or the spinal canal is nevertheless *surrounded* by bone: walking from it in almost
any direction within the slice meets bone within a few centimetres. The share of
16 directions that do is the point's enclosure (1 = closed ring, 0.5 = bone on
one side only); a gap in the ring lets one or two directions out, no more.
"""

from __future__ import annotations

import numpy as np

#: The 16 in-plane step vectors (rows, columns): 4 axes, 4 diagonals and the 8
#: knight's moves between them, 22.5 degrees apart on a square grid.
DIRECTIONS = (
    (0, 1),
    (1, 2),
    (1, 1),
    (2, 1),
    (1, 0),
    (2, -1),
    (1, -1),
    (1, -2),
    (0, -1),
    (-1, -2),
    (-1, -1),
    (-2, -1),
    (-1, 0),
    (-2, 1),
    (-1, 1),
    (-1, 2),
)


def enclosure(bone: np.ndarray, spacing, reach_mm: float, axis: int = 0) -> np.ndarray:
    """Share of 16 in-plane directions in which bone lies within ``reach_mm``.

    Parameters
    ----------
    bone : ndarray of bool, 3-D
    spacing : sequence of 3 float
        Voxel size per axis, mm.
    reach_mm : float
        How far each direction looks, mm.
    axis : int
        The slice axis; directions lie in the other two.

    Returns
    -------
    ndarray of float32
        0..1 per voxel (bone voxels included: they see themselves in no direction,
        so use the value only for voxels outside ``bone``).
    """
    moved = np.moveaxis(np.asarray(bone, dtype=bool), axis, 0)
    sp = [float(s) for i, s in enumerate(spacing) if i != axis]
    count = np.zeros(moved.shape, dtype=np.uint8)
    for dy, dx in DIRECTIONS:
        steps = max(int(reach_mm / float(np.hypot(dy * sp[0], dx * sp[1]))), 1)
        count += _hit_within(moved, dy, dx, steps)
    out = count.astype(np.float32) / len(DIRECTIONS)
    return np.moveaxis(out, 0, axis)


def _hit_within(bone: np.ndarray, dy: int, dx: int, steps: int) -> np.ndarray:
    """Whether bone lies 1..``steps`` steps of ``(dy, dx)`` away (doubling shifts)."""
    hit = bone.copy()
    covered = 1  # hit[p]: bone at p + j*d for some j in 0..covered-1
    while covered < steps:
        m = min(covered, steps - covered)
        hit |= _shifted(hit, dy * m, dx * m)
        covered += m
    return _shifted(hit, dy, dx)


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``out[:, y, x] = a[:, y + dy, x + dx]``, False beyond the edge."""
    out = np.zeros_like(a)
    n1, n2 = a.shape[1:]
    if abs(dy) >= n1 or abs(dx) >= n2:
        return out
    dst = (slice(None), slice(max(-dy, 0), n1 - max(dy, 0)), slice(max(-dx, 0), n2 - max(dx, 0)))
    src = (slice(None), slice(max(dy, 0), n1 - max(-dy, 0)), slice(max(dx, 0), n2 - max(-dx, 0)))
    out[dst] = a[src]
    return out
