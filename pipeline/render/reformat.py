"""Sagittal and coronal reformats that follow the spine, in patient orientation.

Resampled in LPS millimetres on square display pixels, so the result is the same
whatever the stored orientation of the scan (axial head- or feet-first, sagittal or
coronal slices, anisotropic or oblique voxels). The cutting surface follows the
spine: it passes through every vertebra's centre, and between centres it is
interpolated level by level, so a scoliotic or off-centre spine still shows each
vertebra in both pictures.

Display conventions (radiological): head up; sagittal with the patient's front on
the viewer's left; coronal with the patient's right on the viewer's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..volume import index_to_lps, lps_to_index, voxel_sizes

#: Half-width of the pictures around the spine, mm (sagittal: back, front).
SAGITTAL_SPAN_MM = (110.0, 90.0)
CORONAL_HALF_WIDTH_MM = 120.0
#: Margin above the top and below the bottom vertebra, mm.
VERTICAL_MARGIN_MM = 30.0
#: Largest picture side, pixels (sets the pixel size for very long scans).
MAX_PIXELS = 1100
AIR_HU = -1024.0
#: Grid on which the deepest point of a vertebra is searched, mm.
CORE_GRID_MM = 1.5


@dataclass(frozen=True)
class Reformat:
    """One reformatted picture plane.

    Attributes
    ----------
    view : str
        ``"sagittal"`` or ``"coronal"``.
    hu : ndarray, shape (rows, cols), float32
        HU, linear interpolation; air outside the scan.
    labels : ndarray, shape (rows, cols), int16
        Vertebra label values, nearest neighbour.
    pixel_mm : float
        Side of a (square) display pixel, mm.
    top_z : float
        LPS z (superior) of row 0's centre; row ``r`` lies at ``top_z - r * pixel_mm``.
    left : float
        LPS coordinate of column 0's centre along the picture's horizontal axis: y
        (posterior) for sagittal, x (left) for coronal; it grows to the right.
    depth : ndarray, shape (rows,)
        Per row, the LPS coordinate of the cutting surface across the picture: x for
        sagittal, y for coronal.
    sides : tuple of str
        Patient direction at the viewer's left and right, e.g. ``("A", "P")``.
    """

    view: str
    hu: np.ndarray
    labels: np.ndarray
    pixel_mm: float
    top_z: float
    left: float
    depth: np.ndarray
    sides: tuple

    def lps(self, row: float, col: float) -> np.ndarray:
        """LPS mm of a (fractional) pixel position."""
        r = int(np.clip(round(row), 0, len(self.depth) - 1))
        z = self.top_z - row * self.pixel_mm
        across = self.left + col * self.pixel_mm
        if self.view == "sagittal":
            return np.array([self.depth[r], across, z])
        return np.array([across, self.depth[r], z])


def vertebra_centres(labels: np.ndarray, affine: np.ndarray, values) -> dict[int, np.ndarray]:
    """Per label value, an LPS point in the middle of the vertebra, mm.

    Left-right and superior-inferior: the centroid of the whole vertebra (its
    midline). Front-back: the deepest point of the bone (largest distance to its
    surface), which lies in the vertebral body and not in the canal between body
    and arch, where the whole vertebra's centroid falls.
    """
    spacing = np.asarray(voxel_sizes(affine))
    boxes = ndimage.find_objects(labels)
    out = {}
    for value in values:
        if value < 1 or value > len(boxes) or boxes[value - 1] is None:
            continue
        box = boxes[value - 1]
        mask = labels[box] == value
        start = np.array([s.start for s in box], float)
        centroid = index_to_lps(affine, start + np.array(ndimage.center_of_mass(mask)))
        # On a ~1.5 mm grid: the deepest point needs no finer one, and the sacrum's
        # box at 0.3 mm would cost seconds.
        step = np.maximum(1, np.round(CORE_GRID_MM / spacing)).astype(int)
        coarse = np.pad(mask[tuple(slice(None, None, k) for k in step)], 1)
        depth = ndimage.distance_transform_edt(coarse, sampling=spacing * step)[1:-1, 1:-1, 1:-1]
        deepest = np.array(np.unravel_index(int(np.argmax(depth)), depth.shape), float) * step
        core = index_to_lps(affine, start + deepest)
        out[int(value)] = np.array([centroid[0], core[1], centroid[2]])
    return out


def _spine_curve(centres: dict[int, np.ndarray], fallback: np.ndarray):
    """Functions z -> x and z -> y through the vertebra centres (piecewise linear,
    constant beyond the end vertebrae)."""
    if not centres:
        return (lambda z: np.full_like(z, fallback[0])), (lambda z: np.full_like(z, fallback[1]))
    pts = np.array(sorted(centres.values(), key=lambda p: p[2]))
    z = pts[:, 2]
    return (lambda q: np.interp(q, z, pts[:, 0])), (lambda q: np.interp(q, z, pts[:, 1]))


def _scan_bounds(shape, affine) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in shape], indexing="ij")).reshape(3, -1).T
    lps = index_to_lps(affine, corners)
    return lps.min(0), lps.max(0)


def _labelled_z_range(labels: np.ndarray, affine: np.ndarray) -> tuple[float, float]:
    """Lowest and highest LPS z of the labelled voxels' box, mm."""
    spans = [np.flatnonzero(labels.any(axis=tuple(j for j in range(3) if j != i))) for i in range(3)]
    box = [[sp[0], sp[-1]] for sp in spans]
    corners = np.array(np.meshgrid(*box, indexing="ij")).reshape(3, -1).T
    z = index_to_lps(affine, corners)[:, 2]
    return float(z.min()), float(z.max())


def spine_reformats(
    hu: np.ndarray, labels: np.ndarray, affine: np.ndarray, levels: dict, pixel_mm: float | None = None
) -> tuple[Reformat, Reformat]:
    """The sagittal and the coronal reformat of a scan through its vertebrae.

    Parameters
    ----------
    hu : ndarray, shape (n0, n1, n2)
        CT in HU, any orientation.
    labels : ndarray of int, same shape
        Vertebra label values (0 = none).
    affine : ndarray, shape (4, 4)
        Voxel index (array order) to LPS mm, shared by ``hu`` and ``labels``.
    levels : dict
        Label value -> level name; the vertebrae the surface passes through.
    pixel_mm : float, optional
        Display pixel size; default the scan's finest voxel size, coarsened so that
        no side exceeds :data:`MAX_PIXELS`.

    Returns
    -------
    sagittal, coronal : Reformat
    """
    affine = np.asarray(affine, float)
    lo, hi = _scan_bounds(hu.shape, affine)
    centres = vertebra_centres(labels, affine, sorted(levels))
    at_x, at_y = _spine_curve(centres, (lo + hi) / 2)
    if centres:
        pts = np.array(list(centres.values()))
        z_low, z_high = _labelled_z_range(labels, affine)
        z_top = min(hi[2], z_high + VERTICAL_MARGIN_MM)
        z_bottom = max(lo[2], z_low - VERTICAL_MARGIN_MM)
        mid_x, mid_y = np.median(pts[:, 0]), np.median(pts[:, 1])
    else:
        z_top, z_bottom = hi[2], lo[2]
        mid_x, mid_y = (lo[:2] + hi[:2]) / 2
    y_range = (max(lo[1], mid_y - SAGITTAL_SPAN_MM[1]), min(hi[1], mid_y + SAGITTAL_SPAN_MM[0]))
    x_range = (max(lo[0], mid_x - CORONAL_HALF_WIDTH_MM), min(hi[0], mid_x + CORONAL_HALF_WIDTH_MM))
    if pixel_mm is None:
        longest = max(z_top - z_bottom, y_range[1] - y_range[0], x_range[1] - x_range[0])
        pixel_mm = max(min(voxel_sizes(affine)), longest / MAX_PIXELS)
    rows = np.arange(int(np.floor((z_top - z_bottom) / pixel_mm)) + 1)
    z = z_top - rows * pixel_mm
    out = []
    for view, (a, b), depth_of in (("sagittal", y_range, at_x), ("coronal", x_range, at_y)):
        cols = np.arange(int(np.floor((b - a) / pixel_mm)) + 1)
        across = a + cols * pixel_mm
        depth = depth_of(z)
        zz, cc = np.meshgrid(z, across, indexing="ij")
        dd = np.broadcast_to(depth[:, None], zz.shape)
        points = np.stack([dd, cc, zz], -1) if view == "sagittal" else np.stack([cc, dd, zz], -1)
        index = lps_to_index(affine, points.reshape(-1, 3)).T
        plane_hu = ndimage.map_coordinates(hu, index, order=1, mode="constant", cval=AIR_HU, output=np.float32).reshape(
            zz.shape
        )
        plane_labels = ndimage.map_coordinates(
            labels, index, order=0, mode="constant", cval=0, output=labels.dtype
        ).reshape(zz.shape)
        sides = ("A", "P") if view == "sagittal" else ("R", "L")
        out.append(
            Reformat(
                view, plane_hu, plane_labels.astype(np.int16), float(pixel_mm), float(z_top), float(a), depth, sides
            )
        )
    return out[0], out[1]
