"""Anterior, middle and posterior heights of each vertebral body.

Heights are measured the way vertebral morphometry defines them (Genant et al.,
J Bone Miner Res 1993;8:1137-48; TotalSegmentator's spine report measures the same
three heights on CT): between the superior and inferior endplates, along the
body's own superior axis, at 15 %, 50 % and 85 % of the body's antero-posterior
depth on its mid-sagittal line (depth measured at mid-height from the anterior
cortex to the posterior wall). Each height is the median of three parallel lines
2 mm apart (left, centre, right) so a single vascular channel or noisy voxel does
not decide it. Line ends are the label's surface (0.5 level of the lightly smoothed
mask, sub-voxel); given the CT, an end the label carried into the disc is pulled
back to the endplate's edge in the CT profile (:mod:`.cortex`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..errors import DesignError, InputError
from ..volume import reorient
from .body import CANONICAL, VertebralBody, canonical_labels, find_body, is_sacrum, line_run
from .cortex import refine_end

#: Where the three heights are taken, as fractions of the body depth from the front.
DEPTHS = {"anterior": 0.15, "middle": 0.50, "posterior": 0.85}
#: Lateral offsets (mm) of the parallel measuring lines.
LINE_OFFSETS_MM = (-2.0, 0.0, 2.0)


def _r(v, nd=3):
    return [round(float(x), nd) for x in np.ravel(v)]


@dataclass(frozen=True)
class BodyHeights:
    """Heights of one vertebral body (Genant 1993 morphometry points).

    Attributes
    ----------
    level : str
    anterior_mm, middle_mm, posterior_mm : float
        Body heights between the endplates at 15, 50 and 85 % of the depth, mm.
    depth_mm : float
        Antero-posterior depth of the body on its mid-sagittal line, mm.
    centre_lps : ndarray (3,)
        Centroid of the body, LPS mm.
    axis_lps : ndarray (3,)
        The body's superior axis (unit, LPS), along which heights are measured.
    posterior_lps : ndarray (3,)
        The body's posterior axis (unit, LPS), along which the depth is measured.
    superior_points_lps, inferior_points_lps : dict
        ``"anterior"``/``"middle"``/``"posterior"`` -> LPS mm of the endplate point
        each height ends at.
    depth_y_mm : dict
        Local y (mm, from the centre along ``posterior_lps``) of each measuring line.
    """

    level: str
    anterior_mm: float
    middle_mm: float
    posterior_mm: float
    depth_mm: float
    centre_lps: np.ndarray
    axis_lps: np.ndarray
    posterior_lps: np.ndarray
    superior_points_lps: dict = field(default_factory=dict)
    inferior_points_lps: dict = field(default_factory=dict)
    depth_y_mm: dict = field(default_factory=dict)

    @property
    def heights(self) -> dict:
        """``{"anterior": mm, "middle": mm, "posterior": mm}``."""
        return {"anterior": self.anterior_mm, "middle": self.middle_mm, "posterior": self.posterior_mm}

    @property
    def superior_endplate_centre_lps(self) -> np.ndarray:
        return self.superior_points_lps["middle"]

    @property
    def inferior_endplate_centre_lps(self) -> np.ndarray:
        return self.inferior_points_lps["middle"]

    def as_dict(self) -> dict:
        """JSON-ready summary (mm, LPS)."""
        return {
            "level": self.level,
            "heights_mm": {k: round(v, 2) for k, v in self.heights.items()},
            "depth_mm": round(self.depth_mm, 2),
            "centre_lps": _r(self.centre_lps),
            "axis_lps": _r(self.axis_lps, 5),
            "superior_endplate_centre_lps": _r(self.superior_endplate_centre_lps),
            "inferior_endplate_centre_lps": _r(self.inferior_endplate_centre_lps),
        }


def ct_crop(hu_c: np.ndarray, body: VertebralBody) -> np.ndarray:
    """The canonical CT cut to ``body``'s crop (float32 HU)."""
    sl = tuple(slice(a, a + n) for a, n in zip(body.start, body.mask.shape))
    return np.asarray(hu_c[sl], dtype=np.float32)


def measure_body(body: VertebralBody, hu: np.ndarray | None = None) -> BodyHeights:
    """Heights of one isolated body (see the module docstring).

    Parameters
    ----------
    body : VertebralBody
    hu : ndarray, optional
        The CT (HU) on the body's crop grid (:func:`ct_crop`). When given, each
        height's ends are moved to the endplate edge the CT profile shows
        (:mod:`.cortex`); otherwise the label's ends are used.

    Returns
    -------
    BodyHeights

    Raises
    ------
    DesignError
        If a measuring line misses the body (a body too deformed to measure).
    """
    f = body.frame
    up = f.axes[:, 2]
    heights, sup, inf, ys = {}, {}, {}, {}
    for name, frac in DEPTHS.items():
        y = body.anterior_y + frac * body.depth_mm
        ys[name] = y
        runs = []
        for dx in LINE_OFFSETS_MM:
            origin = f.to_lps([dx, y, 0.0])
            run = line_run(body.field, body.affine, origin, up, 60.0)
            if run is not None and hu is not None:
                run = (
                    refine_end(hu, body.affine, origin, up, run[0], -1.0),
                    refine_end(hu, body.affine, origin, up, run[1], +1.0),
                )
            if run is not None:
                runs.append(run)
        if not runs:
            raise DesignError(f"{body.level}: the {name} height line misses the vertebral body")
        lo = float(np.median([r[0] for r in runs]))
        hi = float(np.median([r[1] for r in runs]))
        heights[name] = float(np.median([r[1] - r[0] for r in runs]))
        sup[name] = f.to_lps([0.0, y, hi])
        inf[name] = f.to_lps([0.0, y, lo])
    return BodyHeights(
        level=body.level,
        anterior_mm=heights["anterior"],
        middle_mm=heights["middle"],
        posterior_mm=heights["posterior"],
        depth_mm=float(body.depth_mm),
        centre_lps=f.origin,
        axis_lps=up,
        posterior_lps=f.axes[:, 1],
        superior_points_lps=sup,
        inferior_points_lps=inf,
        depth_y_mm=ys,
    )


def spine_bodies(segmentation, labels_c=None, affine_c=None, only=None) -> dict:
    """Isolated bodies of every measurable level, superior first.

    The sacrum and levels cut by the scan's first or last slice (their bodies are
    incomplete) are left out, as are labels too small or too deformed to hold a
    body; ``only`` (a set of names) restricts the levels looked at.

    Returns
    -------
    dict
        Level name -> :class:`~pipeline.defect.body.VertebralBody`.
    """
    if labels_c is None:
        labels_c, affine_c, _ = canonical_labels(segmentation)
    boxes = ndimage.find_objects(labels_c)
    cut = set(getattr(segmentation, "cut_by_scan_edge", ()) or ())
    out = {}
    for value, name in segmentation.levels.items():
        value = int(value)
        if is_sacrum(name, value) or name in cut or value > len(boxes) or boxes[value - 1] is None:
            continue
        if only is not None and name not in only:
            continue
        try:
            out[name] = find_body(labels_c, affine_c, value, name, boxes[value - 1])
        except DesignError:
            continue
    return out


def canonical_ct(segmentation, volume):
    """The CT reoriented like the labels, checked to share the segmentation's grid."""
    if volume is None:
        return None
    same = tuple(volume.hu.shape) == tuple(np.shape(segmentation.labels)) and np.allclose(
        volume.affine, segmentation.affine, atol=1e-4
    )
    if not same:
        raise InputError(None, "the CT volume and the segmentation are not on the same grid")
    return reorient(volume.hu, volume.affine, CANONICAL)[0]


def measure_spine(segmentation, volume=None, labels_c=None, affine_c=None, only=None, bodies=None):
    """Bodies and heights of the measurable levels: ``(bodies, heights)`` dicts.

    ``bodies`` (from :func:`spine_bodies` on the same segmentation) spares isolating
    them again.
    """
    if labels_c is None:
        labels_c, affine_c, _ = canonical_labels(segmentation)
    hu_c = canonical_ct(segmentation, volume)
    if bodies is None:
        bodies = spine_bodies(segmentation, labels_c, affine_c, only)
    else:
        bodies = {n: b for n, b in bodies.items() if only is None or n in only}
    heights = {}
    for name, body in bodies.items():
        try:
            heights[name] = measure_body(body, None if hu_c is None else ct_crop(hu_c, body))
        except DesignError:
            continue
    return bodies, heights


def measure_vertebral_bodies(segmentation, volume=None) -> dict:
    """Anterior, middle and posterior body heights of every vertebra.

    Heights follow Genant's morphometry points (Genant et al., J Bone Miner Res
    1993;8:1137-48): 15, 50 and 85 % of the body's antero-posterior depth, measured
    between the endplates along the body's own superior axis (lordosis-aware).

    Parameters
    ----------
    segmentation : VertebraSegmentation
        Labels (any storage orientation) with their affine (index -> LPS mm).
    volume : CTVolume, optional
        The CT the segmentation was made from. When given, endplates are placed at
        the bone edge of the CT profile (:mod:`.cortex`), which corrects labels that
        fill an endplate's concavity; recommended.

    Returns
    -------
    dict
        Level name -> :class:`BodyHeights` (mm), superior first. The sacrum and levels
        cut by the scan's edge are not measured.

    Raises
    ------
    InputError
        ``volume`` is not on the segmentation's grid.
    """
    return measure_spine(segmentation, volume)[1]
