"""One vertebra as signed-distance parts: body, pedicles, neural arch, facet joints.

All positions are written in the vertebra's local frame (see :mod:`.levels`) and
placed in the world by its :class:`~.shapes.Frame`; the parts themselves are exact or
near-exact primitives blended where bone meets bone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .levels import FACET_GAP, LevelSpec
from .shapes import (
    Cylinder,
    EllipticTube,
    Frame,
    Intersection,
    RoundBox,
    RoundCone,
    Shape,
    Union,
    _box_of_local_box,
    basis_from_axis,
    ellipse_2d,
    rotation,
    rounded_extrusion,
    smin,
)

#: Thickness of the cortical shell of every bone (mm).
CORTEX_MM = 1.0
#: Radius of the facet joint surfaces (curved, J-shaped facets), mm.
FACET_RADIUS = 16.0


class VertebralBody(Shape):
    """A vertebral body: elliptic front, flat posterior wall, concave waist, slightly
    concave endplates, a sagittal wedge and rounded rims.

    Parameters
    ----------
    frame : Frame
        Body centre and axes (local +z cranial, +y posterior).
    width, depth, height : float
        Endplate width and depth, height at mid-depth (mm).
    wedge : float
        Angle between the endplates (deg), + when the anterior is taller.
    waist : float
        Inward bow of the side walls at mid-height (mm).
    concavity : float
        Depth of the central endplate dip (mm).
    rim : float
        Rounding radius of the endplate rims (mm).
    """

    def __init__(self, frame: Frame, width, depth, height, wedge=0.0, waist=1.6, concavity=1.2, rim=2.0):
        self.frame = frame
        self.W, self.D, self.H = float(width), float(depth), float(height)
        self.t = float(np.tan(np.radians(wedge) / 2))
        self.c = float(np.cos(np.radians(wedge) / 2))
        self.waist, self.conc, self.r = float(waist), float(concavity), float(rim)
        half_h = self.H / 2 + self.D / 2 * abs(self.t) + 0.5
        self.lo, self.hi = _box_of_local_box(frame, (self.W / 2 + 0.5, self.D / 2 + 0.5, half_h))

    def heights_local(self, x, y):
        """Superior and inferior endplate z (local mm) above ``(x, y)``."""
        bump = self.conc * np.clip(1 - (x / (0.4 * self.W)) ** 2 - (y / (0.4 * self.D)) ** 2, 0, 1)
        return self.H / 2 - y * self.t - bump, -self.H / 2 + y * self.t + bump

    def sdf(self, p):
        q = self.frame.to_local(p)
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        u = np.clip(2 * z / self.H, -1, 1)
        bow = self.waist * (1 - u * u)
        r = self.r
        # Outline: elliptic front blended with a flat, wide posterior wall (the
        # pedicles attach at its corners).
        d_front = ellipse_2d(x, y, self.W / 2 - bow - r, self.D / 2 - 0.5 * bow - r)
        hx = 0.36 * self.W - bow - r
        hy = self.D / 4 - 0.5 * bow - r
        corner = 5.0
        qx = np.abs(x) - hx + corner
        qy = np.abs(y - self.D / 4) - hy + corner
        d_back = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2) + np.minimum(np.maximum(qx, qy), 0) - corner
        d2 = smin(d_front, d_back, 3.0)
        zs, zi = self.heights_local(x, y)
        dz = np.maximum(z - zs, zi - z) * self.c + r
        return rounded_extrusion(d2, dz, r)


@dataclass(frozen=True)
class PedicleGeometry:
    """A pedicle's isthmus in the vertebra's local frame (mm, deg)."""

    side: str  # "left" (+x) or "right"
    centre: np.ndarray  # isthmus centre, local
    axis: np.ndarray  # unit vector pointing anteriorly into the body, local
    width: float
    height: float
    medial_angle: float
    cranial_angle: float


def _box_along(frame: Frame, a, b, thickness, height, radius, roll=0.0, extra=0.0) -> RoundBox:
    """A rounded slab from local point ``a`` to ``b``: ``thickness`` across, ``height``
    roughly along local z, rolled by ``roll`` deg about its length."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    e1 = (b - a) / np.linalg.norm(b - a)
    e2 = np.cross((0.0, 0.0, 1.0), e1)
    e2 /= np.linalg.norm(e2)
    e3 = np.cross(e1, e2)
    R = np.column_stack([e1, e2, e3]) @ rotation("x", roll)
    half = (np.linalg.norm(b - a) / 2 + extra, thickness / 2, height / 2)
    return RoundBox(frame.compose(R, (a + b) / 2), half, radius)


def pedicle_geometry(s: LevelSpec) -> list[PedicleGeometry]:
    """Isthmus centres and axes, placed so the medial walls bound the canal."""
    out = []
    m, c = np.radians(s.pedicle_medial), np.radians(s.pedicle_cranial)
    z = s.height / 2 - 1.5 - s.pedicle_height / 2
    y = s.depth / 2 + 4.0
    for side, sign in (("left", 1.0), ("right", -1.0)):
        x = sign * (s.canal_width / 2 + s.pedicle_width / (2 * np.cos(m)) + 0.3)
        axis = np.array([-sign * np.sin(m) * np.cos(c), -np.cos(m) * np.cos(c), np.sin(c)])
        out.append(
            PedicleGeometry(
                side, np.array([x, y, z]), axis, s.pedicle_width, s.pedicle_height, s.pedicle_medial, s.pedicle_cranial
            )
        )
    return out


def canal_cutter(s: LevelSpec, frame: Frame, extend: float = 22.0) -> EllipticTube:
    """The spinal canal through this level (an elliptic tube along local z)."""
    yc = s.depth / 2 - 1.5 + s.canal_depth / 2
    return EllipticTube(
        frame.compose(None, (0.0, yc, 0.0)), s.canal_width / 2, s.canal_depth / 2, s.height / 2 + extend, 0.0
    )


def junction(s: LevelSpec, ped: PedicleGeometry) -> np.ndarray:
    """Local point where pedicle, lamina, transverse and articular processes meet."""
    return ped.centre - 8.0 * ped.axis


def lamina_base(s: LevelSpec, sign: float) -> np.ndarray:
    """Local point on the lower lateral lamina, where the inferior process hangs."""
    yc = s.depth / 2 - 1.5 + s.canal_depth / 2
    return np.array([sign * (s.canal_width / 2 + 1.0), yc + s.canal_depth / 2 + 2.5, -s.height / 2 + 3.0])


def arch_parts(s: LevelSpec, frame: Frame) -> tuple[list[Shape], list[PedicleGeometry]]:
    """Pedicles, laminae, spinous and transverse processes of one lumbar vertebra."""
    parts: list[Shape] = []
    peds = pedicle_geometry(s)
    yc = s.depth / 2 - 1.5 + s.canal_depth / 2
    y_back = yc + s.canal_depth / 2  # posterior edge of the canal
    for ped in peds:
        sign = 1.0 if ped.side == "left" else -1.0
        R = basis_from_axis(ped.axis)
        r = 0.42 * min(ped.width, ped.height)
        parts.append(
            EllipticTube(frame.compose(R, ped.centre + 1.0 * ped.axis), ped.width / 2, ped.height / 2, 11.0, r)
        )
        j = junction(s, ped)
        # Transverse process: flat, slightly posterior and caudal towards its tip.
        tip = np.array([sign * s.transverse_span / 2, j[1] + 5.0, j[2] - 1.0])
        parts.append(
            _box_along(
                frame,
                j + (sign * 1.0, 0, 0),
                tip,
                s.transverse_thickness,
                s.transverse_height,
                min(2.8, s.transverse_thickness / 2.2),
            )
        )
        # Lamina: slopes posteromedially to the midline; lower edge more posterior.
        a = j + np.array([-sign * 1.5, 3.0, -5.0])
        b = np.array([0.0, y_back + 3.5, j[2] - 6.5])
        parts.append(_box_along(frame, a, b, 6.0, 19.0, 2.5, roll=-sign * 12.0, extra=2.0))
    # Spinous process: a hatchet-shaped plate inclined caudally, with a bulbous tip.
    base = np.array([0.0, y_back + 2.0, peds[0].centre[2] - 6.0])
    Rsp = rotation("x", -s.spinous_tilt)
    half = (s.spinous_thickness / 2, s.spinous_length / 2, s.spinous_height / 2)
    parts.append(RoundBox(frame.compose(Rsp, base + Rsp @ (0, s.spinous_length / 2, 0)), half, 2.5))
    tip = base + Rsp @ (0, s.spinous_length - 3.0, -1.0)
    parts.append(
        RoundBox(frame.compose(Rsp, tip), (s.spinous_thickness / 2 + 1.0, 4.0, s.spinous_height / 2 + 1.0), 3.5)
    )
    return parts, peds


@dataclass(frozen=True)
class FacetJoint:
    """A zygapophyseal joint defined in the lower vertebra's frame."""

    side: str
    centre: np.ndarray  # joint centre, local to the lower vertebra
    to_inferior: np.ndarray  # unit normal pointing from the superior (lower) process
    angle: float  # joint line vs the sagittal plane, deg


def facet_joint(lower: LevelSpec, sign: float, angle: float | None = None) -> FacetJoint:
    """Where the joint between ``lower`` and the vertebra above sits (lower frame).

    The joint line runs from anteromedial to posterolateral at ``angle`` to the
    sagittal plane; the inferior process of the upper vertebra lies posteromedial.
    """
    phi = np.radians(lower.facet_angle if angle is None else angle)
    ped_w = lower.pedicle_width if lower.pedicle_width > 0 else 17.0
    jx = lower.canal_width / 2 + 0.55 * ped_w + 1.0
    centre = np.array([sign * jx, lower.depth / 2 + 15.0, lower.height / 2 + 2.0])
    to_inf = np.array([-sign * np.cos(phi), np.sin(phi), 0.0])
    return FacetJoint("left" if sign > 0 else "right", centre, to_inf, float(np.degrees(phi)))


def _joint_cylinder(joint: FacetJoint, frame: Frame, radius: float, inside: bool) -> Cylinder:
    axis_point = frame.point(joint.centre + FACET_RADIUS * joint.to_inferior)
    return Cylinder(axis_point, frame.vector((0, 0, 1)), radius, inside=inside)


def superior_process(lower: LevelSpec, frame: Frame, joint: FacetJoint, anchor) -> list[Shape]:
    """Superior articular process of ``lower``; its facet is concave (J-shaped)."""
    n = -joint.to_inferior
    t = np.cross((0.0, 0.0, 1.0), n)
    R = np.column_stack([n, t, (0.0, 0.0, 1.0)])
    centre = joint.centre + 3.5 * n + np.array([0.0, 0.0, -4.0])
    block = RoundBox(frame.compose(R, centre), (5.5, 8.0, 10.0), 2.5)
    root = RoundCone(frame.point(anchor), frame.point(centre + 1.0 * n + (0, 0, -3.0)), 4.0, 4.0)
    # The root is cut by the joint surface too, so nothing of this process crosses it.
    cut = _joint_cylinder(joint, frame, FACET_RADIUS + FACET_GAP / 2, inside=False)
    return [Intersection(Union(block, root, k=2.0), cut)]


def inferior_process(lower_frame: Frame, joint: FacetJoint, upper: LevelSpec, upper_frame: Frame) -> list[Shape]:
    """Inferior articular process of the upper vertebra, convex into the joint, with
    the pars interarticularis joining it to the upper lamina."""
    n = joint.to_inferior
    t = np.cross((0.0, 0.0, 1.0), n)
    R = np.column_stack([n, t, (0.0, 0.0, 1.0)])
    centre = joint.centre + 3.2 * n + np.array([0.0, 0.0, 5.0])
    block = RoundBox(lower_frame.compose(R, centre), (4.5, 7.5, 9.0), 2.5)
    cut = _joint_cylinder(joint, lower_frame, FACET_RADIUS - FACET_GAP / 2, inside=True)
    sign = 1.0 if joint.side == "left" else -1.0
    top = lower_frame.point(centre + np.array([0.0, 0.0, 5.0]) + 1.5 * n)
    pars = RoundCone(top, upper_frame.point(lamina_base(upper, sign)), 4.5, 4.5)
    return [Intersection(block, cut), pars]
