"""A vertebra's own frame and bone signed-distance fields sampled on a grid in it.

Conventions
-----------
* Patient coordinates are LPS mm (see :mod:`pipeline.volume`).
* A :class:`VertebraFrame` has origin at the centre of the vertebral body and unit
  axes (columns of ``R``, given in LPS): ``x`` towards the patient's left, ``y``
  posterior, ``z`` cranial along the body axis. ``R`` is a proper rotation, so the
  frame is never mirrored whatever the orientation of the scan array.
* **Signed distance is negative inside bone**, positive outside, in mm (the same
  sign as the phantom's ``vertebra_sdf``; note that trimesh's
  ``proximity.signed_distance`` uses the opposite sign).

Why a grid in the vertebra's frame: pedicle cross-sections, the posterior
surface seen from the surgeon's side and the guide's placement direction are all
naturally axis-aligned there, and resampling the label mask onto an isotropic grid
(0.5 mm) removes the scan's anisotropy and orientation from every later step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..frame import VertebraFrame  # noqa: F401 - re-exported for the guide modules
from ..geometry.distance import signed_distance
from ..volume import lps_to_index

#: Sign of the patient's left (+x of the frame) for each side.
SIDES = {"left": 1.0, "right": -1.0}


def direction_angles(frame: VertebraFrame, direction, side: str) -> tuple[float, float]:
    """Medial (+ towards the midline anteriorly) and cranial angle, degrees."""
    a = frame.vector_to_local(np.asarray(direction, float) / np.linalg.norm(direction))
    s = SIDES[side]
    medial = float(np.degrees(np.arctan2(-s * a[0], -a[1])))
    cranial = float(np.degrees(np.arctan2(a[2], np.hypot(a[0], a[1]))))
    return medial, cranial


def direction_from_angles(frame: VertebraFrame, side: str, medial_deg: float, cranial_deg: float) -> np.ndarray:
    """LPS unit vector pointing into the body with the given angles (inverse of the above)."""
    m, c = np.radians(medial_deg), np.radians(cranial_deg)
    s = SIDES[side]
    local = np.array([-s * np.sin(m) * np.cos(c), -np.cos(m) * np.cos(c), np.sin(c)])
    return frame.vector_to_lps(local)


@dataclass(frozen=True)
class LocalGrid:
    """A regular grid in a frame: index ``(i, j, k)`` is local point ``lo + h * (i, j, k)``."""

    frame: VertebraFrame
    lo: np.ndarray  # local mm of index (0, 0, 0)
    h: float  # spacing, mm (isotropic)
    shape: tuple

    @classmethod
    def covering(cls, frame: VertebraFrame, lo, hi, h: float) -> LocalGrid:
        lo = np.asarray(lo, float)
        n = np.maximum(np.ceil((np.asarray(hi, float) - lo) / h).astype(int) + 1, 2)
        return cls(frame, lo, float(h), tuple(int(v) for v in n))

    def axes(self) -> list[np.ndarray]:
        """Local coordinates (mm) along each grid axis."""
        return [self.lo[a] + self.h * np.arange(self.shape[a]) for a in range(3)]

    def local_points(self) -> np.ndarray:
        ax = self.axes()
        g = np.stack(np.meshgrid(*ax, indexing="ij"), axis=-1)
        return g

    def local_to_index(self, local) -> np.ndarray:
        return (np.asarray(local, float) - self.lo) / self.h

    def lps_to_index(self, points) -> np.ndarray:
        return self.local_to_index(self.frame.to_local(points))

    def index_to_lps(self, index) -> np.ndarray:
        return self.frame.to_lps(self.lo + self.h * np.asarray(index, float))

    def affine(self) -> np.ndarray:
        """4x4 grid index -> LPS mm (for meshing with :func:`pipeline.mesh.mesh_mask`)."""
        a = np.eye(4)
        a[:3, :3] = self.frame.axes * self.h
        a[:3, 3] = self.frame.to_lps(self.lo)
        return a


#: Gaussian blur (scan voxels) of a label mask before it is resampled: the same as
#: osteoprint's vertebra meshes (:func:`pipeline.mesh.mesh_mask`), so the grid and
#: the mesh a check measures against describe one surface, without the staircase.
MASK_SIGMA_VOX = 0.6


def resample_mask(
    mask: np.ndarray, affine: np.ndarray, grid: LocalGrid, *, sigma_vox: float = MASK_SIGMA_VOX
) -> np.ndarray:
    """A scan-grid mask on ``grid``: the (blurred) 0/1 mask interpolated linearly, kept at >= 0.5.

    The 0.5 level of the interpolated mask lies half way between voxel centres, where
    the label boundary is, so the resampled surface keeps the labels' size; a blur of
    ``sigma_vox`` voxels first rounds off the voxel staircase (the 0.5 level moves by
    about sigma²/2R on a surface of radius R, so volume is kept).
    """
    mask = np.asarray(mask, bool)
    out = np.zeros(grid.shape, bool)
    pad = int(np.ceil(3 * sigma_vox)) + 2
    # Only the part of the scan the grid covers (plus the blur's reach) matters.
    ends = np.array(np.meshgrid(*[[0, n - 1] for n in grid.shape], indexing="ij")).reshape(3, -1).T
    reach = lps_to_index(affine, grid.index_to_lps(ends))
    lo = np.maximum(np.floor(reach.min(0)).astype(int) - pad, 0)
    hi = np.minimum(np.ceil(reach.max(0)).astype(int) + pad + 1, mask.shape)
    if np.any(hi <= lo):
        return out
    region = mask[tuple(slice(a, b) for a, b in zip(lo, hi))]
    if not region.any():
        return out
    nz = [np.nonzero(region.any(axis=tuple(b for b in range(3) if b != a)))[0] for a in range(3)]
    start = lo + np.array([max(int(v[0]) - pad, 0) for v in nz])
    stop = lo + np.array([min(int(v[-1]) + pad + 1, n) for v, n in zip(nz, region.shape)])
    crop = mask[tuple(slice(a, b) for a, b in zip(start, stop))].astype(np.float32)
    if sigma_vox > 0:
        crop = ndimage.gaussian_filter(crop, sigma_vox, mode="constant")
    # Only grid points inside the crop's LPS box can be bone.
    corners = np.array(np.meshgrid(*[[a - 1, b] for a, b in zip(start, stop)], indexing="ij")).reshape(3, -1).T
    lps_c = corners @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    idx_c = grid.lps_to_index(lps_c)
    g0 = np.maximum(np.floor(idx_c.min(0)).astype(int), 0)
    g1 = np.minimum(np.ceil(idx_c.max(0)).astype(int) + 1, grid.shape)
    if np.any(g1 <= g0):
        return out
    # Grid index -> crop index is affine: let scipy compute the coordinates on the fly.
    inv = np.linalg.inv(np.asarray(affine, float))
    M = inv[:3, :3] @ grid.frame.axes * grid.h
    offset = inv[:3, :3] @ grid.frame.to_lps(grid.lo + grid.h * g0) + inv[:3, 3] - start
    sub_shape = tuple(int(b - a) for a, b in zip(g0, g1))
    vals = ndimage.affine_transform(crop, M, offset, output_shape=sub_shape, order=1, mode="constant", cval=0.0)
    out[g0[0] : g1[0], g0[1] : g1[1], g0[2] : g1[2]] = vals >= 0.5
    return out


@dataclass(frozen=True)
class BoneField:
    """Signed distance (mm, negative inside) of bone on a :class:`LocalGrid`."""

    grid: LocalGrid
    sdf: np.ndarray

    @classmethod
    def from_mask(cls, grid: LocalGrid, mask: np.ndarray) -> BoneField:
        return cls(grid, signed_distance(mask, grid.h))

    def __call__(self, points) -> np.ndarray:
        """Signed distance at LPS points ``(..., 3)``; far outside the grid reads +100 mm."""
        p = np.asarray(points, float)
        idx = self.grid.lps_to_index(p.reshape(-1, 3))
        v = ndimage.map_coordinates(self.sdf, idx.T, order=1, mode="nearest")
        outside = np.any((idx < 0) | (idx > np.asarray(self.grid.shape) - 1), axis=1)
        v = np.where(outside, np.maximum(v, 100.0), v)
        return v.reshape(p.shape[:-1])

    def gradient(self, points, step: float = 0.25) -> np.ndarray:
        """Unit outward normal (direction of increasing distance) at LPS points."""
        p = np.asarray(points, float).reshape(-1, 3)
        g = np.zeros_like(p)
        for a in range(3):
            e = np.zeros(3)
            e[a] = step
            g[:, a] = self(p + e) - self(p - e)
        n = np.linalg.norm(g, axis=1, keepdims=True)
        return (g / np.maximum(n, 1e-12)).reshape(np.shape(points))


def min_field(*fields) -> FieldUnion:
    """The union of several bones: the smallest signed distance of any."""
    return FieldUnion(tuple(fields))


@dataclass(frozen=True)
class FieldUnion:
    """Union of bone fields (any callables ``sdf(points)``, negative inside)."""

    fields: tuple

    def __call__(self, points) -> np.ndarray:
        return np.minimum.reduce([f(points) for f in self.fields])


def ray_exit(
    sdf, origin, direction, *, max_mm: float = 80.0, step: float = 0.25, coarse_mm: float = 0.5
) -> float | None:
    """Distance (mm) along a ray from ``origin`` (inside bone) to where it leaves bone.

    ``sdf`` is any callable returning the signed distance (negative inside). The ray
    is sampled every ``coarse_mm`` to find the first sample outside, then every
    ``step`` mm in that interval, and the crossing is interpolated linearly. Returns
    None if the origin is outside or the ray stays inside for ``max_mm``.

    An exact field with a grid behind it (``sdf.coarse``, see
    :class:`pipeline.guide.bone.Bone`) is searched on the grid first (within ~0.4 mm
    of the exact crossing) and measured exactly only around that crossing; if the
    exact crossing is not there, all along the ray.
    """
    o = np.asarray(origin, float)
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    grid = getattr(sdf, "coarse", None)
    if grid is not None:
        t = _ray_exit(grid, o, d, max_mm, step, coarse_mm)
        if t is not None:
            a = max(t - 1.0, 0.0)
            start = o + a * d
            if a > 0 and float(np.asarray(sdf(np.array([o, start]))).max()) <= 0:
                near = _ray_exit(sdf, start, d, 2.0, step, coarse_mm)
                if near is not None:
                    return a + near
    return _ray_exit(sdf, o, d, max_mm, step, coarse_mm)


def _ray_exit(sdf, o, d, max_mm, step, coarse_mm):
    coarse = max(coarse_mm, step)
    ts = np.arange(0.0, max_mm + coarse, coarse)
    f = np.asarray(sdf(o[None, :] + ts[:, None] * d), float)
    if f[0] > 0:
        return None
    out = np.nonzero(f > 0)[0]
    if out.size == 0:
        return None
    k = int(out[0])
    if coarse > step:
        fine = np.append(np.arange(ts[k - 1], ts[k], step), ts[k])
        ff = np.asarray(sdf(o[None, :] + fine[:, None] * d), float)
        j = int(np.nonzero(ff > 0)[0][0])
        ts, f, k = fine, ff, j
        if k == 0:  # the coarse sample was inside but the fine one is not (rounding)
            return float(ts[0])
    f0, f1 = f[k - 1], f[k]
    return float(ts[k - 1] + (ts[k] - ts[k - 1]) * (-f0) / max(f1 - f0, 1e-9))
