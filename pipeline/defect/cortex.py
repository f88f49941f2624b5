"""Endplate positions from the CT's own profile, where the label may be off.

A label can end beyond the bony endplate: slice-wise marrow filling closes the
endplate's central concavity where an axial slice cuts the rim as a ring around
disc tissue (disc HU 70-100 is marrow-like), adding up to a slice to the middle
height of a body whose endplates lie near the axial plane. Along each measuring
line the CT shows the endplate as a bright plate (cortex) against the dark disc:
the bone edge is where the blurred profile falls from that plate to the disc,
at ``PLATE_EDGE_FRACTION`` of the way from the disc to the plate's peak.

The CT is used only to pull a label's end back towards the bone, by at most
``MAX_SHIFT_MM``, and only where the plate stands out clearly
(``MIN_CONTRAST_HU``); elsewhere the label's end stands.
"""

from __future__ import annotations

import numpy as np

from .body import sample_field

#: Where the endplate's edge lies between the disc and the plate's blurred peak: a
#: plate about as thin as the scanner's blur (~1 mm) has a profile wider than the
#: plate, and 0.65 of the way is its true surface (heights within 0.7 mm of the
#: phantom's truth).
PLATE_EDGE_FRACTION = 0.65
#: How far (mm) inside and outside a label's end the profile is read.
WINDOW_MM = 4.0
#: Largest correction (mm) of a label's end.
MAX_SHIFT_MM = 3.0
#: Smallest plate-to-disc contrast (HU) for the profile to be trusted.
MIN_CONTRAST_HU = 150.0
#: Profile sampling step, mm.
STEP_MM = 0.1


def refine_end(hu, affine, origin, direction, t_end: float, outward: float) -> float:
    """Position (mm along the line) of the bone edge nearest a label's end.

    Parameters
    ----------
    hu : ndarray of float32
        CT in HU (a crop) on ``affine``'s grid.
    affine : ndarray (4, 4)
        Index -> LPS mm of ``hu``.
    origin, direction : array_like (3,)
        The line ``origin + t * direction`` (LPS mm, unit direction).
    t_end : float
        Where the label ends along the line, mm.
    outward : float
        +1 if bone lies at smaller ``t`` (the line leaves the bone towards +t),
        -1 otherwise.

    Returns
    -------
    float
        The refined end, or ``t_end`` when the profile is not clear enough.
    """
    s = np.arange(-WINDOW_MM, WINDOW_MM + 1e-9, STEP_MM)  # s > 0: outside the label
    pts = np.asarray(origin, float) + (t_end + outward * s)[:, None] * np.asarray(direction, float)
    v = sample_field(hu, affine, pts)
    floor = float(v[s >= 0].min())
    peak = float(v[s <= 1.0].max())
    if peak - floor < MIN_CONTRAST_HU:
        return t_end
    # The endplate is the outermost bright plate: the outermost run above half
    # contrast (an inner sclerotic band or trabecula does not stand for it).
    bright = (v >= floor + 0.5 * (peak - floor)) & (s <= 2.0)
    idx = np.flatnonzero(bright)
    last = int(idx[-1])
    first = last
    while first > 0 and bright[first - 1]:
        first -= 1
    plate = first + int(np.argmax(v[first : last + 1]))
    level = floor + PLATE_EDGE_FRACTION * (v[plate] - floor)
    after = np.flatnonzero(v[plate:] < level)
    if after.size == 0:
        return t_end
    k = plate + int(after[0])
    a, b = v[k - 1], v[k]
    edge = s[k - 1] + (a - level) / (a - b) * STEP_MM if a != b else s[k]
    # Only ever shorten: the label's known failure is to run on into the disc,
    # while a CT edge beyond the label's end is as likely blur or a neighbouring
    # plate as bone the label missed.
    if edge >= 0.0 or edge < -MAX_SHIFT_MM:
        return t_end
    return t_end + outward * float(edge)
