"""Which tissue is where: the complete phantom model and its point classifier.

Tissue values are the HU a large uniform piece of the tissue would have. Cortex is
given the value of compact bone (1400 HU): a 1-mm shell then shows 700-1200 HU on
the image after partial volume and the scanner blur, as thin cortex does on real CT.
Cancellous bone follows a per-level gradient, T12 76 HU to L5 174 HU (see
:mod:`.levels`). Sources: Hounsfield-unit tables in
Lev MH, Gonzalez RG, *CT angiography and CT perfusion imaging*, 2002; Schreiber JJ et
al., J Bone Joint Surg Am 93:1057-1063, 2011 (trabecular HU in osteoporosis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import FRACTURE_LEVEL, SpineModel
from .body import TABLE_SHELL, BodyModel
from .shapes import Function, Intersection, Offset, Shape, points_box
from .vertebra import CORTEX_MM

#: name -> (HU, fine texture amplitude, coarse texture amplitude), HU.
TISSUES: dict[str, tuple[float, float, float]] = {
    "air": (-1000.0, 0.0, 0.0),
    "table_shell": (350.0, 0.0, 0.0),
    "table_core": (-880.0, 0.0, 0.0),
    "pad": (-930.0, 0.0, 0.0),
    "skin": (30.0, 0.0, 0.0),
    "subcutaneous_fat": (-105.0, 0.0, 0.0),
    "fat": (-92.0, 0.0, 0.0),
    "muscle": (45.0, 6.0, 0.0),
    "psoas": (50.0, 5.0, 0.0),
    "kidney": (32.0, 0.0, 0.0),
    "bowel": (22.0, 0.0, 45.0),
    "aorta": (42.0, 0.0, 0.0),
    "ivc": (38.0, 0.0, 0.0),
    "calcification": (700.0, 0.0, 0.0),
    "csf": (8.0, 0.0, 0.0),
    "epidural_fat": (-80.0, 0.0, 0.0),
    "disc_annulus": (92.0, 0.0, 0.0),
    "disc_nucleus": (72.0, 0.0, 0.0),
    "ligament": (62.0, 0.0, 0.0),
    "cortical": (1400.0, 0.0, 0.0),
    "trabecular": (120.0, 35.0, 0.0),  # base replaced per bone
    "sclerotic": (330.0, 35.0, 0.0),  # compressed trabeculae under the collapsed endplate
}
NAMES = tuple(TISSUES)
INDEX = {n: i for i, n in enumerate(NAMES)}
#: Soft tissue (ligaments, capsules, periosteum) lining every bone, mm.
RIND_MM = 2.5
#: Points classified together (one box test per region and chunk).
CHUNK = 8192
#: Depth of the sclerotic band under the fractured endplate, mm.
SCLEROTIC_MM = 5.0
#: Tube voltage the tissue values stand for (HU tables are for 120 kVp CT), kV.
KVP = 120.0
#: Scanner point-spread function, Gaussian sigma in mm (isotropic).
PSF_SIGMA_MM = 0.5
#: In-plane correlation of the image noise (Gaussian kernel sigma, pixels).
NOISE_CORRELATION_PX = 0.8


@dataclass
class Region:
    """A shape and the tissues it holds: ``levels`` are (offset, tissue index) pairs;
    a point belongs to the first tissue whose ``sdf < offset``."""

    shape: Shape | None
    levels: list[tuple[float, int]]
    bone: int = -1  # index into PhantomModel.bones, or -1
    rind: bool = False  # classify by the distance to the nearest bone instead


class PhantomModel:
    """The whole phantom: bones (:attr:`spine`), soft tissues (:attr:`body`) and the
    order in which they claim space.

    Attributes
    ----------
    spine : SpineModel
    body : BodyModel
    bones : list of (name, label, shape)
    regions : list of Region
        Priority order: table, pad, bones, discs, canal, skin, fat, rind, organs...
    """

    def __init__(self, spine: SpineModel | None = None):
        self.spine = spine if spine is not None else SpineModel()
        self.body = BodyModel(self.spine)
        self.bones = self.spine.bones()
        self.bone_labels = np.array([lab for _, lab, _ in self.bones] + [0], dtype=np.int16)
        marrow = {"rib_left": 150.0, "rib_right": 150.0, "ilium_left": 140.0, "ilium_right": 140.0}
        self.bone_marrow_hu = np.array(
            [self.spine.specs[n].trabecular_hu if n in self.spine.specs else marrow[n] for n, _, _ in self.bones]
            + [0.0]
        )
        self.hu = np.array([TISSUES[n][0] for n in NAMES])
        self.fine_amp = np.array([TISSUES[n][1] for n in NAMES])
        self.coarse_amp = np.array([TISSUES[n][2] for n in NAMES])
        self.regions = self._regions()

    def _regions(self) -> list[Region]:
        T = INDEX
        body, spine = self.body, self.spine
        out = [
            Region(body.table.board(), [(-TABLE_SHELL, T["table_core"]), (0.0, T["table_shell"])]),
            Region(body.table.pad(), [(0.0, T["pad"])]),
        ]
        fi = [i for i, (n, _, _) in enumerate(self.bones) if n == FRACTURE_LEVEL][0]
        plane = spine.fracture_plane
        band = Function(lambda p: np.maximum(plane.sdf(p), -SCLEROTIC_MM - plane.sdf(p)), [-np.inf] * 3, [np.inf] * 3)
        dense = Intersection(Offset(spine.bodies[FRACTURE_LEVEL], -CORTEX_MM), band)
        out.append(Region(dense, [(0.0, T["sclerotic"])], bone=fi))
        for i, (_, _, shape) in enumerate(self.bones):
            out.append(Region(shape, [(-CORTEX_MM, T["trabecular"]), (0.0, T["cortical"])], bone=i))
        for disc in spine.discs.values():
            out.append(Region(disc.nucleus(), [(0.0, T["disc_nucleus"])]))
            out.append(Region(disc, [(0.0, T["disc_annulus"])]))
        out += [Region(body.thecal_sac, [(0.0, T["csf"])]), Region(body.canal, [(0.0, T["epidural_fat"])])]
        regs = body.regions()
        out += [Region(s, [(0.0, T[n])]) for n, s in regs[:2]]
        out.append(Region(None, [(RIND_MM, T["ligament"])], rind=True))
        out += [Region(s, [(0.0, T[n])]) for n, s in regs[2:]]
        return out

    def classify(self, points, band: float = 0.0):
        """Tissue and bone at LPS ``points`` (N, 3).

        Parameters
        ----------
        points : ndarray, shape (N, 3)
        band : float
            When > 0, also flag points within ``band`` mm of a tissue boundary that
            matters there (those need supersampling).

        Returns
        -------
        tissue : ndarray of int16
            Index into :data:`NAMES`.
        bone : ndarray of int16
            Index into :attr:`bones`, ``len(bones)`` where no bone.
        near : ndarray of bool
            Points near a boundary (all False when ``band == 0``).
        """
        p = np.asarray(points, dtype=float).reshape(-1, 3)
        n = len(p)
        tissue = np.full(n, INDEX["air"], np.int16)
        bone = np.full(n, len(self.bones), np.int16)
        near = np.zeros(n, bool)
        # Chunks of consecutive points: callers pass spatially coherent orders, so
        # whole chunks can skip a region by a box test.
        for a in range(0, n, CHUNK):
            b = min(n, a + CHUNK)
            self._classify_chunk(p[a:b], band, tissue[a:b], bone[a:b], near[a:b])
        return tissue, bone, near

    def _classify_chunk(self, p, band, tissue, bone, near):
        n = len(p)
        open_ = np.ones(n, bool)
        bone_min = np.full(n, np.inf)
        reach = RIND_MM + band + 0.5
        pbox = points_box(p)
        for reg in self.regions:
            if reg.rind:
                idx = np.nonzero(open_)[0]
                f = bone_min[idx]
            else:
                margin = (reach if reg.bone >= 0 else 0.0) + band
                where = reg.shape.overlap(pbox, margin)
                if where == 0:
                    continue
                idx = np.nonzero(open_)[0]
                if where == 1:
                    idx = idx[reg.shape.near(p[idx], margin)]
                if idx.size == 0:
                    continue
                f = reg.shape.sdf(p[idx])
                if reg.bone >= 0:
                    bone_min[idx] = np.minimum(bone_min[idx], f)
            if idx.size == 0:
                continue
            claimed = np.zeros(idx.size, bool)
            edge = np.zeros(idx.size, bool)
            for offset, t in reg.levels:
                inside = (f < offset) & ~claimed
                tissue[idx[inside]] = t
                if reg.bone >= 0:
                    bone[idx[inside]] = reg.bone
                claimed |= inside
                if band > 0:
                    edge |= np.abs(f - offset) < band
            near[idx[edge]] = True
            open_[idx[claimed | edge]] = False
            if not open_.any():
                break

    def tissue_at(self, points) -> np.ndarray:
        """Tissue names at LPS ``points`` (..., 3)."""
        p = np.asarray(points, float)
        t, _, _ = self.classify(p.reshape(-1, 3))
        return np.array(NAMES, dtype=object)[t].reshape(p.shape[:-1])
