"""Intervertebral discs along the straightened spine.

Two signs mark a disc in the cross-sections of the straightened spine, and each
fails somewhere the other holds:

* *No bony ring*: inside a vertebral body, walking out in any direction meets
  cortex within a few centimetres, however faint the marrow; in a disc it does not
  (the annulus is soft tissue). This holds for osteoporotic bodies at 3 mm, where
  the disc is no darker than the marrow; it weakens in the chest, where rib heads
  and a contrast-filled aorta ring the thoracic discs.
* *A dip between two plates*: the disc is darker than the two endplates within a
  few millimetres above and below it. This holds in the chest's thin discs and in
  dense bone; it weakens where the endplates are faint.

Neither says how many vertebrae there are: thin thoracic discs at 2.5 mm, and the
dark basivertebral vein in mid-body, leave gaps and decoys. The pedicles do: each
vertebra's pedicles leave the upper part of its body as two cortical pillars beside
the canal, and between two vertebrae the intervertebral foramina are fat, at any
bone density and slice thickness. The pedicle levels are found first (one peak per
vertebra, spaced by the local vertebral period), then one disc between each pair
of neighbouring pedicle levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .column import StraightSpine
from .enclosure import enclosure

#: HU (after a 0.7 mm blur) counted as cortex when judging whether a point is ringed.
RING_HU = 140.0
#: How far a point inside a body looks for its cortex, mm.
RING_MM = 25.0
#: Share of directions meeting cortex inside a body.
RINGED = 0.85
#: The band of a cross-section that lies inside every body, mm from the canal's
#: centre: in front of the canal (radius 6-10 mm), behind the front of the smallest
#: (upper thoracic) body, away from its sides.
BAND_V = (12.0, 28.0)
BAND_U = 10.0
#: Endplates are looked for at most this far above and below a disc's centre, mm.
PLATE_REACH_MM = 8.0
#: Vertebral period assumed where the scan is too short to measure it, mm.
DEFAULT_PERIOD_MM = 28.0
#: Endplate-to-disc contrast that counts as full evidence, HU.
DIP_HU = 60.0
#: Where pedicles lie in a cross-section, mm from the canal's centre, and their HU.
PEDICLE_V = (-6.0, 6.0)
PEDICLE_U = (7.0, 25.0)
PEDICLE_HU = 200.0
#: Share of the body band that is bone or ringed by bone in a vertebral body, and
#: below which no body is there at all (the spine has ended).
BODY_FILL = 0.3
NO_BODY_FILL = 0.15
#: Centre-to-centre spacing of consecutive discs, mm (C7 ~ 16, L3 ~ 40).
PERIOD_MM = (11.0, 52.0)


@dataclass(frozen=True)
class DiscEvidence:
    """Per-cross-section disc evidence (see module notes)."""

    unringed: np.ndarray  # 0..1, loss of the bony ring in the body band
    dip: np.ndarray  # HU, darker than the plates above and below
    score: np.ndarray  # combined, ~0..2
    band_hu: np.ndarray  # median HU of the body band
    pedicles: np.ndarray  # 0..~1, bone beside the canal on both sides (one peak per vertebra)
    period: np.ndarray  # mm, local vertebral period (NaN where the pedicles do not repeat clearly)
    body_fill: np.ndarray  # 0..1, share of the body band that is bone or ringed by bone
    ringed: np.ndarray  # bool (ns, nv, nu): ringed by bone within the cross-section


def disc_evidence(st: StraightSpine) -> DiscEvidence:
    """Evidence for a disc at every cross-section of ``st``."""
    step = _step(st)
    pedicles = pedicle_profile(st)
    period = local_period(pedicles, step)
    smooth = ndimage.gaussian_filter(st.hu, (0.0, 0.7, 0.7))
    bone = smooth >= RING_HU
    ringed = enclosure(bone, (1.0, 1.0, 1.0), RING_MM) >= RINGED
    vb = (st.v >= BAND_V[0]) & (st.v <= BAND_V[1])
    ub = np.abs(st.u) <= BAND_U
    band = vb[:, None] & ub[None, :]
    inside = st.inside[:, band]
    solid = (bone | ringed)[:, band]
    # Cross-sections partly outside the scan count only their scanned part.
    n_in = np.maximum(inside.sum(axis=1), 1)
    fill = (solid & inside).sum(axis=1) / n_in
    fill = ndimage.gaussian_filter1d(fill.astype(float), 1.0)
    # How much less ringed than the bodies nearby (the best-filled cross-sections
    # within 25 mm); a cross-section with no body nearby gives no evidence.
    k = int(round(25.0 / step))
    top = ndimage.maximum_filter1d(fill, 2 * k + 1)
    unringed = np.clip((top - fill) / np.maximum(top, 0.3), 0.0, 1.0)
    hu = np.where(inside, smooth[:, band], np.nan)
    has = inside.any(axis=1)
    p = np.full(len(st.s), np.nan)
    p[has] = np.nanmedian(hu[has], axis=1)
    p = np.where(np.isfinite(p), p, np.nanmin(p) if np.isfinite(p).any() else 0.0)
    dip = plate_dip(p, period, step)
    score = unringed + np.clip(dip / DIP_HU, 0.0, 1.0)
    return DiscEvidence(
        unringed=unringed,
        dip=dip,
        score=score,
        band_hu=p,
        pedicles=pedicles,
        period=period,
        body_fill=fill,
        ringed=ringed,
    )


def plate_dip(profile: np.ndarray, period: np.ndarray, step_mm: float) -> np.ndarray:
    """How much darker each point is than the plates just above and below it, HU.

    ``min(profile[s - w], profile[s + w]) - profile[s]``, the best over plate
    distances ``w`` up to a fifth of the local vertebral period (a disc is at most
    ~40 % of a vertebra's height; a body is never that short, so the dip between a
    short body's own endplates does not count).
    """
    n = len(profile)
    t = np.where(np.isfinite(period), period, DEFAULT_PERIOD_MM)
    reach = np.clip(np.rint(0.2 * t / step_mm).astype(int), 2, int(round(PLATE_REACH_MM / step_mm)))
    r = int(reach.max())
    padded = np.pad(profile, r, mode="edge")
    dip = np.zeros(n)
    for w in range(1, r + 1):
        pair = np.minimum(padded[r + w : r + w + n], padded[r - w : r - w + n]) - profile
        dip = np.where(w <= reach, np.maximum(dip, pair), dip)
    return dip


def pedicle_profile(st: StraightSpine) -> np.ndarray:
    """Share of bone beside the canal, left and right (the lesser), per cross-section.

    Each vertebra's pedicles join its body to its arch at the level of the body's
    upper half: beside the canal they are cortical bone, between them the
    intervertebral foramina are fat. The profile has one peak per vertebra at any
    bone density, and a trough at every foramen, near the disc.
    """
    smooth = ndimage.gaussian_filter(st.hu, (1.0, 0.7, 0.7))
    vw = (st.v >= PEDICLE_V[0]) & (st.v <= PEDICLE_V[1])
    side = (np.abs(st.u) >= PEDICLE_U[0]) & (np.abs(st.u) <= PEDICLE_U[1])
    bone = smooth[:, vw] >= PEDICLE_HU
    left = bone[:, :, side & (st.u > 0)].mean(axis=(1, 2))
    right = bone[:, :, side & (st.u < 0)].mean(axis=(1, 2))
    ped = np.minimum(left, right)
    scale = max(float(np.percentile(ped, 95)), 1e-3)
    return ped / scale


def local_period(signal: np.ndarray, step_mm: float) -> np.ndarray:
    """Vertebral period (disc to disc, mm) along the spine, from autocorrelation.

    The pedicle profile repeats once per vertebra; its autocorrelation over +-50 mm
    peaks at the local period (thoracic ~22 mm, lumbar ~32 mm). Where it does not
    repeat clearly (a short scan) the period is NaN.
    """
    n = len(signal)
    half = int(round(50.0 / step_mm))
    lags = np.arange(int(round(PERIOD_MM[0] / step_mm)), int(round(PERIOD_MM[1] / step_mm)) + 1)
    centres = np.arange(0, n, max(int(round(5.0 / step_mm)), 1))
    found = np.full(len(centres), np.nan)
    for k, c in enumerate(centres):
        x = signal[max(c - half, 0) : min(c + half + 1, n)]
        x = x - x.mean()
        if len(x) < 2 * lags[0] + 3 or not x.any():
            continue
        ac = np.array(
            [
                np.dot(x[: len(x) - lag], x[lag:]) / (len(x) - lag) if lag < len(x) else 0.0
                for lag in range(lags[-1] + 2)
            ]
        ) / float(np.dot(x, x) / len(x))
        inner = lags[(lags + 1 < len(ac)) & (2 * lags <= len(x))]
        peak = [lag for lag in inner if ac[lag] >= ac[lag - 1] and ac[lag] >= ac[lag + 1] and ac[lag] >= 0.3]
        if peak:
            found[k] = max(peak, key=lambda lag: ac[lag]) * step_mm
    ok = np.isfinite(found)
    if not ok.any():
        return np.full(n, np.nan)
    # Median over neighbouring windows, then held constant beyond the ends.
    smooth = np.array(
        [
            np.nanmedian(found[max(k - 2, 0) : k + 3]) if ok[max(k - 2, 0) : k + 3].any() else np.nan
            for k in range(len(found))
        ]
    )
    good = np.isfinite(smooth)
    return np.interp(np.arange(n), centres[good], smooth[good])


def find_pedicles(
    evidence: DiscEvidence, step_mm: float, *, min_height: float = 0.2, cost: float = 0.1, regularity: float = 3.0
) -> np.ndarray:
    """Indices of the pedicle levels, one per vertebra: the most plausible chain of peaks.

    Candidates are local maxima of the pedicle profile. A chain earns each peak's
    height minus ``cost``; consecutive peaks must be separated by a foramen (the
    profile falls below 60 % of the lower peak between them) and lose
    ``regularity`` times how far their spacing strays (log scale, beyond 25 %) from
    the local vertebral period (any spacing in :data:`PERIOD_MM` where unknown).
    """
    ped = ndimage.gaussian_filter1d(evidence.pedicles, 1.0 / step_mm)
    size = max(int(round(6.0 / step_mm)), 1) * 2 + 1
    peaks = np.flatnonzero((ped == ndimage.maximum_filter1d(ped, size)) & (ped >= min_height))
    if len(peaks) == 0:
        return peaks
    period = evidence.period
    pos = peaks * step_mm
    gain = ped[peaks] - cost
    best = gain.copy()
    back = np.full(len(peaks), -1)
    for j in range(len(peaks)):
        for i in range(j):
            gap = pos[j] - pos[i]
            if not PERIOD_MM[0] <= gap <= PERIOD_MM[1]:
                continue
            if ped[peaks[i] : peaks[j] + 1].min() > 0.6 * min(ped[peaks[i]], ped[peaks[j]]):
                continue
            t = period[(peaks[i] + peaks[j]) // 2]
            off = 0.0 if not np.isfinite(t) else max(abs(np.log(gap / t)) - np.log(1.25), 0.0)
            total = best[i] + gain[j] - regularity * off
            if total > best[j]:
                best[j], back[j] = total, i
    j = int(np.argmax(best))
    chain = []
    while j >= 0:
        chain.append(j)
        j = back[j]
    return peaks[np.array(chain[::-1])]


def find_discs(evidence: DiscEvidence, pedicles: np.ndarray, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The disc below and above every pedicle level, as cross-section indices.

    A vertebra's pedicles leave the upper part of its body: going up from one
    pedicle level to the next, the disc lies 10-65 % of the way. The disc is the
    strongest disc evidence there. Below the lowest and above the highest pedicle
    level the same fractions of the local period are searched, where the scan
    reaches.

    Returns
    -------
    discs : ndarray of int, shape (n + 1,)
        Disc below pedicle level 0, between levels 0 and 1, ..., above level n-1;
        -1 where the scan ends first.
    strength : ndarray of float, shape (n + 1,)
        The disc evidence at each (0 where absent).
    """
    n = len(pedicles)
    ns = len(evidence.score)
    q = evidence.score
    t = np.where(np.isfinite(evidence.period), evidence.period, DEFAULT_PERIOD_MM) / step_mm
    discs = np.full(n + 1, -1)
    strength = np.zeros(n + 1)
    for k in range(n + 1):
        if 0 < k < n:
            lo_p, hi_p = pedicles[k - 1], pedicles[k]
            a = lo_p + 0.10 * (hi_p - lo_p)
            b = lo_p + 0.65 * (hi_p - lo_p)
        elif k == 0:
            if n == 0:
                break
            p = pedicles[0]
            a, b = p - 0.90 * t[p], p - 0.35 * t[p]
        else:
            p = pedicles[-1]
            a, b = p + 0.10 * t[p], p + 0.65 * t[p]
        a, b = int(np.ceil(a)), int(np.floor(b))
        if k in (0, n) and (a < 0 or b >= ns):
            continue
        a, b = max(a, 0), min(b, ns - 1)
        if b < a:
            continue
        i = a + int(np.argmax(q[a : b + 1]))
        if k in (0, n) and not _body_beyond(evidence.body_fill, i, -1 if k == 0 else 1, step_mm):
            continue  # the spine ends there (nothing but soft tissue beyond): no disc
        discs[k], strength[k] = i, q[i]
    return discs, strength


def _body_beyond(fill: np.ndarray, i: int, direction: int, step_mm: float) -> bool:
    """Whether a body follows 4-10 mm beyond cross-section ``i`` (or the scan ends first)."""
    a, b = sorted((i + direction * int(round(4.0 / step_mm)), i + direction * int(round(10.0 / step_mm))))
    a, b = max(a, 0), min(b, len(fill) - 1)
    if b < a:
        return True
    return float(np.median(fill[a : b + 1])) >= NO_BODY_FILL


def _step(st: StraightSpine) -> float:
    return float(st.s[1] - st.s[0]) if len(st.s) > 1 else 1.0
