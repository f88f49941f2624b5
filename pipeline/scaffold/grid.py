"""The fine sampling grid a scaffold is evaluated on, walked slab by slab.

It covers the region's bounding box at the chosen voxel size, with its own affine
(voxel index in array order to LPS mm) whose axes are the lattice's axes, and is
processed in slabs of planes so that a 40 mm defect at 0.05 mm never needs a
whole-volume array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.errors import InputError
from pipeline.volume import voxel_sizes


@dataclass(frozen=True, eq=False)
class SamplingGrid:
    """A regular grid in patient space: voxel index (array order) to LPS via ``affine``.

    Its axes are the lattice's axes (columns of the rotation times the voxel size), so
    lattice fields evaluate separably along them.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def voxel_mm(self) -> float:
        return float(voxel_sizes(self.affine)[0])

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape))

    def slabs(self, max_voxels: int = 8_000_000):
        """Yield ``(k0, k1)`` plane ranges along axis 0, ``k1`` inclusive, each slab
        sharing its last plane with the next one (marching cubes needs the overlap)."""
        plane = self.shape[1] * self.shape[2]
        step = max(2, max_voxels // max(plane, 1)) - 1
        k0 = 0
        while k0 < self.shape[0] - 1:
            k1 = min(k0 + step, self.shape[0] - 1)
            yield k0, k1
            k0 = k1

    def chunks(self, max_voxels: int = 8_000_000):
        """Yield non-overlapping ``(k0, k1)`` plane ranges (``k1`` inclusive) covering
        the grid once, for sums over voxels."""
        plane = self.shape[1] * self.shape[2]
        step = max(1, max_voxels // max(plane, 1))
        for k0 in range(0, self.shape[0], step):
            yield k0, min(k0 + step, self.shape[0]) - 1

    def axes_lps(self, k0: int, k1: int):
        """Broadcastable LPS coordinate arrays ``(x, y, z)`` (float32) of planes ``k0..k1``.

        A coordinate that depends on one index only stays 1-D (shape ``(n,1,1)`` etc.),
        which keeps sums over axis-aligned grids cheap.
        """
        a = self.affine
        idx = (
            np.arange(k0, k1 + 1, dtype=np.float64)[:, None, None],
            np.arange(self.shape[1], dtype=np.float64)[None, :, None],
            np.arange(self.shape[2], dtype=np.float64)[None, None, :],
        )
        out = []
        for r in range(3):
            terms = [a[r, c] * idx[c] for c in range(3) if a[r, c] != 0.0]
            acc = np.float64(a[r, 3])
            for t in terms:
                acc = acc + t
            out.append(np.asarray(acc, dtype=np.float32))
        return tuple(out)


def sampling_grid(region, voxel_mm: float, rotation=None, pad_voxels: int = 2) -> SamplingGrid:
    """Fine grid covering ``region``'s bounding box at ``voxel_mm``, axes along ``rotation``.

    Parameters
    ----------
    region : Region
    voxel_mm : float
        Edge of a (cubic) voxel, mm.
    rotation : ndarray (3, 3), optional
        Columns are the lattice axes in LPS (proper rotation); identity by default.
    pad_voxels : int
        Empty voxels beyond the box on every side, so every surface closes.
    """
    if not (voxel_mm > 0 and math.isfinite(voxel_mm)):
        raise InputError(None, f"voxel size must be > 0 mm, got {voxel_mm}")
    rot = np.eye(3) if rotation is None else np.asarray(rotation, float)
    lo, hi = region.bounds()
    corners = np.array([[lo[0], lo[1], lo[2]]]) + np.array(list(np.ndindex(2, 2, 2))) * (hi - lo)
    local = corners @ rot  # coordinates along the lattice axes
    llo = local.min(0) - pad_voxels * voxel_mm
    n = np.ceil((local.max(0) + pad_voxels * voxel_mm - llo) / voxel_mm).astype(int) + 1
    affine = np.eye(4)
    affine[:3, :3] = rot * voxel_mm
    affine[:3, 3] = rot @ llo
    return SamplingGrid(tuple(int(v) for v in n), affine)
