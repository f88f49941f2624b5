"""Which vertebrae are fractured, how badly, and the defect region to fill.

Entry points (pure functions of a :class:`~pipeline.segment.VertebraSegmentation`,
any storage orientation; masks come back on the segmentation's own grid):

* :func:`find_compression_fractures` - every level graded 1-3 by Genant's
  semi-quantitative method (Genant et al., J Bone Miner Res 1993;8:1137-48), with
  its defect region;
* :func:`defect_region` - the defect of a level the user names, graded or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import DesignError, InputError
from ..volume import crop_affine, voxel_sizes
from .body import canonical_labels, is_sacrum, level_value
from .envelope import CLEARANCE_MM, build_envelope, envelope_mask, superior_share
from .genant import MAX_NEIGHBOUR_STEPS, FractureGrading, grade_levels
from .heights import BodyHeights, measure_spine

#: Smallest height loss (fraction) for which a defect is outlined on request.
#: Below it the difference from the neighbours is within the normal variation of
#: vertebral shape and of the measurement.
MIN_LOSS = 0.10


@dataclass(frozen=True)
class FractureInfo:
    """What is known of one vertebral body's collapse and its defect (no mask).

    Attributes
    ----------
    level : str
    heights : BodyHeights
        Measured anterior/middle/posterior heights (mm) and the body's frame.
    grading : FractureGrading
        Expected heights (mm), height-loss fractions, Genant grade and morphology.
    volume_mm3 : float
        Volume of the defect region, mm³ (0 when there is nothing to fill).
    reason : str
        Why the defect is empty ("" when it is not).
    collapsed_endplate : str
        "superior", "inferior", "both" or "" (no collapse).
    """

    level: str
    heights: BodyHeights
    grading: FractureGrading
    volume_mm3: float
    reason: str = ""
    collapsed_endplate: str = ""

    @property
    def grade(self) -> int:
        return self.grading.grade

    @property
    def morphology(self) -> str:
        return self.grading.morphology

    @property
    def expected_heights(self) -> dict:
        return self.grading.expected_mm

    @property
    def height_loss(self) -> dict:
        return self.grading.loss

    def to_dict(self) -> dict:
        """JSON-ready description (no mask, no patient data)."""
        out = self.grading.as_dict()
        out.update(
            {
                "body": self.heights.as_dict(),
                "defect_volume_mm3": round(float(self.volume_mm3), 1),
                "collapsed_endplate": self.collapsed_endplate,
                "defect_note": self.reason,
                "method": "Genant semi-quantitative grading (Genant et al., J Bone Miner Res "
                "1993;8:1137-48) on CT body heights at 15/50/85 % depth",
            }
        )
        return out


@dataclass(frozen=True, eq=False)
class Fracture:
    """A vertebral body's collapse: its defect mask and, apart, what it means.

    Attributes
    ----------
    mask : ndarray of bool, read-only
        The defect, cropped to its bounding box (shape ``(0, 0, 0)`` when empty).
    offset : tuple of int
        Index of ``mask[0, 0, 0]`` on the segmentation's grid.
    grid_shape : tuple of int
        Shape of the segmentation's grid.
    info : FractureInfo
        Level, grading, defect volume, why it may be empty; computed once with the
        mask and kept apart from it, so no slice of the mask carries a stale volume.
    """

    mask: np.ndarray
    offset: tuple
    grid_shape: tuple
    info: FractureInfo

    @classmethod
    def from_full_mask(cls, full: np.ndarray, info: FractureInfo) -> Fracture:
        """Crop a mask on the segmentation's grid to its bounding box."""
        full = np.asarray(full, bool)
        box = ndimage.find_objects(full.astype(np.uint8))
        if not box or box[0] is None:
            crop, offset = np.zeros((0, 0, 0), bool), (0, 0, 0)
        else:
            crop, offset = np.array(full[box[0]]), tuple(int(s.start) for s in box[0])
        crop.flags.writeable = False
        return cls(crop, offset, tuple(int(n) for n in full.shape), info)

    @property
    def level(self) -> str:
        return self.info.level

    @property
    def grade(self) -> int:
        return self.info.grade

    def any(self) -> bool:
        """Whether there is anything to fill."""
        return bool(self.mask.any())

    def full_mask(self) -> np.ndarray:
        """The defect on the segmentation's whole grid (a new array)."""
        out = np.zeros(self.grid_shape, bool)
        out[tuple(slice(o, o + n) for o, n in zip(self.offset, self.mask.shape))] = self.mask
        return out

    def affine(self, grid_affine: np.ndarray) -> np.ndarray:
        """Index of :attr:`mask` -> LPS mm, given the segmentation's affine."""
        return crop_affine(np.asarray(grid_affine, float), self.offset)


@dataclass(frozen=True)
class _Spine:
    """Everything measured once per segmentation."""

    labels_c: np.ndarray
    affine_c: np.ndarray
    undo: object
    shape: tuple
    bodies: dict
    heights: dict
    gradings: dict


def _analyse(segmentation, volume=None, around: str | None = None, bodies: dict | None = None) -> _Spine:
    """Measure and grade the spine; ``around`` limits the work to the levels that
    can influence that level's grading (its neighbours' neighbours)."""
    labels_c, affine_c, undo = canonical_labels(segmentation)
    positions = {name: i for i, name in enumerate(segmentation.levels.values())}
    only = None
    if around is not None:
        reach = 2 * MAX_NEIGHBOUR_STEPS
        only = {n for n, i in positions.items() if abs(i - positions[around]) <= reach}
    bodies, heights = measure_spine(segmentation, volume, labels_c, affine_c, only, bodies)
    gradings = grade_levels(heights, positions) if heights else {}
    return _Spine(labels_c, affine_c, undo, tuple(np.shape(segmentation.labels)), bodies, heights, gradings)


def _defect(spine: _Spine, level: str, value: int, clearance_mm: float, min_loss: float) -> Fracture:
    g = spine.gradings[level]
    h = spine.heights[level]
    vox = float(np.prod(voxel_sizes(spine.affine_c)))
    if not np.isfinite(g.max_loss) or g.max_loss < min_loss:
        worst = max(g.loss, key=g.loss.get)
        against = ", ".join(g.neighbours) or "its own shape"
        lost = (
            f"its largest height loss is {g.loss[worst]:.0%} ({worst})"
            if g.loss[worst] >= 0.005
            else "it has lost no height"
        )
        reason = (
            f"{level} shows no collapse: {lost} against {against}, below the "
            f"{min_loss:.0%} height loss needed to outline a defect"
        )
        return Fracture.from_full_mask(np.zeros(spine.shape, bool), FractureInfo(level, h, g, 0.0, reason, ""))
    share = 0.5 if g.morphology == "biconcave" else superior_share(h, g, value, spine.labels_c, spine.affine_c)
    env = build_envelope(spine.bodies[level], h, g, share)
    canon = envelope_mask(env, spine.bodies[level], value, spine.labels_c, spine.affine_c, clearance_mm)
    mask = np.ascontiguousarray(spine.undo(canon))
    n = int(mask.sum())
    reason = (
        ""
        if n
        else (
            f"{level}: the restored envelope lies entirely within {clearance_mm:g} mm "
            f"of a neighbouring vertebra, nothing is left to fill"
        )
    )
    info = FractureInfo(level, h, g, n * vox, reason, env.collapsed_endplate if n else "")
    return Fracture.from_full_mask(mask, info)


def find_compression_fractures(
    segmentation, volume=None, *, clearance_mm: float = CLEARANCE_MM, bodies: dict | None = None
) -> list:
    """Vertebral compression fractures graded by Genant's semi-quantitative method.

    Every vertebral body except the sacrum is measured (anterior, middle and
    posterior heights at 15/50/85 % of its depth, in its own frame) and compared
    with itself and its unfractured neighbours (see :mod:`pipeline.defect.genant`;
    Genant et al., J Bone Miner Res 1993;8:1137-48). Levels with a height loss of
    20 % or more (grade 1-3) are returned with their defect region.

    Parameters
    ----------
    segmentation : VertebraSegmentation
        Labelled vertebrae and their affine (index -> LPS mm), any orientation.
    volume : CTVolume, optional
        The CT the segmentation was made from; sharpens the endplates (see
        :func:`~pipeline.defect.heights.measure_vertebral_bodies`). Recommended.
    clearance_mm : float
        Room kept between the defect and any neighbouring vertebra, mm.
    bodies : dict, optional
        Level -> :class:`~pipeline.defect.body.VertebralBody` already isolated on
        this segmentation (:func:`~pipeline.defect.heights.spine_bodies`).

    Returns
    -------
    list of Fracture
        Superior first, each with its defect; empty when no level is fractured.
    """
    spine = _analyse(segmentation, volume, bodies=bodies)
    values = {name: int(v) for v, name in segmentation.levels.items()}
    out = []
    for name, g in spine.gradings.items():
        if g.grade == 0:
            continue
        out.append(_defect(spine, name, values[name], clearance_mm, MIN_LOSS))
    return out


def defect_region(
    segmentation, level: str, volume=None, *, clearance_mm: float = CLEARANCE_MM, min_loss: float = MIN_LOSS
) -> Fracture:
    """The defect of a named level: between its collapsed body and the restored one.

    Works for any level the user names, fractured by Genant's grading or not (a
    loss of ``min_loss`` or more is outlined).

    Parameters
    ----------
    segmentation : VertebraSegmentation
    level : str
        Level name as in ``segmentation.levels`` (e.g. "L1").
    volume : CTVolume, optional
        The CT the segmentation was made from (recommended, see
        :func:`find_compression_fractures`).
    clearance_mm : float
        Room kept between the defect and any neighbouring vertebra, mm.
    min_loss : float
        Smallest height-loss fraction outlined; below it the mask is empty and
        ``reason`` says why.

    Returns
    -------
    Fracture
        Its defect mask (cropped; empty below ``min_loss``) and its info: grading,
        ``volume_mm3``, ``reason`` (why empty) and ``collapsed_endplate``.

    Raises
    ------
    InputError
        ``level`` is not in the segmentation, or is the sacrum; ``volume`` is not on
        the segmentation's grid.
    DesignError
        The level's body cannot be measured (cut by the scan's edge, too deformed).
    """
    value = level_value(segmentation, level)
    if is_sacrum(level, value):
        raise InputError(None, f"{level} is the sacrum: only vertebral bodies above it are graded and filled")
    if level in (getattr(segmentation, "cut_by_scan_edge", ()) or ()):
        raise DesignError(f"{level} is cut by the scan's first or last slice: its body cannot be measured")
    spine = _analyse(segmentation, volume, around=level)
    if level not in spine.gradings:
        raise DesignError(f"{level}: its vertebral body could not be isolated and measured")
    return _defect(spine, level, value, clearance_mm, min_loss)


def fractures_to_fill(segmentation, volume=None, level: str | None = None, fractures=None) -> list:
    """The defects a scaffold should fill.

    With ``level``, that level's defect whether graded a fracture or not (its mask
    may be empty: ``info.reason`` says why); otherwise every graded fracture with
    something left to fill. ``fractures`` (from :func:`find_compression_fractures`)
    spares finding them again.

    Returns
    -------
    list of Fracture
        Superior first; empty when there is nothing to fill.
    """
    if level is not None:
        return [defect_region(segmentation, level, volume)]
    if fractures is None:
        fractures = find_compression_fractures(segmentation, volume)
    return [f for f in fractures if f.any()]
