"""The true plane and thickness of each disc, between its two endplates.

A disc found on the straightened spine (:mod:`.discs`) is a position along the
canal's centre line; the cross-section there is perpendicular to the canal, not
to the disc. Lordotic discs are wedges (L5-S1: ~15 mm in front, ~8 mm behind) and
the canal bends away from the bodies, so that cross-section cuts the disc at an
angle: its front lies in one vertebra's stretch, its back in the other's. Each
disc's own mid-plane is therefore fitted, column by column through the body: in
every column the disc is the dip between the two endplates, and a plane
``s = s0 + a v + b u`` through those dips (weighted by their depth, outliers
dropped) is the disc's mid-surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .column import StraightSpine
from .discs import RING_HU

#: Columns through the body used for the fit, mm from the canal's centre.
FIT_V = (10.0, 55.0)
FIT_U = 25.0
#: Largest tilt of a disc against the cross-section, as a slope (tan 35 deg).
MAX_SLOPE = 0.7
#: How far a disc reaches beyond the half-way crossing of its profile, mm.
EDGE_BLUR_MM = 0.5
#: A column's dip must be at least this deep to count, HU.
MIN_DIP_HU = 20.0
#: How far beyond its slab a disc may bulge into a concave endplate, mm (an endplate's
#: centre lies up to ~4 mm deeper than its rim, more after a biconcave fracture).
CONCAVITY_MM = 6.0


@dataclass(frozen=True)
class DiscPlane:
    """A disc's mid-surface in straightened coordinates: ``k = k0 + a v + b u``
    (``k`` in cross-section indices, ``v``/``u`` in mm), and its half-thickness
    (cross-sections)."""

    k0: float
    a: float
    b: float
    half: float

    def at(self, v, u) -> np.ndarray:
        return self.k0 + self.a * np.asarray(v, dtype=float) + self.b * np.asarray(u, dtype=float)


def _half_width(smooth: np.ndarray, centre: np.ndarray, plate: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Per column: mean distance (sections) from the dip to the half-way crossing."""
    m = smooth.shape[0]
    base = np.take_along_axis(smooth, centre[None], axis=0)[0]
    level = base + 0.5 * depth
    out = np.zeros(centre.shape, dtype=float)
    for direction in (-1, 1):
        reach = np.zeros(centre.shape, dtype=float)
        done = np.zeros(centre.shape, dtype=bool)
        for w in range(1, int(plate.max()) + 1):
            i = np.clip(centre + direction * w, 0, m - 1)
            val = np.take_along_axis(smooth, i[None], axis=0)[0]
            hit = ~done & (val >= level)
            reach[hit] = w - 0.5
            done |= hit
        reach[~done] = plate[~done]
        out += 0.5 * reach
    return out


def fit_disc(st: StraightSpine, centre: int, reach: int, step_mm: float) -> DiscPlane:
    """Fit the mid-plane of the disc found at cross-section ``centre``.

    ``reach``: how many cross-sections above and below to look (a disc's tilt can
    move its front by that much). Falls back to the flat cross-section, with a
    thickness from the central band, when too few columns show a clear disc.
    """
    n = len(st.s)
    a0, a1 = max(centre - reach, 0), min(centre + reach, n - 1)
    if a1 - a0 < 4:
        return DiscPlane(float(centre), 0.0, 0.0, max(1.0, 1.0 / step_mm))
    vsel = (st.v >= FIT_V[0]) & (st.v <= FIT_V[1])
    usel = np.abs(st.u) <= FIT_U
    block = st.hu[a0 : a1 + 1][:, vsel][:, :, usel]
    inside = st.inside[a0 : a1 + 1][:, vsel][:, :, usel]
    smooth = ndimage.gaussian_filter(block, (1.0 / step_mm, 1.5, 1.5))
    m = smooth.shape[0]
    r = max(int(round(7.0 / step_mm)), 2)
    padded = np.pad(smooth, ((r, r), (0, 0), (0, 0)), mode="edge")
    dip = np.full(smooth.shape, -np.inf, dtype=np.float32)
    width = np.zeros(smooth.shape, dtype=np.float32)
    for w in range(1, r + 1):
        pair = np.minimum(padded[r + w : r + w + m], padded[r - w : r - w + m]) - smooth
        better = pair > dip
        dip = np.where(better, pair, dip)
        width = np.where(better, w, width)
    best = np.argmax(dip, axis=0)
    vv, uu = np.meshgrid(st.v[vsel], st.u[usel], indexing="ij")
    depth = np.take_along_axis(dip, best[None], axis=0)[0]
    plate = np.take_along_axis(width, best[None], axis=0)[0].astype(int)
    # Half-thickness: from the dip to where the profile is half-way up to the
    # plates, on each side (the plates' centres lie beyond the disc's edge).
    half = _half_width(smooth, best, plate, depth)
    ok = (depth >= MIN_DIP_HU) & inside.all(axis=0)
    k = best + a0
    if ok.sum() < 20:
        return DiscPlane(float(centre), 0.0, 0.0, max(1.0, 1.0 / step_mm))
    X = np.stack([np.ones(ok.sum()), vv[ok], uu[ok]], axis=1)
    y = k[ok].astype(float)
    wts = np.sqrt(depth[ok])
    keep = np.ones(len(y), dtype=bool)
    coef = np.array([float(centre), 0.0, 0.0])
    for _ in range(3):
        if keep.sum() < 10:
            break
        coef, *_ = np.linalg.lstsq(X[keep] * wts[keep, None], y[keep] * wts[keep], rcond=None)
        resid = np.abs(X @ coef - y)
        keep = resid <= max(3.0 / step_mm, 1.0)
    c0, a, b = coef
    a, b = (
        float(np.clip(a, -MAX_SLOPE / step_mm, MAX_SLOPE / step_mm)),
        float(np.clip(b, -MAX_SLOPE / step_mm, MAX_SLOPE / step_mm)),
    )
    # The plane through the middle of the fitted columns stays where they say.
    vm, um = float(np.average(vv[ok][keep], weights=wts[keep])), float(np.average(uu[ok][keep], weights=wts[keep]))
    k_mid = float(np.array([1.0, vm, um]) @ coef)
    k0 = k_mid - a * vm - b * um
    # The half-way crossing lies inside the blur of the endplate's edge: the disc
    # reaches about a millimetre further.
    thickness = (float(np.median(half[ok][keep])) if keep.any() else 1.0) + EDGE_BLUR_MM / step_mm
    return DiscPlane(k0, a, b, float(np.clip(thickness, 1.0 / step_mm, 7.0 / step_mm)))


def disc_sections(st: StraightSpine, planes, step_mm: float, region: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """The sections each disc fills, column by column: bool, shaped like ``st.hu``.

    A :class:`DiscPlane` is the disc's average: a flat slab. Endplates are concave, their
    centre a few millimetres further from the disc than their rim, so in the middle of
    the body the disc bulges into both vertebrae beyond that slab, and an axial slice
    through the bulge shows disc ringed by the endplate's rim; nearer the rim the disc
    is thinner than the slab, and cutting the slab there cuts endplate. In every column
    of ``region`` (a ``(nv, nu)`` mask) the disc therefore runs from its mid-plane out to
    the half-way crossing towards the brightest section within the slab and
    ``CONCAVITY_MM`` beyond it on each side (its endplate). A side with no endplate in
    that column (cortex-bright, ``RING_HU``, and ``MIN_DIP_HU`` brighter than the disc: a
    darker rise is osteoporotic marrow) keeps the slab, widened by ``margin`` sections
    for the blur of its edge.
    """
    ns = st.hu.shape[0]
    out = np.zeros(st.hu.shape, dtype=bool)
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if not len(rows) or not planes:
        return out
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    inner = region[box]
    smooth = ndimage.gaussian_filter(st.hu[:, box[0], box[1]], (0.5 / step_mm, 0.7, 0.7))
    vv, uu = np.meshgrid(st.v[box[0]], st.u[box[1]], indexing="ij")
    reach = int(round(CONCAVITY_MM / step_mm))
    for plane in planes:
        centre = plane.at(vv, uu)
        k0 = np.rint(centre).astype(int)
        h = int(np.ceil(plane.half))
        offsets = np.arange(-(h + reach), h + reach + 1)
        ks = k0[None] + offsets[:, None, None]
        inside = (ks >= 0) & (ks < ns)
        profile = np.take_along_axis(smooth, np.clip(ks, 0, ns - 1), axis=0)
        dip = np.where(inside & (np.abs(offsets) <= h)[:, None, None], profile, np.inf).min(axis=0)
        extent = {}
        for sign in (1, -1):
            side = offsets * sign > 0
            seen = profile[side][::sign]  # nearest the mid-plane first
            ok_side = inside[side][::sign]
            peak = np.where(ok_side, seen, -np.inf).max(axis=0)
            crossing = ok_side & (seen >= (0.5 * (dip + peak))[None])
            first = np.where(crossing.any(axis=0), crossing.argmax(axis=0), len(seen))
            plate = (peak - dip >= MIN_DIP_HU) & (peak >= RING_HU)
            # The ``first`` sections beyond the mid-plane's are darker than half-way to
            # the endplate: disc. As in the fit, the disc reaches EDGE_BLUR_MM past the
            # last of them, measured from its centre (less half a section).
            extent[sign] = np.where(plate, first - 0.5 + EDGE_BLUR_MM / step_mm, plane.half + margin)
        for o in offsets:
            keep = inner & np.where(o >= 0, o <= extent[1], -o <= extent[-1]) & (k0 + o >= 0) & (k0 + o < ns)
            vi, ui = np.nonzero(keep)
            out[k0[keep] + o, vi + rows[0], ui + cols[0]] = True
    return out
