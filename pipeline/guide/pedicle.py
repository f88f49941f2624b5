"""The pedicle isthmus of one side of a vertebra, from its mask resampled in the vertebra's frame.

Coronal slices of the vertebra (in its own frame) are followed from the body's
posterior wall backwards on each side; the pedicle is the narrowest part between
the body and the junction of lamina, transverse and articular processes. A line
through the centroids of the slices near the minimum gives the pedicle axis;
cross-sections perpendicular to that axis then give the isthmus centre, width
(transverse) and height, as Zindrick et al. (Spine 1987) measured them on CT:
outer cortex to outer cortex.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, optimize

from ..errors import DesignError
from .frames import SIDES, BoneField, LocalGrid, VertebraFrame, direction_angles, direction_from_angles

#: Smallest distance (mm) of the isthmus centre behind the body's posterior wall.
MIN_BEHIND_WALL_MM = 1.0


@dataclass(frozen=True)
class Pedicle:
    """A pedicle's isthmus (LPS mm, degrees).

    Attributes
    ----------
    side : str
        "left" or "right" (patient's).
    centre : ndarray (3,)
        Centroid of the narrowest cross-section, LPS mm.
    axis : ndarray (3,)
        Unit vector along the pedicle, pointing anteriorly into the body (LPS).
    width_mm, height_mm : float
        Outer transverse width and height of the isthmus, mm.
    area_mm2 : float
        Area of the isthmus cross-section, mm².
    medial_angle_deg, cranial_angle_deg : float
        Axis angles in the vertebra's frame: medial convergence (towards the
        midline anteriorly, +) and sagittal tilt (+ when the anterior end is cranial).
    """

    side: str
    centre: np.ndarray
    axis: np.ndarray
    width_mm: float
    height_mm: float
    area_mm2: float
    medial_angle_deg: float
    cranial_angle_deg: float


def _track_pedicle(mask, grid: LocalGrid, side: str, y_wall: float):
    """Coronal slices (constant local y) of one side, from the body wall backwards."""
    xs, ys, zs = grid.axes()
    s = SIDES[side]
    half = (s * xs) > 0.0
    rows = []
    prev = None
    for j in np.nonzero((ys >= y_wall - 3.0) & (ys <= y_wall + 24.0))[0]:
        sl = mask[:, j, :] & half[:, None]
        lab, n = ndimage.label(sl)
        if n == 0:
            break
        if prev is None:
            counts = np.bincount(lab.ravel(), minlength=n + 1)
            counts[0] = 0
        else:
            counts = np.bincount(lab[prev].ravel(), minlength=n + 1)
            counts[0] = 0
            if counts.max() == 0:
                break
        k = int(np.argmax(counts))
        comp = lab == k
        ii, kk = np.nonzero(comp)
        area = comp.sum() * grid.h**2
        rows.append((ys[j], area, xs[ii].mean(), zs[kk].mean()))
        prev = comp
    return np.array(rows)


def _cross_section(field: BoneField, centre, axis, up, half: float = 12.0, step: float = 0.25):
    """Bone cross-section of the plane through ``centre`` perpendicular to ``axis``.

    Returns (area mm², centroid LPS, width mm along ``u``, height mm along ``v``, u, v),
    for the connected piece nearest to ``centre``.
    """
    u = np.cross(up, axis)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    t = np.arange(-half, half + step / 2, step)
    U, V = np.meshgrid(t, t, indexing="ij")
    pts = centre + U[..., None] * u + V[..., None] * v
    inside = field(pts) < 0
    lab, n = ndimage.label(inside)
    if n == 0:
        return None
    d2 = U**2 + V**2
    cand = np.where(lab > 0, d2, np.inf)
    k = lab.ravel()[int(np.argmin(cand))]
    comp = lab == k
    area = comp.sum() * step**2
    uc, vc = U[comp].mean(), V[comp].mean()
    row = comp & (np.abs(V - vc) <= 0.5 * step + 1e-9)
    col = comp & (np.abs(U - uc) <= 0.5 * step + 1e-9)
    if not row.any():
        row = comp & (np.abs(V - vc) <= step)
    if not col.any():
        col = comp & (np.abs(U - uc) <= step)
    width = U[row].max() - U[row].min() + step
    height = V[col].max() - V[col].min() + step
    return area, centre + uc * u + vc * v, float(width), float(height), u, v


def find_pedicle(field: BoneField, frame: VertebraFrame, mask: np.ndarray, side: str, y_wall: float) -> Pedicle:
    """The isthmus of one pedicle (see the module notes)."""
    grid = field.grid
    rows = _track_pedicle(mask, grid, side, y_wall)
    if len(rows) < 4:
        raise DesignError(f"no {side} pedicle found behind the vertebral body")
    cand = rows[rows[:, 0] >= y_wall - 0.5]
    # The first valley behind the wall: once the section has grown to twice its
    # smallest size we are in the junction of lamina and processes, and anything
    # narrower further back (a lamina edge, an articular process) is not pedicle.
    j = 0
    for i in range(len(cand)):
        if cand[i, 1] < cand[j, 1]:
            j = i
        elif cand[i, 1] > 2.0 * cand[j, 1]:
            cand = cand[:i]
            break
    # The run of slices around the minimum that is still pedicle (not body or
    # junction): area within 30 % of the minimum, contiguous, at most 5 mm away.
    lo = hi = j
    while lo > 0 and cand[lo - 1, 1] <= 1.3 * cand[j, 1] and cand[j, 0] - cand[lo - 1, 0] <= 5.0:
        lo -= 1
    while hi < len(cand) - 1 and cand[hi + 1, 1] <= 1.3 * cand[j, 1] and cand[hi + 1, 0] - cand[j, 0] <= 5.0:
        hi += 1
    near = cand[lo : hi + 1]
    if len(near) < 3:
        near = cand[max(j - 1, 0) : j + 2]
    pts_local = np.column_stack([near[:, 2], near[:, 0], near[:, 3]])
    pts = frame.to_lps(pts_local)
    centre = pts.mean(axis=0)
    medial, cranial = direction_angles(frame, _fit_axis(pts, frame), side)
    up = frame.axes[:, 2]

    def area(angles, at):
        a = direction_from_angles(frame, side, *angles)
        cs = _cross_section(field, at, a, up)
        return np.inf if cs is None else cs[0]

    # A tube's cross-section is smallest perpendicular to its axis; a short
    # pedicle blends into body and junction, so the direction is found by
    # minimising the area at its middle, then the narrowest place along it.
    for _ in range(2):
        if field(centre) >= 0:
            raise DesignError(f"the {side} pedicle's centre is not in bone")
        res = optimize.minimize(
            area,
            (medial, cranial),
            args=(centre,),
            method="Nelder-Mead",
            options={
                "xatol": 0.2,
                "fatol": 0.05,
                "initial_simplex": [(medial, cranial), (medial + 8, cranial), (medial, cranial + 8)],
            },
        )
        medial, cranial = res.x
        axis = direction_from_angles(frame, side, medial, cranial)
        best = None
        for t in np.arange(-4.0, 4.01, 0.5):
            c = centre + t * axis
            # The pedicle lies behind the body's posterior wall: a wide, short pedicle
            # (L5) narrows a little further into its junction with the body.
            if field(c) >= 0 or frame.to_local(c)[1] < y_wall + MIN_BEHIND_WALL_MM:
                continue
            cs = _cross_section(field, c, axis, up)
            if cs is not None and (best is None or cs[0] < best[0]):
                best = cs
        if best is None:
            break
        moved = np.linalg.norm(best[1] - centre)
        centre = best[1]
        fitted = _centroid_axis(field, frame, centre, axis, up, best[0])
        if fitted @ axis > np.cos(np.radians(12.0)):
            axis = fitted
        medial, cranial = direction_angles(frame, axis, side)
        if moved < 0.25:
            break
    cs = _cross_section(field, centre, axis, up)
    area_mm2, centre, width, height = cs[0], cs[1], cs[2], cs[3]
    medial, cranial = direction_angles(frame, axis, side)
    return Pedicle(side, centre, axis, width, height, float(area_mm2), medial, cranial)


def _centroid_axis(field, frame, centre, axis, up, min_area, reach=5.0):
    """Line through the centroids of the sections of the uniform part of the pedicle.

    Any planar section of a straight tube has its centroid on the tube's axis, tilted
    or not, so the line through them is the axis; sections much larger than the
    narrowest already cut the body or the junction and are left out.
    """
    cents = []
    for _ in range(3):
        cents = []
        for t in np.arange(-reach, reach + 0.01, 0.5):
            c = centre + t * axis
            if field(c) >= 0:
                continue
            cs = _cross_section(field, c, axis, up)
            if cs is not None and cs[0] <= 1.1 * min_area:
                cents.append(cs[1])
        if len(cents) < 5:
            break
        new = _fit_axis(np.array(cents), frame)
        if np.degrees(np.arccos(np.clip(new @ axis, -1, 1))) < 0.2:
            axis = new
            break
        axis = new
    return axis


def _fit_axis(points: np.ndarray, frame: VertebraFrame) -> np.ndarray:
    c = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - c)
    a = vt[0]
    return a if a @ frame.axes[:, 1] < 0 else -a
