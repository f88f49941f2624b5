"""The region a scaffold fills, as a signed distance in patient mm (LPS).

A region is either a primitive given in patient millimetres (sphere, box, cylinder,
exact signed distances) or a boolean mask on a scan grid, such as a fracture defect
found on the ~0.75 mm CT grid. A mask is turned into a *smooth* signed distance
(signed Euclidean distance with the voxel spacing, lightly Gaussian-smoothed and
trilinearly interpolated) so that the scaffold's outer skin follows the anatomy
instead of the scan's voxel staircase. Convention everywhere: negative inside, mm.

The fine grid the scaffold is sampled on is in :mod:`pipeline.scaffold.grid`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from pipeline.errors import DesignError, InputError
from pipeline.geometry.distance import signed_distance
from pipeline.volume import crop_affine, voxel_sizes

_SPECS = {
    "sphere": ("X,Y,Z,R", 4),
    "box": ("X0,Y0,Z0,X1,Y1,Z1", 6),
    "cylinder": ("X0,Y0,Z0,X1,Y1,Z1,R", 7),
}


@dataclass(frozen=True)
class Sphere:
    """Ball of ``radius`` mm centred at ``center`` (LPS mm)."""

    center: tuple[float, float, float]
    radius: float

    def sdf_xyz(self, x, y, z, offset: float = 0.0):
        c = self.center
        return np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) - (self.radius - offset)

    def bounds(self):
        c = np.asarray(self.center, float)
        return c - self.radius, c + self.radius

    def volume_mm3(self, offset: float = 0.0):
        r = self.radius - offset
        return 4.0 / 3.0 * math.pi * r**3 if r > 0 else 0.0

    def depth_mm(self):
        return self.radius


@dataclass(frozen=True)
class Box:
    """Axis-aligned box between corners ``lo`` and ``hi`` (LPS mm)."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]

    def sdf_xyz(self, x, y, z, offset: float = 0.0):
        c = (np.asarray(self.lo) + np.asarray(self.hi)) / 2.0
        h = (np.asarray(self.hi) - np.asarray(self.lo)) / 2.0 - offset
        qx, qy, qz = np.abs(x - c[0]) - h[0], np.abs(y - c[1]) - h[1], np.abs(z - c[2]) - h[2]
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
        return outside + np.minimum(np.maximum(np.maximum(qx, qy), qz), 0)

    def bounds(self):
        return np.asarray(self.lo, float), np.asarray(self.hi, float)

    def volume_mm3(self, offset: float = 0.0):
        size = np.asarray(self.hi) - np.asarray(self.lo) - 2 * offset
        return float(np.prod(size)) if np.all(size > 0) else 0.0

    def depth_mm(self):
        return float(np.min(np.asarray(self.hi) - np.asarray(self.lo)) / 2.0)


@dataclass(frozen=True)
class Cylinder:
    """Solid cylinder of ``radius`` mm whose axis runs from ``p0`` to ``p1`` (LPS mm)."""

    p0: tuple[float, float, float]
    p1: tuple[float, float, float]
    radius: float

    def sdf_xyz(self, x, y, z, offset: float = 0.0):
        p0, p1 = np.asarray(self.p0, float), np.asarray(self.p1, float)
        c = (p0 + p1) / 2.0
        length = float(np.linalg.norm(p1 - p0))
        a = (p1 - p0) / length
        dx, dy, dz = x - c[0], y - c[1], z - c[2]
        t = dx * a[0] + dy * a[1] + dz * a[2]
        rho = np.sqrt(np.maximum(dx * dx + dy * dy + dz * dz - t * t, 0.0))
        d0 = rho - (self.radius - offset)
        d1 = np.abs(t) - (length / 2.0 - offset)
        outside = np.sqrt(np.maximum(d0, 0) ** 2 + np.maximum(d1, 0) ** 2)
        return outside + np.minimum(np.maximum(d0, d1), 0)

    def bounds(self):
        p0, p1 = np.asarray(self.p0, float), np.asarray(self.p1, float)
        a = (p1 - p0) / np.linalg.norm(p1 - p0)
        # half-extent of the end discs along each axis
        ext = self.radius * np.sqrt(np.clip(1.0 - a * a, 0.0, 1.0))
        return np.minimum(p0, p1) - ext, np.maximum(p0, p1) + ext

    def volume_mm3(self, offset: float = 0.0):
        r = self.radius - offset
        length = float(np.linalg.norm(np.subtract(self.p1, self.p0))) - 2 * offset
        return math.pi * r * r * length if r > 0 and length > 0 else 0.0

    def depth_mm(self):
        return min(self.radius, float(np.linalg.norm(np.subtract(self.p1, self.p0))) / 2.0)


@dataclass(frozen=True, eq=False)
class MaskShape:
    """Smooth signed distance (mm) of a boolean mask on a scan grid.

    Attributes
    ----------
    distance : ndarray (float32)
        Smoothed signed distance sampled on the (cropped, padded) mask grid.
    affine : ndarray (4, 4)
        Voxel index of ``distance`` to LPS mm.
    lo, hi : ndarray (3,)
        LPS bounding box of the mask voxels (voxel corners included).
    mask_volume_mm3 : float
        Voxel count times voxel volume of the original mask.
    """

    distance: np.ndarray
    affine: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    mask_volume_mm3: float
    _inverse: np.ndarray = field(repr=False, default=None)

    def sdf_xyz(self, x, y, z, offset: float = 0.0):
        fast = self._separable(x, y, z)
        if fast is not None:
            return fast + np.float32(offset)
        x, y, z = np.broadcast_arrays(x, y, z)
        inv = self._inverse
        coords = np.empty((3,) + x.shape, dtype=np.float32)
        for i in range(3):
            coords[i] = inv[i, 0] * x + inv[i, 1] * y + inv[i, 2] * z + inv[i, 3]
        # outside the padded grid the mask is empty: 'nearest' repeats the positive border
        out = ndimage.map_coordinates(self.distance, coords, order=1, mode="nearest", output=np.float32)
        return out + np.float32(offset)

    def _separable(self, x, y, z):
        """Trilinear interpolation done axis by axis, or None when it does not apply.

        A scaffold's sampling grid usually has its axes along the scan's (both LPS up
        to a permutation), so each distance-grid index depends on one grid axis only.
        Trilinear interpolation is then three 1-D interpolations, the same numbers as
        ``map_coordinates`` (order 1, mode "nearest") at a fraction of its cost, which
        dominated building and measuring a scaffold in a mask region.
        """
        inv = self._inverse[:3]
        if np.count_nonzero(inv[:, :3]) != 3 or np.any(np.count_nonzero(inv[:, :3], axis=1) != 1):
            return None
        coords = [np.asarray(c) for c in (x, y, z)]
        shape = np.broadcast_shapes(*(c.shape for c in coords))
        if len(shape) != 3:
            return None
        axis_of = []  # per LPS coordinate: the one array axis it varies along (or None)
        for c in coords:
            varying = [a for a in range(c.ndim) if c.shape[a] > 1]
            if c.ndim != 3 or len(varying) > 1:
                return None
            axis_of.append(varying[0] if varying else None)
        t = self.distance
        out_axis = []
        for i in range(3):
            j = int(np.flatnonzero(inv[i, :3])[0])
            q = inv[i, j] * coords[j].astype(np.float64).reshape(-1) + inv[i, 3]
            n = t.shape[i]
            q = np.clip(q, 0.0, n - 1)
            i0 = np.minimum(np.floor(q).astype(np.intp), max(n - 2, 0))
            w = (q - i0).astype(np.float32)
            i1 = np.minimum(i0 + 1, n - 1)
            wshape = [1, 1, 1]
            wshape[i] = len(w)
            w = w.reshape(wshape)
            t = np.take(t, i0, axis=i) * (np.float32(1.0) - w) + np.take(t, i1, axis=i) * w
            out_axis.append(axis_of[j])
        used = [a for a in out_axis if a is not None]
        if len(set(used)) != len(used):
            return None
        # order the distance axes as the output axes; constant ones are length 1
        free = [a for a in range(3) if a not in used]
        dest = [a if a is not None else free.pop(0) for a in out_axis]
        t = np.moveaxis(t, [0, 1, 2], dest)
        return np.ascontiguousarray(np.broadcast_to(t, shape), dtype=np.float32)

    def bounds(self):
        return self.lo.copy(), self.hi.copy()

    def volume_mm3(self, offset: float = 0.0):
        return None

    def depth_mm(self):
        return float(max(-self.distance.min(), 0.0))


def mask_shape(
    mask: np.ndarray, affine: np.ndarray, smooth_mm: float | None = None, *, what: str = "region mask"
) -> MaskShape:
    """Smooth signed distance of a boolean ``mask`` whose voxels map to LPS by ``affine``.

    Parameters
    ----------
    mask : ndarray of bool, shape (n0, n1, n2)
        True inside.
    affine : ndarray (4, 4)
        Voxel index (array axis order) to LPS mm.
    smooth_mm : float, optional
        Gaussian sigma in mm applied to the signed distance; default 0.6 of the largest
        voxel spacing: enough to remove the voxel staircase (on a 0.75 mm sphere mask
        the surface's scatter drops from 0.13 to 0.07 mm) without rounding off much
        of a small defect (smoothing shrinks convex edges and corners).
    """
    mask = np.asarray(mask)
    affine = np.asarray(affine, dtype=float)
    if mask.ndim != 3:
        raise InputError(None, f"{what} must be 3-D, got shape {mask.shape}")
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(None, f"{what} affine must be a finite, invertible 4x4 matrix")
    mask = mask.astype(bool)
    if not mask.any():
        raise InputError(None, f"{what} is empty")
    spacing = np.asarray(voxel_sizes(affine))
    if smooth_mm is None:
        smooth_mm = 0.6 * float(spacing.max())
    nz = np.nonzero(mask)
    start = np.array([int(a.min()) for a in nz])
    stop = np.array([int(a.max()) + 1 for a in nz])
    # pad so the distance is positive on the grid border and smoothing has room
    pad = int(math.ceil(3.0 * smooth_mm / spacing.min())) + 3
    crop = mask[tuple(slice(a, b) for a, b in zip(start, stop))]
    crop = np.pad(crop, pad)
    grid_affine = crop_affine(affine, tuple(int(s) - pad for s in start))
    sd = signed_distance(crop, spacing)
    if smooth_mm > 0:
        sd = ndimage.gaussian_filter(sd, sigma=smooth_mm / spacing, mode="nearest")
    corners = np.array(list(np.ndindex(2, 2, 2)), float) * (stop - start) + start - 0.5
    lps = corners @ affine[:3, :3].T + affine[:3, 3]
    return MaskShape(
        distance=sd,
        affine=grid_affine,
        lo=lps.min(0),
        hi=lps.max(0),
        mask_volume_mm3=float(mask.sum() * abs(np.linalg.det(affine[:3, :3]))),
        _inverse=np.linalg.inv(grid_affine),
    )


def parse_primitive(spec: str):
    """Parse ``"sphere:X,Y,Z,R"``, ``"box:X0,Y0,Z0,X1,Y1,Z1"`` or
    ``"cylinder:X0,Y0,Z0,X1,Y1,Z1,R"`` (LPS mm) into a shape.

    Raises
    ------
    InputError
        With a one-line message naming the expected form, for any malformed spec.
    """
    text = str(spec).strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind not in _SPECS:
        forms = "; ".join(f"{k}:{v[0]}" for k, v in _SPECS.items())
        raise InputError(None, f"bad region {text!r}: expected one of {forms} (LPS mm)")
    form, n = _SPECS[kind]
    try:
        values = [float(v) for v in rest.split(",")] if rest.strip() else []
    except ValueError:
        values = None
    if values is None or len(values) != n or not all(math.isfinite(v) for v in values):
        raise InputError(None, f"bad region {text!r}: expected {kind}:{form} with {n} numbers (LPS mm)")
    if kind == "sphere":
        if values[3] <= 0:
            raise InputError(None, f"bad region {text!r}: sphere radius must be > 0 mm")
        return Sphere(tuple(values[:3]), values[3])
    if kind == "box":
        a, b = np.array(values[:3]), np.array(values[3:])
        if np.any(a == b):
            raise InputError(None, f"bad region {text!r}: box has zero size along an axis")
        return Box(tuple(np.minimum(a, b)), tuple(np.maximum(a, b)))
    if values[6] <= 0 or np.allclose(values[:3], values[3:6]):
        raise InputError(None, f"bad region {text!r}: cylinder needs radius > 0 and two distinct end points")
    return Cylinder(tuple(values[:3]), tuple(values[3:6]), values[6])


@dataclass(frozen=True, eq=False)
class Region:
    """What the scaffold fills: a shape, optionally combined with bone, offset inward.

    Attributes
    ----------
    shape : Sphere, Box, Cylinder or MaskShape
    clearance_mm : float
        Inward offset of the whole boundary (gap left to the surrounding bone), mm.
    bone : MaskShape, optional
        Bone to combine with the shape.
    bone_mode : str
        ``"subtract"`` (keep the shape outside bone) or ``"intersect"`` (keep only
        the part of the shape inside bone); ignored without ``bone``.
    """

    shape: object
    clearance_mm: float = 0.0
    bone: MaskShape | None = None
    bone_mode: str = "subtract"

    def __post_init__(self):
        if not math.isfinite(self.clearance_mm) or self.clearance_mm < 0:
            raise InputError(None, f"clearance must be >= 0 mm, got {self.clearance_mm}")
        if self.bone_mode not in ("subtract", "intersect"):
            raise InputError(None, f"bone mode must be 'subtract' or 'intersect', got {self.bone_mode!r}")
        if self.shape.depth_mm() <= self.clearance_mm:
            raise DesignError(f"a clearance of {self.clearance_mm} mm leaves nothing of the region")

    @classmethod
    def from_spec(cls, spec: str, **kw) -> Region:
        """Region from a primitive spec string, see :func:`parse_primitive`."""
        return cls(parse_primitive(spec), **kw)

    @classmethod
    def from_mask(
        cls, mask, affine, *, smooth_mm=None, clearance_mm=0.0, bone_mask=None, bone_affine=None, bone_mode="subtract"
    ) -> Region:
        """Region from a boolean mask on a scan grid (e.g. a fracture defect)."""
        bone = None
        if bone_mask is not None:
            bone = mask_shape(bone_mask, affine if bone_affine is None else bone_affine, smooth_mm, what="bone mask")
        return cls(mask_shape(mask, affine, smooth_mm), clearance_mm, bone, bone_mode)

    def with_bone(self, bone_mask, bone_affine, mode="subtract", smooth_mm=None) -> Region:
        """Same region combined with a bone mask."""
        return Region(
            self.shape, self.clearance_mm, mask_shape(bone_mask, bone_affine, smooth_mm, what="bone mask"), mode
        )

    def sdf_xyz(self, x, y, z) -> np.ndarray:
        """Signed distance (mm, negative inside) at broadcastable LPS coordinates."""
        d = self.shape.sdf_xyz(x, y, z)
        if self.bone is not None:
            b = self.bone.sdf_xyz(x, y, z)
            d = np.maximum(d, -b) if self.bone_mode == "subtract" else np.maximum(d, b)
        if self.clearance_mm:
            d = d + self.clearance_mm
        return np.asarray(d, dtype=np.float32)

    def sdf(self, points) -> np.ndarray:
        """Signed distance (mm, negative inside) at LPS points ``(..., 3)``."""
        p = np.asarray(points, dtype=float)
        return self.sdf_xyz(p[..., 0], p[..., 1], p[..., 2])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """LPS bounding box ``(lo, hi)`` in mm that contains the region."""
        lo, hi = self.shape.bounds()
        if self.bone is not None and self.bone_mode == "intersect":
            blo, bhi = self.bone.bounds()
            lo, hi = np.maximum(lo, blo), np.minimum(hi, bhi)
            if np.any(hi <= lo):
                raise DesignError("the region does not overlap the bone it is intersected with")
        return np.asarray(lo, float), np.asarray(hi, float)

    def exact_volume_mm3(self) -> float | None:
        """Analytic volume (mm^3) when the region is a plain primitive, else None."""
        if self.bone is not None:
            return None
        return self.shape.volume_mm3(self.clearance_mm)

    def depth_mm(self) -> float:
        """Largest distance from the boundary to a point inside, mm (approximate for masks)."""
        if self.bone is None and not isinstance(self.shape, MaskShape):
            return self.shape.depth_mm() - self.clearance_mm
        lo, hi = self.bounds()
        n = 48
        axes = [np.linspace(lo[i], hi[i], n) for i in range(3)]
        d = self.sdf_xyz(axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :])
        return float(max(-d.min(), 0.0))

    def describe(self) -> dict:
        """JSON-ready description (no arrays) for the manifest."""
        s = self.shape
        if isinstance(s, Sphere):
            shape = {"type": "sphere", "center_lps_mm": list(s.center), "radius_mm": s.radius}
        elif isinstance(s, Box):
            shape = {"type": "box", "lo_lps_mm": list(s.lo), "hi_lps_mm": list(s.hi)}
        elif isinstance(s, Cylinder):
            shape = {"type": "cylinder", "p0_lps_mm": list(s.p0), "p1_lps_mm": list(s.p1), "radius_mm": s.radius}
        else:
            shape = {
                "type": "mask",
                "mask_volume_mm3": s.mask_volume_mm3,
                "bounds_lps_mm": [s.lo.tolist(), s.hi.tolist()],
            }
        out = {"shape": shape, "clearance_mm": self.clearance_mm}
        if self.bone is not None:
            out["bone"] = self.bone_mode
        return out
