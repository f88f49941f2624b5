"""Geometry of a stack of DICOM slices: order, spacing, gaps, gantry tilt, affine.

Slices are ordered by their ImagePositionPatient projected on the slice normal
(``cross(row direction, column direction)``) — never by InstanceNumber or file name,
which scanners and anonymisers do not keep reliable. A stack whose slices are not
evenly spaced or are sheared (gantry tilt) is resampled onto a regular orthogonal
grid, and every such correction is described in a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Positions closer than this along the normal are the same slice, mm.
DUPLICATE_TOLERANCE_MM = 0.01
#: Fraction of the spacing by which a position may stray from a regular grid
#: (DICOM decimal strings are rounded) before the stack is resampled.
REGULAR_TOLERANCE = 0.01
#: In-plane offset between slices, as a fraction of a pixel, tolerated before the
#: stack counts as sheared.
SHEAR_TOLERANCE_PX = 0.02


_IOP_TOLERANCE = 1e-4
_SPACING_TOLERANCE_MM = 1e-3


class GeometryError(ValueError):
    """The slices cannot be assembled into a volume (message in the user's words)."""


@dataclass(frozen=True)
class StackPlan:
    """How to turn sorted slices into a regular orthogonal volume.

    Attributes
    ----------
    positions : ndarray, shape (n,)
        Position of each input slice along the normal, mm (ascending).
    shifts_px : ndarray, shape (n, 2) or None
        In-plane shift (rows, columns) in pixels that aligns each input slice with
        the output grid; None when the stack is not sheared.
    targets : ndarray, shape (m,) or None
        Positions along the normal of the output slices when the input spacing is
        not regular; None when the input slices are used as they are.
    affine : ndarray, shape (4, 4)
        Output voxel index (slice, row, column) to LPS mm.
    warnings : tuple of str
        What was corrected, in the user's words.
    """

    positions: np.ndarray
    shifts_px: np.ndarray | None
    targets: np.ndarray | None
    affine: np.ndarray
    warnings: tuple[str, ...]


def image_plane(ipp, iop, spacing):
    """Validated ImagePositionPatient (3,), ImageOrientationPatient (6,) and
    PixelSpacing (2,) of one image, the orientation made exactly orthonormal.

    Raises
    ------
    GeometryError
        If a value is missing, malformed or not finite, or the orientation is not two
        perpendicular unit vectors.
    """
    try:
        ipp = np.array([float(v) for v in ipp], dtype=float)
        iop = np.array([float(v) for v in iop], dtype=float)
        spacing = tuple(float(v) for v in spacing)
    except (TypeError, ValueError):
        raise GeometryError("image without a valid position, orientation or pixel spacing") from None
    if ipp.shape != (3,) or iop.shape != (6,) or len(spacing) != 2:
        raise GeometryError("image with malformed position, orientation or pixel spacing")
    if not (
        np.all(np.isfinite(ipp)) and np.all(np.isfinite(iop)) and np.all(np.isfinite(spacing)) and min(spacing) > 0
    ):
        raise GeometryError("image with non-finite geometry or non-positive pixel spacing")
    row, col = iop[:3], iop[3:]
    norms = np.linalg.norm(row), np.linalg.norm(col)
    if min(norms) < 0.9 or max(norms) > 1.1 or abs(row @ col) > 1e-3:
        raise GeometryError("ImageOrientationPatient is not two perpendicular unit vectors")
    # DS values carry ~6 significant digits; renormalise so the affine is orthonormal.
    row = row / norms[0]
    col = col - (col @ row) * row
    col = col / np.linalg.norm(col)
    return ipp, np.concatenate([row, col]), spacing


def slice_normal(iop: np.ndarray) -> np.ndarray:
    """Unit normal of the image plane, ``cross(row direction, column direction)``."""
    iop = np.asarray(iop, dtype=float)
    n = np.cross(iop[:3], iop[3:])
    return n / np.linalg.norm(n)


def sort_by_position(ipps: np.ndarray, iop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order of the slices along the normal and their positions there (mm)."""
    d = np.asarray(ipps, dtype=float) @ slice_normal(iop)
    order = np.argsort(d, kind="stable")
    return order, d[order]


class DuplicateClash(GeometryError):
    """Two different images share a slice position (indices into the sorted slices)."""

    def __init__(self, first: int, second: int):
        super().__init__("two different images at the same slice position")
        self.first, self.second = first, second


def drop_duplicates(sorted_positions: np.ndarray, identical) -> list[int]:
    """Indices of the sorted slices to keep, one per position.

    Slices closer than 0.01 mm along the normal are the same slice; ``identical(i, j)``
    says whether two of them hold the same image. Identical copies are dropped.

    Raises
    ------
    DuplicateClash
        If two images at one position differ.
    """
    keep = [0]
    for i in range(1, len(sorted_positions)):
        if sorted_positions[i] - sorted_positions[keep[-1]] > DUPLICATE_TOLERANCE_MM:
            keep.append(i)
        elif not identical(keep[-1], i):
            raise DuplicateClash(keep[-1], i)
    return keep


def majority_geometry(records):
    """Split a series' images into the majority geometry and the rest.

    Images agree when rows/columns, ImageOrientationPatient (within 1e-4) and
    PixelSpacing (within 0.001 mm) match. Returns ``(kept, [(record, reason), ...])``.
    """

    def agree(a, b) -> bool:
        return (
            (a.rows, a.columns) == (b.rows, b.columns)
            and np.max(np.abs(a.iop - b.iop)) <= _IOP_TOLERANCE
            and np.max(np.abs(np.subtract(a.spacing, b.spacing))) <= _SPACING_TOLERANCE_MM
        )

    clusters: list[list] = []
    for rec in records:
        match = next((c for c in clusters if agree(rec, c[0])), None)
        if match is None:
            clusters.append([rec])
        else:
            match.append(rec)
    keep = max(clusters, key=len)
    ref = keep[0]
    excluded = []
    for cluster in clusters:
        if cluster is keep:
            continue
        other = cluster[0]
        if (other.rows, other.columns) != (ref.rows, ref.columns):
            why = f"image size {other.rows}x{other.columns} differs from the series' {ref.rows}x{ref.columns}"
        elif np.max(np.abs(other.iop - ref.iop)) > _IOP_TOLERANCE:
            why = "orientation differs from the rest of the series"
        else:
            why = "pixel spacing differs from the rest of the series"
        excluded.extend((rec, why) for rec in cluster)
    return keep, excluded


def plan_stack(
    ipps: np.ndarray,
    iop: np.ndarray,
    pixel_spacing: tuple[float, float],
    *,
    tilt_tag_deg: float = 0.0,
    max_missing: int = 3,
) -> StackPlan:
    """Work out the regular orthogonal grid for slices sorted along the normal.

    Parameters
    ----------
    ipps : ndarray, shape (n, 3)
        ImagePositionPatient of each slice, LPS mm, sorted along the normal and
        without duplicates.
    iop : ndarray, shape (6,)
        Common ImageOrientationPatient (row direction, column direction).
    pixel_spacing : (float, float)
        PixelSpacing (between rows, between columns), mm.
    tilt_tag_deg : float
        Gantry/Detector Tilt recorded by the scanner, degrees (informative only:
        the geometry is taken from the positions).
    max_missing : int
        Most consecutive missing slices that may be filled by interpolation.

    Raises
    ------
    GeometryError
        If fewer than two slices remain or a gap exceeds ``max_missing`` slices.
    """
    ipps = np.asarray(ipps, dtype=float)
    if len(ipps) < 2:
        raise GeometryError("a volume needs at least 2 slices, found 1")
    row_dir, col_dir = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = slice_normal(iop)
    d_row, d_col = pixel_spacing
    d = ipps @ normal
    axial = abs(normal[2]) > 0.9
    warnings: list[str] = []

    targets, spacing = _plan_spacing(d, ipps, axial, max_missing, warnings)

    # In-plane offset of every slice from slice 0 (zero unless the stack is sheared).
    offsets = (ipps - ipps[0]) - np.outer(d - d[0], normal)
    u, v = offsets @ row_dir, offsets @ col_dir  # along columns, along rows (mm)
    origin = ipps[0].copy()
    shifts = None
    if np.max(np.hypot(u / d_col, v / d_row)) > SHEAR_TOLERANCE_PX:
        # Align on the middle of the offset range so both ends lose the same margin.
        u_ref, v_ref = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
        origin = ipps[0] + u_ref * row_dir + v_ref * col_dir
        shifts = np.column_stack([(v - v_ref) / d_row, (u - u_ref) / d_col])
        edge = float(np.max(np.hypot(u - u_ref, v - v_ref)))
        warnings.append(_shear_warning(d - d[0], offsets, edge))
    elif abs(tilt_tag_deg) > 0.01:
        warnings.append(
            f"the scanner records a gantry tilt of {tilt_tag_deg:.1f} deg but the slices are "
            "already orthogonal to the slice direction, so no tilt correction was needed"
        )

    affine = np.eye(4)
    affine[:3, 0] = spacing * normal
    affine[:3, 1] = d_row * col_dir
    affine[:3, 2] = d_col * row_dir
    affine[:3, 3] = origin
    return StackPlan(positions=d, shifts_px=shifts, targets=targets, affine=affine, warnings=tuple(warnings))


def _plan_spacing(d, ipps, axial, max_missing, warnings):
    """Output slice positions (None if the input is regular) and the output spacing."""
    n = len(d)
    steps = np.diff(d)
    mean_step = (d[-1] - d[0]) / (n - 1)
    deviation = np.max(np.abs(d - (d[0] + mean_step * np.arange(n))))
    if deviation <= REGULAR_TOLERANCE * mean_step + 1e-3:
        return None, mean_step

    typical = float(np.median(steps))
    where = lambda i: _between(ipps[i], ipps[i + 1], d[i], d[i + 1], axial)  # noqa: E731
    gaps = [i for i in range(n - 1) if steps[i] > 1.5 * typical]
    worst = max(range(n - 1), key=lambda i: steps[i])
    if steps[worst] > (max_missing + 1) * typical * 1.05:
        missing = int(round(steps[worst] / typical)) - 1
        raise GeometryError(
            f"{missing} missing slices ({steps[worst]:.2f} mm gap) {where(worst)}; "
            f"at most {max_missing} consecutive missing slices can be filled"
        )
    n_out = int(round((d[-1] - d[0]) / typical)) + 1
    targets = np.linspace(d[0], d[-1], n_out)
    spacing = (d[-1] - d[0]) / (n_out - 1)
    for i in gaps[:3]:
        missing = int(round(steps[i] / typical)) - 1
        what = f"{missing} missing slice{'s' if missing != 1 else ''}" if missing >= 1 else f"a {steps[i]:.2f} mm gap"
        warnings.append(f"{what} {where(i)} filled by linear interpolation")
    if len(gaps) > 3:
        warnings.append(f"{len(gaps) - 3} more gaps between slices filled by linear interpolation")
    if not gaps:
        warnings.append(
            f"slice spacing varies from {steps.min():.3f} to {steps.max():.3f} mm; resampled to a "
            f"regular {spacing:.3f} mm grid by linear interpolation"
        )
    return targets, spacing


def _between(p0, p1, d0, d1, axial) -> str:
    if axial:
        return f"between z={p0[2]:.2f} and z={p1[2]:.2f} mm"
    return f"between slice positions {d0:.2f} and {d1:.2f} mm along the slice normal"


def _shear_warning(along: np.ndarray, offsets: np.ndarray, edge_mm: float) -> str:
    """Describe the in-plane shear: a gantry tilt when offsets grow linearly."""
    span = along[-1]
    slope = offsets[-1] / span
    residual = np.max(np.linalg.norm(offsets - np.outer(along, slope), axis=1))
    largest = np.max(np.linalg.norm(offsets, axis=1))
    if residual <= 0.05 * max(largest, 1e-9) + 0.01:
        angle = np.degrees(np.arctan(np.linalg.norm(slope)))
        return (
            f"gantry tilt of {angle:.1f} deg corrected: each slice shifted in-plane by "
            f"linear interpolation onto a grid orthogonal to the slices (up to "
            f"{edge_mm:.1f} mm at the image edges filled with air)"
        )
    return (
        f"slices are offset in-plane from each other by up to {largest:.1f} mm; each slice "
        f"shifted by linear interpolation onto a common grid (up to {edge_mm:.1f} mm at "
        "the image edges filled with air)"
    )


def align_slice(image: np.ndarray, shift_px, fill: float) -> np.ndarray:
    """Shift one slice in-plane by ``shift_px`` (rows, columns) pixels, bilinear."""
    from scipy import ndimage

    return ndimage.shift(
        np.asarray(image, dtype=np.float32), shift_px, order=1, mode="constant", cval=fill, prefilter=False
    )


def resample_positions(stack: np.ndarray, positions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linearly interpolate ``stack`` (slices on axis 0 at ``positions``) at ``targets``.

    Returns float32 of shape ``(len(targets),) + stack.shape[1:]``.
    """
    positions = np.asarray(positions, dtype=float)
    lower = np.clip(np.searchsorted(positions, targets, side="right") - 1, 0, len(positions) - 2)
    weight = np.clip((targets - positions[lower]) / (positions[lower + 1] - positions[lower]), 0.0, 1.0)
    out = np.empty((len(targets),) + stack.shape[1:], dtype=np.float32)
    for j, (i, w) in enumerate(zip(lower, weight)):
        out[j] = (1.0 - w) * stack[i] + w * stack[i + 1]
    return out
