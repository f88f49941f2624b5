"""The spine's axis, found by following the spinal canal from slice to slice.

The vertebral canal is the one structure every thoracic and lumbar scan shows
whatever its field of view, dose or bone density: a dark (CSF, cord, epidural fat)
channel 12-25 mm across, ringed by bone (the back of a body in front, pedicles at
the sides, laminae behind) and running the whole length of the spine. A dark spot
ringed by bone in one slice could also be the marrow of a long bone, an orbit or
an osteoporotic body; what singles the canal out is a vertebral body in front of
it, posterior elements behind it, and its continuity over many slices. Candidates
are scored for the first two in each slice, and the best-scoring continuous chain
through the slices is the canal (dynamic programming, as a tracker would).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .enclosure import enclosure
from .grid import AnalysisGrid

#: Block peak HU counted as bone when judging enclosure. Low enough for the faint
#: cortex of osteoporotic bone at 3 mm (it reads 150-250 HU), above muscle (~50).
WALL_HU = 140.0
#: How far a point looks for its bony ring, mm (the canal is 12-25 mm across).
RING_MM = 30.0
#: Share of directions that must meet bone for a point to be inside a ring.
RINGED = 0.8
#: Canal contents after an in-plane blur: CSF ~10, cord ~35, epidural fat ~ -100 HU.
CANAL_HU = (-150.0, 60.0)
#: Canal cross-section in one slice, mm² (cervical to lumbar, with fat around the sac).
CANAL_AREA_MM2 = (40.0, 700.0)
#: Half-height of the slab in which body and posterior elements are looked for, mm
#: (a canal point at a disc has bodies above and below it).
SLAB_MM = 20.0
#: Largest run of slices without a canal candidate that the chain may jump, mm.
MAX_GAP_MM = 26.0
#: The shortest chain that is a spine, mm (two vertebrae).
MIN_SPINE_MM = 30.0


@dataclass(frozen=True)
class CanalPoint:
    """A canal candidate: centre in mm (canonical SPL frame), area, evidence."""

    z: float
    y: float
    x: float
    area_mm2: float
    body: float
    posterior: float
    score: float


@dataclass(frozen=True)
class SpineAxis:
    """The centre line of the spinal canal, one point per analysis slice it spans.

    Attributes
    ----------
    z, y, x : ndarray
        Canal centre, mm in the canonical frame (native voxel 0 at 0; z to the head,
        y posterior, x patient left), ascending z, smoothed.
    support : ndarray of bool
        Whether a canal candidate was seen at that slice (else interpolated).
    score : float
        Sum of the chain's candidate scores (evidence that this is a spine).
    """

    z: np.ndarray
    y: np.ndarray
    x: np.ndarray
    support: np.ndarray
    score: float

    def at(self, z) -> tuple[np.ndarray, np.ndarray]:
        """Canal centre ``(y, x)`` at heights ``z`` (mm), held constant beyond the ends."""
        return np.interp(z, self.z, self.y), np.interp(z, self.z, self.x)

    @property
    def length_mm(self) -> float:
        return float(np.sum(np.sqrt(np.diff(self.z) ** 2 + np.diff(self.y) ** 2 + np.diff(self.x) ** 2)))


def find_canal(grid: AnalysisGrid) -> SpineAxis | None:
    """Follow the spinal canal through the analysis grid; None when there is no spine."""
    points = canal_candidates(grid)
    chain = best_chain(points, grid.spacing[0])
    if len(chain) < 2 or chain[-1].z - chain[0].z < MIN_SPINE_MM:
        return None
    return _smooth_axis(chain, grid)


def extend_axis(
    axis: SpineAxis, z_range_mm: tuple[float, float], *, reach_mm: float = 60.0, chord_mm: float = 30.0
) -> SpineAxis:
    """The axis continued straight beyond each end, up to ``reach_mm`` or the scan's edge.

    The canal is lost where its ring opens for good (the sacral canal flattens, the
    neck leaves the field of view), but the vertebrae go on: the sacrum's first
    segment (S1) lies within a vertebra's height of the last canal point. The end
    direction is the chord over the last ``chord_mm``.
    """
    dz = float(axis.z[1] - axis.z[0]) if len(axis.z) > 1 else 1.0
    z, y, x, sup = [axis.z], [axis.y], [axis.x], [axis.support]
    for end in (0, -1):
        sign = -1.0 if end == 0 else 1.0
        limit = z_range_mm[0] if end == 0 else z_range_mm[1]
        n = int(np.floor(min(reach_mm, sign * (limit - axis.z[end])) / dz))
        if n <= 0:
            continue
        far = np.argmin(np.abs(axis.z - (axis.z[end] - sign * chord_mm)))
        run = axis.z[end] - axis.z[far]
        if abs(run) < dz:
            slope_y = slope_x = 0.0
        else:
            slope_y = (axis.y[end] - axis.y[far]) / run
            slope_x = (axis.x[end] - axis.x[far]) / run
        steps = np.arange(1, n + 1) * dz * sign
        new = (axis.z[end] + steps, axis.y[end] + slope_y * steps, axis.x[end] + slope_x * steps)
        if end == 0:
            z.insert(0, new[0][::-1])
            y.insert(0, new[1][::-1])
            x.insert(0, new[2][::-1])
            sup.insert(0, np.zeros(n, dtype=bool))
        else:
            z.append(new[0])
            y.append(new[1])
            x.append(new[2])
            sup.append(np.zeros(n, dtype=bool))
    return SpineAxis(
        z=np.concatenate(z), y=np.concatenate(y), x=np.concatenate(x), support=np.concatenate(sup), score=axis.score
    )


def canal_candidates(grid: AnalysisGrid) -> list[CanalPoint]:
    """Dark, bone-ringed spots of canal size in every slice, scored as canal."""
    sp = grid.spacing
    bone = grid.peak >= WALL_HU
    ring = enclosure(bone, sp, RING_MM)
    dark = ndimage.uniform_filter(grid.mean, (1, 3, 3))
    inside = ring >= RINGED
    candidate = inside & (dark >= CANAL_HU[0]) & (dark <= CANAL_HU[1]) & ~bone
    # Body-like: bone, or bright tissue inside a ring (osteoporotic marrow).
    bodyish = bone | (inside & (dark > CANAL_HU[1]))
    k = 2 * max(int(round(SLAB_MM / sp[0])), 1) + 1
    body_slab = ndimage.uniform_filter1d(bodyish.astype(np.float32), k, axis=0)
    bone_slab = ndimage.uniform_filter1d(bone.astype(np.float32), k, axis=0)
    pixel = sp[1] * sp[2]
    plane = ndimage.generate_binary_structure(2, 1)
    points = []
    for z in range(grid.mean.shape[0]):
        labels, n = ndimage.label(candidate[z], structure=plane)
        if n == 0:
            continue
        area = np.bincount(labels.ravel(), minlength=n + 1)[1:] * pixel
        ok = np.flatnonzero((area >= CANAL_AREA_MM2[0]) & (area <= CANAL_AREA_MM2[1])) + 1
        if ok.size == 0:
            continue
        centres = ndimage.center_of_mass(candidate[z], labels, ok)
        for i, (cy, cx) in zip(ok, centres):
            body = _box_mean(body_slab[z], cy, cx, (-35.0, -8.0), (-15.0, 15.0), sp)
            post = _box_mean(bone_slab[z], cy, cx, (5.0, 30.0), (-10.0, 10.0), sp)
            score = min(body / 0.4, 1.0) * min(post / 0.15, 1.0)
            if score <= 0.05:
                continue
            points.append(
                CanalPoint(
                    z=float(grid.to_mm([z, cy, cx])[0]),
                    y=float(grid.to_mm([z, cy, cx])[1]),
                    x=float(grid.to_mm([z, cy, cx])[2]),
                    area_mm2=float(area[i - 1]),
                    body=body,
                    posterior=post,
                    score=score,
                )
            )
    return points


def _box_mean(image: np.ndarray, cy: float, cx: float, dy_mm, dx_mm, sp) -> float:
    """Mean of ``image`` over a box at row/column offsets (mm) from ``(cy, cx)``."""
    r0 = int(np.floor(cy + dy_mm[0] / sp[1]))
    r1 = int(np.ceil(cy + dy_mm[1] / sp[1])) + 1
    c0 = int(np.floor(cx + dx_mm[0] / sp[2]))
    c1 = int(np.ceil(cx + dx_mm[1] / sp[2])) + 1
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, image.shape[0]), min(c1, image.shape[1])
    if r1 <= r0 or c1 <= c0:
        return 0.0
    # Outside the image counts as nothing (a box cut by the field of view).
    full = (np.ceil(cy + dy_mm[1] / sp[1]) + 1 - np.floor(cy + dy_mm[0] / sp[1])) * (
        np.ceil(cx + dx_mm[1] / sp[2]) + 1 - np.floor(cx + dx_mm[0] / sp[2])
    )
    return float(image[r0:r1, c0:c1].sum() / max(full, 1.0))


def best_chain(points: list[CanalPoint], slice_mm: float) -> list[CanalPoint]:
    """The highest-scoring chain of candidates climbing through the slices.

    Consecutive links may skip up to ``MAX_GAP_MM`` of slices (a disc level where
    the ring is open) and move in-plane no more than the height they climb plus
    3 mm (the spine is never tilted more than 45 degrees from the scan axis where
    it is followed); each skipped slice costs a little.
    """
    if not points:
        return []
    pts = sorted(points, key=lambda p: p.z)
    z = np.array([p.z for p in pts])
    yx = np.array([[p.y, p.x] for p in pts])
    s = np.array([p.score for p in pts])
    best = s.copy()
    prev = np.full(len(pts), -1)
    lo = np.searchsorted(z, z - MAX_GAP_MM - 1e-6)
    hi = np.searchsorted(z, z - 0.5 * slice_mm)
    for j in range(len(pts)):
        i0, i1 = lo[j], hi[j]
        if i1 <= i0:
            continue
        dz = z[j] - z[i0:i1]
        step = np.hypot(*(yx[j] - yx[i0:i1]).T)
        gain = best[i0:i1] + s[j] - 0.05 * np.maximum(dz / slice_mm - 1.0, 0.0)
        gain[step > dz + 3.0] = -np.inf
        k = int(np.argmax(gain))
        if gain[k] > best[j]:
            best[j], prev[j] = gain[k], i0 + k
    end = int(np.argmax(best))
    chain = []
    while end >= 0:
        chain.append(pts[end])
        end = prev[end]
    return chain[::-1]


def _smooth_axis(chain: list[CanalPoint], grid: AnalysisGrid) -> SpineAxis:
    """A smooth canal line through the chain, one point per analysis slice.

    Local linear fits over +-12 mm, twice, the second time without points more than
    4 mm off the first (a candidate in a foramen or a body's marrow).
    """
    z = np.array([p.z for p in chain])
    yx = np.array([[p.y, p.x] for p in chain])
    w = np.array([p.score for p in chain])
    dz = grid.spacing[0]
    zs = np.arange(z[0], z[-1] + 0.5 * dz, dz)
    fit = _local_linear(z, yx, w, zs, 12.0)
    resid = np.hypot(*(yx - np.stack([np.interp(z, zs, fit[:, i]) for i in range(2)], 1)).T)
    keep = resid <= 4.0
    if keep.sum() >= 2:
        fit = _local_linear(z[keep], yx[keep], w[keep], zs, 12.0)
    support = np.zeros(len(zs), dtype=bool)
    support[np.clip(np.rint((z - zs[0]) / dz).astype(int), 0, len(zs) - 1)] = True
    return SpineAxis(z=zs, y=fit[:, 0], x=fit[:, 1], support=support, score=float(w.sum()))


def _local_linear(z, values, weights, at, bandwidth):
    """Gaussian-weighted local linear regression of ``values`` (n, k) at ``at``."""
    out = np.empty((len(at), values.shape[1]))
    for i, z0 in enumerate(at):
        d = z - z0
        g = weights * np.exp(-0.5 * (d / bandwidth) ** 2)
        if g.sum() < 1e-9:
            g = weights * (np.abs(d) == np.abs(d).min())
        a = np.stack([np.ones_like(d), d], 1) * np.sqrt(g)[:, None]
        b = values * np.sqrt(g)[:, None]
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
        out[i] = coef[0]
    return out
