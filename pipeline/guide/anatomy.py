"""Landmarks of one vertebra from its label mask: body frame, body walls, both pedicles.

How the frame is found (all in LPS mm, so the scan's array orientation does not
matter): first from the body's principal axes and the direction to the posterior
elements (:func:`pipeline.geometry.body.body_frame`, shared with fracture
grading). Once both pedicles are found (:mod:`.pedicle`) the frame is refined: posterior =
normal of the body's posterior wall, left = from the right to the left isthmus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DesignError
from ..geometry.body import body_frame, lps_of
from ..volume import crop_affine, index_to_lps, voxel_sizes
from .frames import SIDES, BoneField, LocalGrid, VertebraFrame, direction_angles, ray_exit, resample_mask
from .pedicle import Pedicle, find_pedicle


@dataclass(frozen=True)
class VertebraAnatomy:
    """One vertebra, resampled into its own frame, with its landmarks.

    Attributes
    ----------
    level : str
    frame : VertebraFrame
    field : BoneField
        Signed distance of this vertebra (mm, negative inside) on a 0.5 mm grid.
    body_posterior_y : float
        Local y (mm) of the posterior wall of the body.
    body_anterior_y : float
        Local y (mm) of the anterior cortex of the body at the midline.
    pedicles : dict
        ``"left"``/``"right"`` -> :class:`Pedicle`.
    warnings : tuple of str
    """

    level: str
    frame: VertebraFrame
    field: BoneField
    body_posterior_y: float
    body_anterior_y: float
    pedicles: dict
    warnings: tuple = ()
    source: dict = field(default_factory=dict)

    def angles(self, direction, side: str) -> tuple[float, float]:
        """Medial and cranial angle (deg) of an LPS direction pointing into the body."""
        return direction_angles(self.frame, direction, side)


def _crop(mask: np.ndarray, pad: int = 2):
    nz = [np.nonzero(mask.any(axis=tuple(b for b in range(3) if b != a)))[0] for a in range(3)]
    start = [max(int(v[0]) - pad, 0) for v in nz]
    stop = [min(int(v[-1]) + pad + 1, n) for v, n in zip(nz, mask.shape)]
    return tuple(slice(a, b) for a, b in zip(start, stop)), np.array(start)


def estimate_frame(mask: np.ndarray, affine: np.ndarray) -> tuple[VertebraFrame, np.ndarray]:
    """The vertebra's body-centred frame from its scan-grid mask.

    Returns
    -------
    frame : VertebraFrame
    body_lps : ndarray (n, 3)
        LPS mm of the voxels kept as vertebral body.
    """
    sl, start = _crop(mask)
    crop_aff = crop_affine(affine, tuple(int(v) for v in start))
    est = body_frame(np.ascontiguousarray(mask[sl]), crop_aff)
    if not est.posterior_elements:
        raise DesignError("the vertebra has no posterior elements in its mask: cannot find its pedicles")
    return est.frame, lps_of(est.body, crop_aff)


def analyse_vertebra(
    mask: np.ndarray, affine: np.ndarray, level: str = "", *, h: float = 0.5, pad_mm: float = 8.0
) -> VertebraAnatomy:
    """Frame, body walls and both pedicles of one vertebra.

    Parameters
    ----------
    mask : ndarray of bool
        The vertebra on the scan grid.
    affine : ndarray (4, 4)
        Voxel index to LPS mm.
    level : str
        Its name, carried into the result.
    h : float
        Spacing of the resampled grid in the vertebra's frame, mm.
    pad_mm : float
        Margin of that grid around the vertebra, mm.

    Returns
    -------
    VertebraAnatomy

    Raises
    ------
    DesignError
        When the mask has no recognisable body or pedicles.
    """
    mask = np.asarray(mask, bool)
    if mask.sum() < 100:
        raise DesignError(f"vertebra {level or '?'} is too small or empty in the segmentation")
    frame, body_lps = estimate_frame(mask, affine)
    idx = np.argwhere(mask)
    local = frame.to_local(index_to_lps(affine, idx))
    sp = max(voxel_sizes(affine))
    grid = LocalGrid.covering(frame, local.min(0) - pad_mm - sp, local.max(0) + pad_mm + sp, h)
    fine = resample_mask(mask, affine, grid)
    field = BoneField.from_mask(grid, fine)
    body_local = frame.to_local(body_lps)
    mid = np.abs(body_local[:, 0]) < 6.0
    y_wall = float(np.percentile(body_local[mid, 1], 98)) if mid.sum() > 10 else float(body_local[:, 1].max())
    y_front = float(np.percentile(body_local[mid, 1], 2)) if mid.sum() > 10 else float(body_local[:, 1].min())
    pedicles, warnings = {}, []
    for side in SIDES:
        try:
            pedicles[side] = find_pedicle(field, frame, fine, side, y_wall)
        except DesignError as exc:
            warnings.append(f"{level}: {exc}")
    if len(pedicles) == 2:
        frame = refine_frame(field, frame, pedicles)
        pedicles = {s: _reangle(p, frame) for s, p in pedicles.items()}
    else:
        warnings.append(f"{level}: frame from the body's principal axes only (a pedicle is missing)")
    y_wall = _wall(field, frame, +1.0)
    y_front = _wall(field, frame, -1.0)
    return VertebraAnatomy(
        level, frame, field, y_wall, y_front, pedicles, tuple(warnings), {"grid_mm": h, "voxels": int(mask.sum())}
    )


def _wall_points(field: BoneField, frame: VertebraFrame, sign: float) -> np.ndarray:
    """Local points where rays from the body's mid-sagittal core leave it (posterior
    wall for ``sign=+1``, anterior cortex for ``-1``)."""
    out = []
    for x in np.arange(-5.0, 5.01, 1.0):
        for z in np.arange(-5.0, 5.01, 1.0):
            o = frame.to_lps((x, 0.0, z))
            t = ray_exit(field, o, sign * frame.axes[:, 1], max_mm=40.0, step=0.25)
            if t is not None:
                out.append((x, sign * t, z))
    return np.array(out)


def _wall(field: BoneField, frame: VertebraFrame, sign: float) -> float:
    pts = _wall_points(field, frame, sign)
    return float(np.median(pts[:, 1])) if len(pts) else float("nan")


def refine_frame(field: BoneField, frame: VertebraFrame, pedicles: dict) -> VertebraFrame:
    """Posterior axis = normal of the body's posterior wall; left axis = from the right
    to the left isthmus. Neither depends on the endplates, so a wedge fracture or an
    osteophyte does not tilt the frame."""
    pts = _wall_points(field, frame, +1.0)
    R = frame.axes
    if len(pts) >= 20:
        A = np.column_stack([pts[:, 0], pts[:, 2], np.ones(len(pts))])
        (a, b, _), *_ = np.linalg.lstsq(A, pts[:, 1], rcond=None)
        y = frame.vector_to_lps(np.array([-a, 1.0, -b]))
        y /= np.linalg.norm(y)
    else:
        y = R[:, 1]
    x = pedicles["left"].centre - pedicles["right"].centre
    x = x - (x @ y) * y
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    return VertebraFrame(frame.origin, np.column_stack([x, y, z]))


def _reangle(p: Pedicle, frame: VertebraFrame) -> Pedicle:
    medial, cranial = direction_angles(frame, p.axis, p.side)
    return Pedicle(p.side, p.centre, p.axis, p.width_mm, p.height_mm, p.area_mm2, medial, cranial)


def analyse_segmentation(segmentation, levels=None, **options) -> dict:
    """:func:`analyse_vertebra` for each named level of a ``VertebraSegmentation``.

    ``levels`` defaults to every level; returns ``{level: VertebraAnatomy}`` in the
    segmentation's order (superior first).
    """
    names = list(segmentation.levels.values())
    wanted = names if levels is None else [n for n in names if n in set(levels)]
    missing = [] if levels is None else [n for n in levels if n not in names]
    if missing:
        raise DesignError(f"levels {', '.join(missing)} are not in the segmentation (found {', '.join(names)})")
    return {n: analyse_vertebra(segmentation.mask(n), segmentation.affine, n, **options) for n in wanted}


def level_above(segmentation, level: str) -> str | None:
    """Name of the vertebra cranial to ``level`` (the segmentation lists superior first)."""
    names = list(segmentation.levels.values())
    i = names.index(level)
    return names[i - 1] if i > 0 else None


def default_guide_levels(segmentation, fractured) -> tuple[str, ...]:
    """The level to guide when the user names none.

    Below a fracture the first intact lumbar or thoracic vertebra takes the screws of
    a short stabilisation; without a fracture, the middle lumbar level. Returns an
    empty tuple when no named lumbar or thoracic level is present.
    """
    names = [n for n in segmentation.levels.values() if n[0] in "TL"]
    if not names:
        return ()
    for level in fractured:
        if level in names and names.index(level) + 1 < len(names):
            return (names[names.index(level) + 1],)
    lumbar = [n for n in names if n.startswith("L")] or names
    return (lumbar[len(lumbar) // 2],)
