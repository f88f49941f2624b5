"""Where the vertebrae are: the spine's axis, and one slot along it per vertebra.

This is the analysis half of segmentation. It never looks at a single voxel's
label; it answers "is there a spine, how many vertebrae does the scan show, and
between which two discs does each lie", from coarse copies and resampled
cross-sections (see :mod:`.canal`, :mod:`.column`, :mod:`.discs`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .canal import SpineAxis, extend_axis, find_canal
from .column import StraightSpine, straighten
from .discs import BODY_FILL, DEFAULT_PERIOD_MM, NO_BODY_FILL, DiscEvidence, disc_evidence, find_discs, find_pedicles
from .endplates import DiscPlane, fit_disc
from .grid import analysis_grid

#: A vertebra cut by the end of the scan is kept when at least this share of a
#: vertebral period of its body is in view.
MIN_PARTIAL = 0.25
#: Disc evidence strong enough to continue counting vertebrae beyond the last
#: pedicle level found (lumbosacral junction, a cut arch).
STRONG_DISC = 1.0


@dataclass(frozen=True)
class VertebraSlot:
    """One vertebra's stretch of the straightened spine (arc length, mm).

    ``low``/``high`` are cross-section indices of its lower and upper boundary (a
    disc's centre, or the end of the scan); ``low_disc``/``high_disc`` say which.
    ``pedicle`` is the cross-section of its pedicles, or -1 when not seen.
    """

    low: int
    high: int
    low_disc: bool
    high_disc: bool
    pedicle: int
    disc_strength: tuple
    low_plane: DiscPlane | None = None
    high_plane: DiscPlane | None = None

    @property
    def complete(self) -> bool:
        return self.low_disc and self.high_disc

    def bounds(self, v, u) -> tuple[np.ndarray, np.ndarray]:
        """Cross-section index of the body's lower and upper endplate at ``v``, ``u`` (mm).

        At a disc, the endplate is the disc's fitted mid-plane plus or minus its
        half-thickness; at the scan's end, the slot's end.
        """
        v, u = np.asarray(v, dtype=float), np.asarray(u, dtype=float)
        shape = np.broadcast(v, u).shape
        lo = self.low_plane.at(v, u) + self.low_plane.half if self.low_plane else np.full(shape, float(self.low))
        hi = self.high_plane.at(v, u) - self.high_plane.half if self.high_plane else np.full(shape, float(self.high))
        return np.broadcast_to(lo, shape), np.broadcast_to(hi, shape)


@dataclass(frozen=True)
class SpineLayout:
    """The result of :func:`find_spine` (canonical SPL frame, mm)."""

    axis: SpineAxis
    straight: StraightSpine
    evidence: DiscEvidence
    slots: tuple  # VertebraSlot, superior first

    @property
    def step_mm(self) -> float:
        s = self.straight.s
        return float(s[1] - s[0]) if len(s) > 1 else 1.0


def find_spine(hu: np.ndarray, spacing) -> SpineLayout | None:
    """Find the spine and its vertebrae in canonical HU; None when there is no spine.

    Parameters
    ----------
    hu : ndarray
        CT in HU, canonical SPL axes (axis 0 to the head), any voxel size.
    spacing : sequence of 3 float
        Voxel size per axis, mm.
    """
    spacing = np.asarray(spacing, dtype=float)
    grid = analysis_grid(hu, spacing)
    axis = find_canal(grid)
    if axis is None:
        return None
    z_span = (0.0, (hu.shape[0] - 1) * spacing[0])
    axis = extend_axis(axis, z_span)
    st = straighten(hu, spacing, axis)
    ev = disc_evidence(st)
    step = float(st.s[1] - st.s[0])
    pedicles = find_pedicles(ev, step)
    if len(pedicles) == 0:
        return SpineLayout(axis, st, ev, ())
    discs, strength = find_discs(ev, pedicles, step)
    slots = _slots(ev, st, pedicles, discs, strength, step)
    # A spine shows at least two vertebrae, each with a body (not a long bone's marrow).
    slots = [s for s in slots if np.median(ev.body_fill[s.low : s.high + 1]) >= BODY_FILL]
    if len(slots) < 2:
        return SpineLayout(axis, st, ev, ())
    return SpineLayout(axis, st, ev, tuple(slots[::-1]))


def _slots(ev: DiscEvidence, st: StraightSpine, pedicles, discs, strength, step) -> list[VertebraSlot]:
    """Vertebra slots from the pedicle levels and their discs, bottom to top."""
    n = len(pedicles)
    period = np.where(np.isfinite(ev.period), ev.period, DEFAULT_PERIOD_MM) / step
    fill = ev.body_fill
    last = len(st.s) - 1
    slots: list[VertebraSlot] = []
    for k in range(n):
        lo, hi = int(discs[k]), int(discs[k + 1])
        slots.append(
            VertebraSlot(
                low=lo if lo >= 0 else _body_end(fill, int(pedicles[k]), -1),
                high=hi if hi >= 0 else _body_end(fill, int(pedicles[k]), 1),
                low_disc=lo >= 0,
                high_disc=hi >= 0,
                pedicle=int(pedicles[k]),
                disc_strength=(float(strength[k]), float(strength[k + 1])),
            )
        )
    # Beyond the pedicle chain: more vertebrae while strong discs keep the rhythm.
    for direction in (-1, 1):
        while True:
            edge = slots[0] if direction < 0 else slots[-1]
            if not (edge.low_disc if direction < 0 else edge.high_disc):
                break
            d = edge.low if direction < 0 else edge.high
            t = period[d]
            a, b = sorted((int(round(d + direction * 0.65 * t)), int(round(d + direction * 1.35 * t))))
            a, b = max(a, 0), min(b, last)
            nxt = -1
            if b > a:
                i = a + int(np.argmax(ev.score[a : b + 1]))
                if ev.score[i] >= STRONG_DISC:
                    nxt = i
            if nxt < 0:
                # The scan's end: a partial vertebra if enough body is in view.
                end = _body_end(fill, d, direction)
                span = abs(end - d)
                if span >= MIN_PARTIAL * t:
                    far = int(round(d + direction * min(span, t)))
                    lo_, hi_ = sorted((d, far))
                    if np.median(fill[lo_ : hi_ + 1]) >= BODY_FILL:
                        slot = VertebraSlot(
                            low=lo_,
                            high=hi_,
                            low_disc=direction > 0,
                            high_disc=direction < 0,
                            pedicle=-1,
                            disc_strength=(0.0, 0.0),
                        )
                        if direction < 0:
                            slots.insert(0, slot)
                        else:
                            slots.append(slot)
                break
            lo_, hi_ = sorted((d, nxt))
            if np.median(fill[lo_ : hi_ + 1]) < BODY_FILL:
                break
            slot = VertebraSlot(
                low=lo_,
                high=hi_,
                low_disc=True,
                high_disc=True,
                pedicle=-1,
                disc_strength=(float(ev.score[lo_]), float(ev.score[hi_])),
            )
            if direction < 0:
                slots.insert(0, slot)
            else:
                slots.append(slot)
    # A vertebra cut by the scan at the pedicle chain's own ends must show enough body.
    keep = []
    for s in slots:
        if s.high <= s.low:
            continue
        if not s.complete and (s.high - s.low) < MIN_PARTIAL * period[(s.low + s.high) // 2]:
            continue
        keep.append(s)
    # Each disc's own plane, shared by the vertebrae above and below it.
    planes: dict[int, DiscPlane] = {}
    for s in keep:
        for k, is_disc in ((s.low, s.low_disc), (s.high, s.high_disc)):
            if is_disc and k not in planes:
                reach = max(int(round(0.35 * period[k])), int(round(6.0 / step)))
                planes[k] = fit_disc(st, k, reach, step)
    return [
        replace(
            s,
            low_plane=planes.get(s.low) if s.low_disc else None,
            high_plane=planes.get(s.high) if s.high_disc else None,
        )
        for s in keep
    ]


def _body_end(fill: np.ndarray, start: int, direction: int) -> int:
    """The last cross-section from ``start`` towards ``direction`` still in a body:
    before the body band empties for good (the spine ends), or the scan's end."""
    i = start
    last = len(fill) - 1
    while 0 < i < last and (
        fill[i + direction] >= NO_BODY_FILL or fill[min(max(i + 2 * direction, 0), last)] >= NO_BODY_FILL
    ):
        i += direction
    return i
