"""What each vertebra carries: ribs, and the pelvis it is joined to.

Radiologists name levels by counting from landmarks: the vertebra carrying the
lowest ribs is T12, the one carrying the first ribs is T1, the first segment joined
to the ilia is S1. Here a landmark is a contact between a vertebra and a bone
flooded from the far-lateral seeds (see :mod:`.assign`), classified by *where* on
the vertebra it touches (in spine coordinates) and by the bone's build:

* a *rib* is thin bone touching the side of a body (costovertebral joint) or the
  tip of a transverse process (costotransverse joint);
* the *pelvis* is thick bone touching far out to the side (the sacroiliac joint,
  on the sacral ala).

Contacts at the facet joints, behind and beside the canal, are not landmarks: a
neighbouring vertebra left unlabelled, or the rest of the sacrum, touches there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .bone import label_components
from .distance import depth_mm

#: How close (mm) a rib or the pelvis must come to a vertebra to count as joined to it.
TOUCH_MM = 3.0
#: Depth inside bone (mm) that a quarter of the pelvis's volume exceeds (ilium near
#: the sacroiliac joint, acetabulum); ribs, even fused into one piece by blur at
#: 3 mm, stay below it.
PELVIS_P75_DEPTH_MM = 4.5
#: Smallest piece that can be a rib or pelvis, mm³.
MIN_PIECE_MM3 = 300.0
#: A rib or the pelvis reaches at least this far from the canal, mm.
MIN_REACH_MM = 40.0
#: Contact needed for a joint (mm³ of the vertebra's bone within TOUCH_MM).
RIB_CONTACT_MM3 = 15.0
PELVIS_CONTACT_MM3 = 150.0
#: An ilium's part in the spine's box is at least this large, mm³ (a rib's is < 15 cm³).
PELVIS_MIN_MM3 = 40_000.0
#: The sacroiliac joint lies this far from the canal or more, mm.
SACROILIAC_U_MM = 28.0


@dataclass(frozen=True)
class Landmarks:
    """Joints seen on each vertebra (indices 1..n, superior first): side -> contact mm³."""

    ribs: dict = field(default_factory=dict)  # index -> {"left": mm3, "right": mm3}
    pelvis: dict = field(default_factory=dict)

    def rib_sides(self, k: int) -> set:
        return {s for s, c in self.ribs.get(k, {}).items() if c >= RIB_CONTACT_MM3}

    def pelvis_sides(self, k: int) -> set:
        return {s for s, c in self.pelvis.get(k, {}).items() if c >= PELVIS_CONTACT_MM3}


def find_landmarks(labels: np.ndarray, lateral: np.ndarray, depth: np.ndarray, spacing, frame) -> Landmarks:
    """Ribs and pelvis joined to each vertebra (arrays in a box of the canonical grid).

    Parameters
    ----------
    labels : ndarray of int
        Vertebrae 1..n.
    lateral : ndarray of bool
        Bone flooded from the far-lateral seeds.
    depth : ndarray of float
        Depth inside bone, mm.
    spacing : sequence of 3 float
        Voxel size, mm.
    frame : BoxCoordinates
        Spine coordinates of the box's voxels.
    """
    spacing = np.asarray(spacing, dtype=float)
    voxel = float(np.prod(spacing))
    comp, m = label_components(lateral)
    ribs: dict = {}
    pelvis: dict = {}
    if m == 0:
        return Landmarks(ribs, pelvis)
    reach = np.maximum(np.ceil(TOUCH_MM / spacing).astype(int), 1)
    for j, sl in enumerate(ndimage.find_objects(comp), start=1):
        if sl is None:
            continue
        grown = tuple(slice(max(s.start - r, 0), s.stop + r) for s, r in zip(sl, reach))
        piece = comp[grown] == j
        if piece.sum() * voxel < MIN_PIECE_MM3:
            continue
        near = depth_mm(~piece, spacing) <= TOUCH_MM
        touched = labels[grown] * near
        if not touched.any():
            continue
        pidx = np.argwhere(piece)
        pk = frame.at(pidx + [g.start for g in grown])
        if np.abs(pk[:, 2]).max() < MIN_REACH_MM:
            continue
        d = depth[grown][piece]
        # The ilium is a thick plate, or (its marrow fatty and unfilled) a large shell.
        thick = (float(d.max()) >= 6.0 and float(np.percentile(d, 75)) >= PELVIS_P75_DEPTH_MM) or (
            piece.sum() * voxel >= PELVIS_MIN_MM3
        )
        cidx = np.argwhere(touched > 0)
        cvals = touched[tuple(cidx.T)]
        ck = frame.at(cidx + [g.start for g in grown])
        v, u = ck[:, 1], ck[:, 2]
        if thick:
            # The sacroiliac joint: far out on the sacral ala, behind the body's front.
            joint = (np.abs(u) >= SACROILIAC_U_MM) & (v <= 20.0)
            target = pelvis
        else:
            # Costovertebral (side of the body) or costotransverse (transverse process tip).
            joint = (np.abs(u) >= 22.0) | ((v >= 3.0) & (np.abs(u) >= 12.0))
            target = ribs
        for value, side_u in zip(cvals[joint], u[joint]):
            side = "left" if side_u > 0 else "right"  # u points to the patient's left
            entry = target.setdefault(int(value), {})
            entry[side] = entry.get(side, 0.0) + voxel
    return Landmarks(ribs, pelvis)
