"""The spine straightened: cross-sections perpendicular to the canal, head to foot.

Vertebrae stack along a curve (cervical lordosis, thoracic kyphosis, lumbar
lordosis, the sacrum's tilt of 30-50 degrees), so an axial slice cuts a lumbosacral
disc obliquely and a thoracic body at an angle. Resampling the scan on planes
perpendicular to the canal's centre line turns every disc into a band across the
cross-section and every body into a block, whatever the posture and whether the
scan was stacked axially, sagittally or coronally: disc finding then works on one
profile along the spine.

Frame of a cross-section: ``s`` is arc length along the canal line (mm, from its
lowest point up), ``v`` points anterior (0 at the canal's centre; the vertebral body
lies at v ~ 10-50 mm), ``u`` points to the patient's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .canal import SpineAxis

#: Cross-section extent, mm: behind the canal (posterior elements) to in front of
#: the largest lumbar body, and left-right across transverse processes.
V_RANGE = (-45.0, 65.0)
U_RANGE = (-45.0, 45.0)
#: Sample spacing along the spine and within each cross-section, mm.
STEP_MM = 1.0


@dataclass(frozen=True)
class StraightSpine:
    """The scan resampled on cross-sections of the spine.

    Attributes
    ----------
    hu : ndarray of float32, shape (ns, nv, nu)
        HU on the cross-sections (trilinear), ``-1024`` outside the scan.
    inside : ndarray of bool, same shape
        Whether the sample lies inside the scanned volume.
    s : ndarray, shape (ns,)
        Arc length of each cross-section, mm.
    centre, tangent, anterior, left : ndarray, shape (ns, 3)
        Per cross-section: canal centre (canonical mm: z, y, x) and unit vectors.
    v, u : ndarray
        Sample offsets along ``anterior`` and ``left``, mm.
    """

    hu: np.ndarray
    inside: np.ndarray
    s: np.ndarray
    centre: np.ndarray
    tangent: np.ndarray
    anterior: np.ndarray
    left: np.ndarray
    v: np.ndarray
    u: np.ndarray

    def points(self, k, v, u) -> np.ndarray:
        """Canonical mm (z, y, x) of cross-section ``k`` at offsets ``v``, ``u`` (broadcast)."""
        k = np.asarray(k)
        v = np.asarray(v, dtype=float)[..., None]
        u = np.asarray(u, dtype=float)[..., None]
        return self.centre[k] + v * self.anterior[k] + u * self.left[k]


def straighten(
    hu: np.ndarray, spacing, axis: SpineAxis, *, step_mm: float = STEP_MM, v_range=V_RANGE, u_range=U_RANGE
) -> StraightSpine:
    """Resample canonical HU ``hu`` on cross-sections perpendicular to ``axis``.

    Parameters
    ----------
    hu : ndarray
        Native CT in HU, canonical SPL axes (may be a view).
    spacing : sequence of 3 float
        Native voxel size, mm.
    axis : SpineAxis
    """
    spacing = np.asarray(spacing, dtype=float)
    centre, tangent = _arc_resample(axis, step_mm)
    left, anterior = _cross_axes(tangent)
    v = np.arange(v_range[0], v_range[1] + 1e-6, step_mm)
    u = np.arange(u_range[0], u_range[1] + 1e-6, step_mm)
    pts = (
        centre[:, None, None, :]
        + v[None, :, None, None] * anterior[:, None, None, :]
        + u[None, None, :, None] * left[:, None, None, :]
    )
    idx = pts / spacing
    # Sample from a contiguous copy of just the box the cross-sections reach.
    lo = np.maximum(np.floor(idx.reshape(-1, 3).min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(idx.reshape(-1, 3).max(axis=0)).astype(int) + 2, hu.shape)
    inside = np.all((idx >= -0.5) & (idx <= np.asarray(hu.shape) - 0.5), axis=-1)
    out = np.full(idx.shape[:-1], -1024.0, dtype=np.float32)
    if np.all(hi > lo):
        box = np.ascontiguousarray(hu[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], dtype=np.float32)
        np.maximum(box, -1024.0, out=box)
        local = (idx - lo).reshape(-1, 3).T
        vals = ndimage.map_coordinates(box, local, order=1, mode="nearest").reshape(out.shape)
        out[inside] = vals[inside]
    s = np.arange(len(centre)) * step_mm
    return StraightSpine(out, inside, s, centre, tangent, anterior, left, v, u)


def spine_coordinates(st: StraightSpine, points: np.ndarray, iterations: int = 8) -> np.ndarray:
    """Cross-section index ``k`` (fractional), ``v`` and ``u`` of points (canonical mm).

    The cross-section through a point is the one whose plane contains it: starting
    from the section at the point's height, each step moves along the axis by the
    point's offset along the tangent (Newton's method on the plane equation; exact
    for a straight axis, within a fraction of a millimetre for the spine's
    curvature within 80 mm of the canal).

    Parameters
    ----------
    points : ndarray, shape (n, 3)
        Canonical mm (z, y, x).

    Returns
    -------
    ndarray, shape (n, 3)
        ``(k, v, u)``: ``k`` clamped to the sections' range.
    """
    pts = np.asarray(points, dtype=float)
    n = len(st.s)
    k = np.interp(pts[:, 0], st.centre[:, 0], np.arange(n, dtype=float))
    ds = st.s[1] - st.s[0] if n > 1 else 1.0
    axis = np.concatenate([st.centre, st.tangent], axis=1)
    # Points stop once their section moves by less than a thousandth (or is held at
    # the first or last section): further steps change nothing a label could see.
    active = np.arange(len(pts))
    for _ in range(iterations):
        ct = _at(axis, k[active])
        step = np.einsum("ij,ij->i", pts[active] - ct[:, :3], ct[:, 3:]) / ds
        moved = np.clip(k[active] + np.clip(step, -8.0, 8.0), 0.0, n - 1.0)
        still = np.abs(moved - k[active]) >= 1e-3
        k[active] = moved
        active = active[still]
        if not len(active):
            break
    frame = _at(np.concatenate([st.centre, st.anterior, st.left], axis=1), k)
    d = pts - frame[:, :3]
    v = np.einsum("ij,ij->i", d, frame[:, 3:6])
    u = np.einsum("ij,ij->i", d, frame[:, 6:])
    return np.stack([k, v, u], axis=1)


def _at(values: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Linear interpolation of per-section vectors (rows of ``values``) at fractional
    indices ``k`` within ``[0, len(values) - 1]``."""
    if len(values) == 1:
        return np.repeat(values, len(k), axis=0)
    i = np.clip(np.floor(k).astype(np.intp), 0, len(values) - 2)
    f = (k - i)[:, None]
    return values[i] * (1.0 - f) + values[i + 1] * f


@dataclass(frozen=True)
class BoxCoordinates:
    """Spine coordinates ``(k, v, u)`` over a box of the canonical grid.

    Computed exactly on a lattice of about ``step_mm`` and interpolated: they vary
    smoothly (the cross-sections turn with the spine's curve over centimetres), so
    millions of voxels cost a lattice of a hundred thousand points.
    """

    fields: np.ndarray  # (3, l0, l1, l2) float32: k, v, u on the lattice
    factor: tuple  # native voxels per lattice step, per axis

    def at(self, index: np.ndarray) -> np.ndarray:
        """``(k, v, u)`` of box-local voxel indices ``(n, 3)``."""
        index = np.asarray(index, dtype=float)
        if len(index) == 0:
            return np.zeros((0, 3))
        pos = (index / np.asarray(self.factor, dtype=float)).T
        return np.stack([ndimage.map_coordinates(f, pos, order=1, mode="nearest") for f in self.fields], axis=1)

    def box_around(self, k, v, u, shape) -> tuple[slice, slice, slice]:
        """Box-local slices holding every voxel whose ``(k, v, u)`` lies within the
        ranges ``k``, ``v``, ``u`` (pairs: sections, mm, mm), so that a search for such
        voxels need not convert the whole box. Lattice points are widened by their
        cell on every side, since coordinates in between are interpolated."""
        lo = [r[0] for r in (k, v, u)]
        hi = [r[1] for r in (k, v, u)]
        # A lattice point's neighbours within one cell differ by at most the field's
        # largest change over one cell.
        reach = [
            max(float(np.abs(np.diff(f, axis=a)).max()) if f.shape[a] > 1 else 0.0 for a in range(3))
            for f in self.fields
        ]
        near = np.ones(self.fields.shape[1:], dtype=bool)
        for f, a, b, r in zip(self.fields, lo, hi, reach):
            near &= (f >= a - r) & (f <= b + r)
        if not near.any():
            return (slice(0, 0),) * 3
        out = []
        for axis, f in enumerate(self.factor):
            hit = np.flatnonzero(near.any(axis=tuple(a for a in range(3) if a != axis)))
            out.append(slice(max((hit[0] - 1) * f, 0), min((hit[-1] + 1) * f + 1, shape[axis])))
        return tuple(out)


def box_coordinates(st: StraightSpine, box, spacing, step_mm=(2.0, 3.0, 3.0)) -> BoxCoordinates:
    """Spine coordinates of the voxels of ``box`` (slices of the canonical grid), on a
    lattice of about ``step_mm`` (per canonical axis: the section index changes
    fastest along the body's long axis, the in-plane offsets are nearly linear)."""
    spacing = np.asarray(spacing, dtype=float)
    step = np.broadcast_to(np.asarray(step_mm, dtype=float), (3,))
    factor = tuple(int(max(round(a / s), 1)) for a, s in zip(step, spacing))
    axes = [np.arange(0, (b.stop - b.start) + f, f) for b, f in zip(box, factor)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    origin = np.array([b.start for b in box], dtype=float)
    kvu = spine_coordinates(st, (grid + origin) * spacing)
    shape = tuple(len(a) for a in axes)
    fields = np.stack([kvu[:, j].reshape(shape) for j in range(3)]).astype(np.float32)
    return BoxCoordinates(fields, factor)


def _arc_resample(axis: SpineAxis, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step_mm`` of arc along the axis, and unit tangents (mm, z y x)."""
    p = np.stack([axis.z, axis.y, axis.x], axis=1)
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.arange(0.0, arc[-1] + 1e-6, step_mm)
    centre = np.stack([np.interp(s, arc, p[:, i]) for i in range(3)], axis=1)
    # Tangent from a +-10 mm chord: smooth, and defined at both ends.
    h = max(int(round(10.0 / step_mm)), 1)
    a = np.clip(np.arange(len(s)) + h, 0, len(s) - 1)
    b = np.clip(np.arange(len(s)) - h, 0, len(s) - 1)
    t = centre[a] - centre[b]
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-9)
    return centre, t


def _cross_axes(tangent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patient-left and anterior unit vectors perpendicular to each tangent."""
    left = np.array([0.0, 0.0, 1.0]) - tangent * tangent[:, 2:3]
    left /= np.maximum(np.linalg.norm(left, axis=1, keepdims=True), 1e-9)
    anterior = np.cross(tangent, left)  # (z, y, x) frame: up x left = anterior (-y)
    # Make sure "anterior" has a negative y component (y points posterior).
    flip = anterior[:, 1] > 0
    anterior[flip] *= -1
    return left, anterior
