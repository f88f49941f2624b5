"""The first sacral segment: where S1 ends inside a fused sacrum.

Below the L5/S1 disc the sacrum is one bone. The S1 vertebra (as reference
labellings such as VerSe and TotalSegmentator draw it) is its first segment: the
S1 body down to the S1/S2 junction, with its alae and arch. The junction is often a
faint remnant disc that the disc search may or may not find; where it does not,
the border is placed parallel to the S1 endplate at the S1 body's expected height.
The S1 body is a little taller than L5's in adults (roughly 28-30 mm against
26-28 mm; an approximate ratio, not a fitted one), so the expected height is L5's
measured body height times ``S1_TO_L5_HEIGHT``, or ``S1_HEIGHT_MM`` when L5's
height was not measured.

The sacrum's marrow continues into S2, so a 3-D hole fill cannot close the cut S1;
its marrow is filled slice by slice instead, leaving the sacral canal open.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .assign import LabelledSpine
from .bone import largest_piece
from .column import BoxCoordinates
from .solid import fill_slices
from .spine import SpineLayout

#: S1 body height over L5 body height (an approximate adult ratio, see module notes).
S1_TO_L5_HEIGHT = 1.08
#: S1 body height when L5's is unknown, mm.
S1_HEIGHT_MM = 29.0
#: A found S1/S2 junction is trusted within this fraction of the expected height.
JUNCTION_TOLERANCE = 0.3
#: A body lies this far in front of the canal's centre and within this half-width, mm.
BODY_FROM_V_MM = 8.0
BODY_HALF_WIDTH_MM = 15.0


def first_sacral_segment(parts: LabelledSpine, value: int, index: int, layout: SpineLayout) -> np.ndarray:
    """The spine's labels with S1 (slot ``index`` of ``layout``) ending at the S1/S2 junction.

    Parameters
    ----------
    parts : LabelledSpine
        The labelled spine (its labels are not modified).
    value : int
        The S1 label in ``labels``.
    index : int
        The S1 slot's position in ``layout.slots``.
    layout : SpineLayout

    Returns
    -------
    ndarray
        Labels in the spine's box: S1 extended over unassigned sacral bone down to
        its lower border, its marrow filled, and the bone below the border removed.
    """
    labels, frame = parts.labels, parts.frame
    slot = layout.slots[index]
    if slot.high_plane is None:
        return labels
    step = layout.step_mm
    s1_top = _body_extent(labels == value, frame)
    if s1_top is None:
        return labels
    expected = S1_HEIGHT_MM
    l5 = _body_extent(labels == value - 1, frame) if index > 0 and layout.slots[index - 1].complete else None
    if l5 is not None:
        expected = S1_TO_L5_HEIGHT * (l5[1] - l5[0]) * step
    lo, hi = slot.bounds(s1_top[2], 0.0)
    found = float(hi - lo) * step
    junction = slot.low_disc and abs(found - expected) <= JUNCTION_TOLERANCE * expected
    height = found if junction else expected
    # The border runs parallel to the S1 endplate (the disc's fitted plane), one
    # body height (the junction's, when found) below the endplate as segmented.
    centre = float(slot.high_plane.at(s1_top[2], 0.0))
    border_at_centre = s1_top[1] - height / step

    def below(idx):
        k, v, u = frame.at(idx).T
        return k < slot.high_plane.at(v, u) - centre + border_at_centre

    out = labels.copy()
    # The slot may end above the junction (at a faint dip inside the sacrum, or
    # where the body band fades in its curve): unassigned sacral bone, or bone of
    # the slot below, joined to S1 above the border is S1's.
    free = ((labels == 0) | (labels == value + 1)) & (parts.depth > 0) & ~parts.lateral
    idx = np.argwhere(free)
    free[tuple(idx[below(idx)].T)] = False
    comp, _ = ndimage.label(free | (labels == value))
    joined = np.unique(comp[labels == value])
    out[np.isin(comp, joined[joined > 0]) & free] = value
    # The ilia close the ring around the alae's marrow where the sacroiliac joints
    # took the alae's tips.
    walls = (out == value) | parts.lateral
    mine = fill_slices(walls, out == value, frame) & ~parts.lateral & ((out == 0) | (out == value) | (out == value + 1))
    idx = np.argwhere(mine)
    cut = below(idx)
    out[tuple(idx[~cut].T)] = value
    out[tuple(idx[cut].T)] = 0
    # The cut can leave crumbs of the sacrum below a curved junction: S1 is its
    # largest piece.
    mine = out == value
    out[mine & ~largest_piece(mine)] = 0
    return out


def _body_extent(mask: np.ndarray, frame: BoxCoordinates):
    """Lowest and highest ``k`` (cross-sections) of ``mask``'s body (its rims, not its
    concave centre), and the body's middle ``v`` (mm); None when it shows no body."""
    idx = np.argwhere(mask)
    if len(idx) == 0:
        return None
    k, v, u = frame.at(idx).T
    body = (v >= BODY_FROM_V_MM) & (np.abs(u) <= BODY_HALF_WIDTH_MM)
    if np.count_nonzero(body) < 10:
        return None
    return float(np.percentile(k[body], 2)), float(np.percentile(k[body], 98)), float(np.median(v[body]))
