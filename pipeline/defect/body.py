"""The vertebral body inside a vertebra's label, and the body's own frame.

A vertebra label holds the body and the posterior elements (pedicles, laminae,
processes). Heights and defects concern the body only, measured in the body's own
frame, because the lordotic spine tilts each body differently (up to ~35 degrees
at L5-S1): the scan's axial plane is not the endplate plane.

How the body is isolated (in LPS mm, so the storage orientation does not matter):

1. *Crude body* and first frame: :func:`pipeline.geometry.body.body_frame` (the
   thickest part of the vertebra; its principal axis nearest the patient's
   head-foot axis and the direction to the posterior elements). A body-only label
   falls back on the patient's posterior direction.
2. *Endplate frame*: planes fitted to the superior and inferior endplates (central
   part only, away from rims and osteophytes); the bisector of their normals is the
   body's superior axis, the convention of the morphometry literature where the
   body height is measured between the two endplates.
3. *Posterior wall*: in the sagittal plane the superior axis is then aligned with
   the posterior wall, which a wedge or biconcave fracture leaves intact while it
   tilts the collapsed endplate (and the bisector by half as much: 9 degrees for a
   30 % anterior wedge). In a normal body the two agree within a few degrees,
   which changes a 25 mm height by well under 0.1 mm. The coronal tilt stays the
   endplates'.
4. *Posterior wall cut*: along the body's mid-sagittal antero-posterior line the
   label ends at the posterior wall (the spinal canal follows); everything of the
   label behind that wall is posterior elements.

Arrays here are crops of the segmentation reoriented to ``SPL`` (exact permutation,
see :func:`pipeline.volume.reorient`); every position handed out is in LPS mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, stats

from ..errors import DesignError, InputError
from ..frame import VertebraFrame
from ..geometry.body import body_frame, component_at, lps_of, orthonormal_frame
from ..volume import crop_affine, reorient, voxel_sizes

#: Canonical orientation the stage works in (axis 0 head, 1 posterior, 2 left).
CANONICAL = "SPL"
#: Names and label value of the sacrum, which has no body heights to grade.
SACRUM_NAMES = ("S1", "sacrum")
SACRUM_VALUE = 26
#: How far (mm) behind the mid-sagittal posterior wall the body cut is placed; the
#: wall is concave in real vertebrae, so the posterolateral corners lie a little
#: behind the midline wall.
WALL_MARGIN_MM = 1.0
#: Gaussian smoothing (voxels) of a mask before it is sampled along lines; the 0.5
#: level of the smoothed mask is the mask's boundary to well under a voxel.
SMOOTH_VOXELS = 0.6
#: Step (mm) of line sampling.
LINE_STEP_MM = 0.2


@dataclass(frozen=True)
class VertebralBody:
    """One vertebral body isolated from its vertebra label.

    Attributes
    ----------
    level : str
    value : int
        Label value of the vertebra.
    frame : VertebraFrame
    mask : ndarray of bool
        The body on ``affine``'s grid (a crop of the canonical segmentation grid).
    affine : ndarray (4, 4)
        Index -> LPS mm of the crop.
    start : tuple of int
        Where the crop starts on the canonical grid.
    field : ndarray of float32
        ``mask`` lightly smoothed, sampled trilinearly along lines (0.5 = surface).
    anterior_y, posterior_y : float
        Local y (mm) of the anterior cortex and of the posterior wall on the
        mid-sagittal line through the centre.
    """

    level: str
    value: int
    frame: VertebraFrame
    mask: np.ndarray
    affine: np.ndarray
    start: tuple
    field: np.ndarray
    anterior_y: float
    posterior_y: float

    @property
    def depth_mm(self) -> float:
        """Antero-posterior depth of the body on its mid-sagittal line, mm."""
        return self.posterior_y - self.anterior_y

    def sample(self, points) -> np.ndarray:
        """Smoothed body mask at LPS points ``(..., 3)`` (0 outside the crop)."""
        return sample_field(self.field, self.affine, points)


def is_sacrum(name: str, value: int) -> bool:
    return name in SACRUM_NAMES or value == SACRUM_VALUE


def canonical_labels(segmentation):
    """The segmentation's labels reoriented to ``SPL``: ``(labels, affine, undo)``."""
    return reorient(np.asarray(segmentation.labels), segmentation.affine, CANONICAL)


def level_value(segmentation, level: str) -> int:
    """Label value of ``level``; :class:`InputError` naming the levels found if absent."""
    for value, name in segmentation.levels.items():
        if name == level:
            return int(value)
    found = ", ".join(str(n) for n in segmentation.levels.values()) or "none"
    raise InputError(None, f"no vertebra {level!r} in the segmentation (found: {found})")


def sample_field(field: np.ndarray, affine: np.ndarray, points) -> np.ndarray:
    """Trilinear samples of ``field`` at LPS points ``(..., 3)``; 0 outside."""
    p = np.asarray(points, float)
    inv = np.linalg.inv(affine)
    idx = p.reshape(-1, 3) @ inv[:3, :3].T + inv[:3, 3]
    v = ndimage.map_coordinates(field, idx.T, order=1, mode="constant", cval=0.0)
    return v.reshape(p.shape[:-1])


def smooth_mask(mask: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(mask.astype(np.float32), SMOOTH_VOXELS, mode="constant")


def crossing_run(values: np.ndarray, ts: np.ndarray, t0: float = 0.0):
    """Ends ``(t_lo, t_hi)`` of the inside run (values >= 0.5) containing or nearest ``t0``.

    Ends are interpolated linearly to the 0.5 level; ``None`` when nothing is inside.
    """
    inside = values >= 0.5
    if not inside.any():
        return None
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inside.astype(np.int8), [0]))))
    starts, stops = edges[0::2], edges[1::2] - 1
    gap = np.maximum(ts[starts] - t0, 0) + np.maximum(t0 - ts[stops], 0)
    k = int(np.argmin(gap))
    s, e = int(starts[k]), int(stops[k])

    def cross(i_out, i_in):
        v0, v1 = values[i_out], values[i_in]
        return ts[i_out] + (0.5 - v0) / (v1 - v0) * (ts[i_in] - ts[i_out])

    lo = cross(s - 1, s) if s > 0 else ts[s]
    hi = cross(e + 1, e) if e + 1 < len(ts) else ts[e]
    return float(lo), float(hi)


def line_run(field, affine, origin, direction, reach_mm: float, t0: float = 0.0):
    """Inside run of ``field`` along ``origin + t * direction``, ``|t| <= reach_mm``."""
    ts = np.arange(-reach_mm, reach_mm + 1e-9, LINE_STEP_MM)
    pts = np.asarray(origin, float) + ts[:, None] * np.asarray(direction, float)
    return crossing_run(sample_field(field, affine, pts), ts, t0)


def _fit_plane(xy: np.ndarray, z: np.ndarray):
    """Least-squares ``z = a + b x + c y`` with one pass of outlier rejection."""
    keep = np.ones(len(z), bool)
    coef = np.zeros(3)
    for _ in range(2):
        A = np.column_stack([np.ones(keep.sum()), xy[keep]])
        coef, *_ = np.linalg.lstsq(A, z[keep], rcond=None)
        res = np.abs(z - np.column_stack([np.ones(len(z)), xy]) @ coef)
        keep = res <= max(1.0, 3.0 * float(np.median(res)))
        if keep.sum() < 6:
            break
    return coef


def _endplate_axis(field, affine, frame: VertebraFrame, extent) -> np.ndarray | None:
    """Bisector (LPS) of the two endplate normals, from their central parts."""
    (x0, x1), (y0, y1), (z0, z1) = extent
    reach = 0.5 * (z1 - z0) + 15.0
    xs = np.linspace(x0 + 0.3 * (x1 - x0), x1 - 0.3 * (x1 - x0), 5)
    ys = np.linspace(y0 + 0.2 * (y1 - y0), y1 - 0.2 * (y1 - y0), 7)
    xy, top, bot = [], [], []
    zc = 0.5 * (z0 + z1)
    for x in xs:
        for y in ys:
            run = line_run(field, affine, frame.to_lps([x, y, zc]), frame.axes[:, 2], reach)
            if run is None or run[0] > 0 or run[1] < 0:
                continue
            xy.append((x, y))
            bot.append(zc + run[0])
            top.append(zc + run[1])
    if len(xy) < 12:
        return None
    xy = np.asarray(xy)
    normals = []
    for zs in (top, bot):
        _, b, c = _fit_plane(xy, np.asarray(zs))
        n = np.array([-b, -c, 1.0])
        normals.append(n / np.linalg.norm(n))
    local = normals[0] + normals[1]
    return frame.axes @ (local / np.linalg.norm(local))


def _extent(mask: np.ndarray, affine: np.ndarray, frame: VertebraFrame):
    q = frame.to_local(lps_of(mask, affine))
    lo, hi = np.percentile(q, 2, axis=0), np.percentile(q, 98, axis=0)
    return tuple((float(a), float(b)) for a, b in zip(lo, hi))


def _wall(field, affine, frame: VertebraFrame, sign: float, reach: float) -> float | None:
    """Median local y (mm) where the mid-sagittal antero-posterior rays leave the bone."""
    ys = []
    for dx in (-3.0, 0.0, 3.0):
        for dz in (-3.0, 0.0, 3.0):
            run = line_run(field, affine, frame.to_lps([dx, 0.0, dz]), frame.axes[:, 1], reach)
            if run is not None and run[0] <= 0 <= run[1]:
                ys.append(run[1] if sign > 0 else run[0])
    return float(np.median(ys)) if ys else None


def _wall_frame(field, affine, frame: VertebraFrame, extent, reach: float) -> VertebraFrame:
    """Frame whose superior axis follows the posterior wall in the sagittal plane.

    The posterior wall stays intact in wedge and biconcave fractures, while a
    collapsed endplate tilts the endplate bisector by half the collapse angle, and
    the body's side walls (hence its axial outline) are parallel to the posterior
    wall. Exits are sampled off the midline (the basivertebral foramen notches the
    wall there) over the central half of the height, and fitted robustly
    (Theil-Sen). The coronal tilt stays the endplates'.
    """
    half = 0.25 * (extent[2][1] - extent[2][0])
    zs, ys = [], []
    for dz in np.linspace(-half, half, 7):
        for dx in (-6.0, -4.0, 4.0, 6.0):
            run = line_run(field, affine, frame.to_lps([dx, 0.0, dz]), frame.axes[:, 1], reach)
            if run is not None and run[0] <= 0 <= run[1]:
                zs.append(dz)
                ys.append(run[1])
    zs, ys = np.asarray(zs), np.asarray(ys)
    # A ray that runs on into a pedicle (a narrow canal) exits far behind the wall.
    near = np.abs(ys - np.median(ys)) <= 3.0 if len(ys) else np.zeros(0, bool)
    zs, ys = zs[near], ys[near]
    if len(zs) < 10 or np.ptp(zs) <= 0:
        return frame
    slope = stats.theilslopes(ys, zs).slope
    axis = frame.axes @ np.array([0.0, slope, 1.0])
    return VertebraFrame(frame.origin, orthonormal_frame(frame.axes[:, 1], axis))


def find_body(
    labels_c: np.ndarray, affine_c: np.ndarray, value: int, level: str, box: tuple | None = None, pad: int = 6
) -> VertebralBody:
    """Isolate the body of the vertebra labelled ``value`` and find its frame.

    Parameters
    ----------
    labels_c : ndarray of int
        Labels in the canonical ``SPL`` orientation.
    affine_c : ndarray (4, 4)
        Index -> LPS mm of ``labels_c``.
    value : int
        Label value of the vertebra.
    level : str
        Its name (for messages).
    box : tuple of slice, optional
        Bounding box of the label (from :func:`scipy.ndimage.find_objects`).
    pad : int
        Voxels of margin kept around the label.

    Returns
    -------
    VertebralBody

    Raises
    ------
    DesignError
        When the label is empty or has no body-like part.
    """
    if box is None:
        found = np.argwhere(labels_c == value)
        if found.size == 0:
            raise DesignError(f"{level} has no voxels in the segmentation")
        box = tuple(slice(int(a), int(b) + 1) for a, b in zip(found.min(0), found.max(0)))
    start = tuple(max(s.start - pad, 0) for s in box)
    stop = tuple(min(s.stop + pad, n) for s, n in zip(box, labels_c.shape))
    sl = tuple(slice(a, b) for a, b in zip(start, stop))
    m = np.ascontiguousarray(labels_c[sl] == value)
    affine = crop_affine(affine_c, start)
    spacing = voxel_sizes(affine)
    volume = float(m.sum() * np.prod(spacing))
    if volume < 1000.0:
        raise DesignError(f"{level} is too small ({volume:.0f} mm³) to hold a vertebral body")
    first = body_frame(m, affine)
    crude, frame = first.body, first.frame
    vfield = smooth_mask(m)
    for _ in range(2):
        axis = _endplate_axis(vfield, affine, frame, _extent(crude, affine, frame))
        if axis is None:
            break
        frame = VertebraFrame(frame.origin, orthonormal_frame(frame.axes[:, 1], axis))
    reach = 80.0
    frame = _wall_frame(vfield, affine, frame, _extent(crude, affine, frame), reach)
    back = _wall(vfield, affine, frame, +1.0, reach)
    if back is None:
        raise DesignError(f"{level}: cannot find the posterior wall of the vertebral body")
    local = frame.to_local(lps_of(np.ones_like(m), affine)).reshape(m.shape + (3,))
    seed = tuple(int(v) for v in np.rint(np.linalg.solve(affine[:3, :3], frame.origin - affine[:3, 3])))
    seed = tuple(int(np.clip(s, 0, n - 1)) for s, n in zip(seed, m.shape))
    body = component_at(m & (local[..., 1] <= back + WALL_MARGIN_MM), seed)
    centre = lps_of(body, affine).mean(axis=0)
    frame = VertebraFrame(centre, frame.axes)
    field = smooth_mask(body)
    back = _wall(vfield, affine, frame, +1.0, reach)
    front = _wall(field, affine, frame, -1.0, reach)
    if back is None or front is None:
        raise DesignError(f"{level}: the vertebral body's mid-sagittal line does not cross it")
    return VertebralBody(
        level=level,
        value=int(value),
        frame=frame,
        mask=body,
        affine=affine,
        start=start,
        field=field,
        anterior_y=front,
        posterior_y=back,
    )
