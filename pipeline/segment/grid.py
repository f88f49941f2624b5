"""The analysis grid: a coarse copy of the scan on which the spine is found.

Finding, splitting and naming vertebrae needs anatomy at the scale of millimetres
(canal ~15 mm wide, discs 4-12 mm thick, bodies 15-35 mm tall), not the scanner's
0.5-0.9 mm pixels. Every input, whatever its voxel size, is pooled by whole-voxel
blocks to about ``ANALYSIS_MM`` per axis, so that the same thresholds and
distances hold for a 0.6 mm chest CT and a 3 mm abdomen CT, and the analysis costs
the same small amount for any field of view. Two copies are kept:

* ``mean``: the block mean (partial volume as a coarser scanner would see it);
* ``peak``: the block maximum of a 2 x 2 in-plane average, so that a cortex thinner
  than a block (osteoporotic cortex is under 1 mm) still reads as bone.

Blocks are taken within a box around the patient (air and scanner padding
outside are dropped), in the canonical orientation ``SPL``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Target voxel size of the analysis grid, mm.
ANALYSIS_MM = 2.0
#: Anything brighter than this is patient or table, not air or padding, HU.
BODY_HU = -400.0


@dataclass(frozen=True)
class AnalysisGrid:
    """A pooled copy of a canonical (SPL) CT array.

    Attributes
    ----------
    mean, peak : ndarray of float32, shape (m0, m1, m2)
        Block mean and block peak of the HU (see module notes).
    factor : tuple of 3 int
        Native voxels per block along each axis.
    spacing : tuple of 3 float
        Block size, mm.
    origin : tuple of 3 int
        Native index of the first voxel of block (0, 0, 0).
    native_shape : tuple of 3 int
    """

    mean: np.ndarray
    peak: np.ndarray
    factor: tuple
    spacing: tuple
    origin: tuple
    native_shape: tuple

    def to_native(self, index) -> np.ndarray:
        """Native (fractional) voxel index of block indices ``(..., 3)`` (block centres)."""
        index = np.asarray(index, dtype=float)
        return np.asarray(self.origin) + (index + 0.5) * np.asarray(self.factor) - 0.5

    def to_mm(self, index) -> np.ndarray:
        """Block indices ``(..., 3)`` to mm in the canonical frame (native voxel 0 at 0)."""
        return self.to_native(index) * (np.asarray(self.spacing) / np.asarray(self.factor))


def analysis_grid(hu: np.ndarray, spacing, target_mm: float = ANALYSIS_MM) -> AnalysisGrid:
    """Pool canonical HU ``hu`` (axis 0 to the head) into blocks of about ``target_mm``.

    Parameters
    ----------
    hu : ndarray, shape (n0, n1, n2)
        CT in HU, canonical SPL axes (a view is fine).
    spacing : sequence of 3 float
        Native voxel size per axis, mm.
    target_mm : float
        Wanted block size, mm; each axis pools a whole number of voxels (at least 1).
    """
    spacing = np.asarray(spacing, dtype=float)
    factor = tuple(int(max(round(target_mm / s), 1)) for s in spacing)
    box = _patient_box(hu)
    # Whole blocks only, aligned to the box start.
    stop = [b.start + ((b.stop - b.start) // f) * f for b, f in zip(box, factor)]
    start = [b.start for b in box]
    if any(b <= a for a, b in zip(start, stop)):
        start, stop = [0, 0, 0], [(n // f) * f for n, f in zip(hu.shape, factor)]
    sub = hu[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]]
    f0, f1, f2 = factor
    shape = tuple(n // f for n, f in zip(sub.shape, factor))
    total = np.zeros(shape, dtype=np.float32)
    peak = np.full(shape, -np.inf, dtype=np.float32)
    # A few block rows at a time: the float copies stay small whatever the scan.
    rows = max(1, 8_000_000 // max(f0 * sub.shape[1] * sub.shape[2], 1))
    for r0 in range(0, shape[0], rows):
        chunk = sub[r0 * f0 : (r0 + rows) * f0]
        out_t, out_p = total[r0 : r0 + rows], peak[r0 : r0 + rows]
        for a in range(f0):
            for b in range(f1):
                for c in range(f2):
                    np.add(out_t, chunk[a::f0, b::f1, c::f2][:, : shape[1], : shape[2]], out=out_t)
        # Pairs of neighbouring columns and rows averaged first: a lone noisy voxel
        # in muscle does not read as bone, a 1 mm cortex still does.
        smooth = _pair_mean(chunk)
        for a in range(f0):
            for b in range(f1):
                for c in range(f2):
                    np.maximum(out_p, smooth[a::f0, b::f1, c::f2][:, : shape[1], : shape[2]], out=out_p)
    mean = total / float(f0 * f1 * f2)
    # Scanner padding (-2048, -3024 HU) is air for every purpose here.
    np.maximum(mean, -1024.0, out=mean)
    np.maximum(peak, -1024.0, out=peak)
    return AnalysisGrid(
        mean=mean,
        peak=peak,
        factor=factor,
        spacing=tuple(float(s * f) for s, f in zip(spacing, factor)),
        origin=tuple(int(s) for s in start),
        native_shape=tuple(hu.shape),
    )


def _pair_mean(sub: np.ndarray) -> np.ndarray:
    """Mean of each voxel with its next row and next column neighbours (float32)."""
    a = sub.astype(np.float32)
    out = a.copy()
    out[:, :-1, :] += a[:, 1:, :]
    out[:, -1, :] += a[:, -1, :]
    b = out.copy()
    out[:, :, :-1] += b[:, :, 1:]
    out[:, :, -1] += b[:, :, -1]
    out *= 0.25
    return out


def _patient_box(hu: np.ndarray) -> tuple[slice, slice, slice]:
    """Index box of everything brighter than air, from a sparse sample of slices."""
    step = max(hu.shape[0] // 24, 1)
    sample = hu[::step] > BODY_HU
    rows = np.flatnonzero(sample.any(axis=(0, 2)))
    cols = np.flatnonzero(sample.any(axis=(0, 1)))
    if rows.size == 0 or cols.size == 0:
        return (slice(0, hu.shape[0]), slice(0, hu.shape[1]), slice(0, hu.shape[2]))
    return (slice(0, hu.shape[0]), slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
