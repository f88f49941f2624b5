"""Sacrum (S1 with its alae and part of S2), iliac wings with sacroiliac joints, and
the floating 12th ribs.

The sacroiliac joint is a plane in the S1 frame: the sacrum keeps the medial side,
each ilium the lateral side, ``SI_GAP`` mm apart, so the two bones never touch but
blur together on CT, which is what makes "separate spine from pelvis" a real task.
Sacral and iliac dimensions follow Gray's Anatomy (41st ed., ch. 72-73) and the
auricular-surface orientation of Vleeming A et al., J Anat 221:537-567, 2012;
12th-rib length (~10 cm, floating) from Gray's Anatomy ch. 53.
"""

from __future__ import annotations

import numpy as np

from .levels import LevelSpec
from .shapes import (
    Cylinder,
    EllipticTube,
    Frame,
    HalfSpace,
    Intersection,
    Offset,
    RoundBox,
    RoundCone,
    Shape,
    Subtraction,
    Union,
    rotation,
)
from .vertebra import VertebralBody, facet_joint, superior_process

#: Sacroiliac joint space, mm.
SI_GAP = 2.0
#: Costovertebral joint space of the 12th rib, mm.
RIB_GAP = 1.5


def si_plane(frame: Frame, sign: float) -> HalfSpace:
    """Half-space on the sacrum's side of one sacroiliac joint (mid-joint plane).

    The joint line converges posteriorly (the sacrum is a keystone, wider in front)
    at ~20 deg to the sagittal plane, and its normal dips ~12 deg caudally (wider
    above).
    """
    phi, psi = np.radians(20.0), np.radians(12.0)
    n = np.array([sign * np.cos(phi) * np.cos(psi), np.sin(phi) * np.cos(psi), -np.sin(psi)])
    return HalfSpace(frame.point((sign * 46.0, 6.0, -14.0)), frame.vector(n))


def sacrum_shape(s1: LevelSpec, frame: Frame) -> tuple[Shape, VertebralBody, list]:
    """The sacrum (label S1) before the joint cuts with L5 are applied.

    Returns
    -------
    sacrum : Shape
        S1 body fused with S2, alae, lateral masses, fused laminae, median crest and
        superior articular processes, with the sacral canal and S1 foramina removed and
        cut at both sacroiliac joints.
    body : VertebralBody
        The S1 body alone (endplate, heights).
    joints : list of FacetJoint
        The L5-S1 facet joints (S1 frame), for L5's inferior processes.
    """
    body = VertebralBody(frame, s1.width, s1.depth, s1.height, s1.wedge, waist=1.0, rim=2.0)
    f2 = frame.compose(rotation("x", -15.0), (0.0, 3.0, -s1.height / 2 - 13.0))
    s2 = VertebralBody(f2, 42.0, 30.0, 24.0, 0.0, waist=0.5, rim=3.0)
    parts: list[Shape] = [body, s2]
    joints = []
    for sign in (1.0, -1.0):
        ala = RoundBox(frame.compose(rotation("y", -sign * 12.0), (sign * 37.0, 5.0, -8.0)), (16.0, 18.0, 19.0), 7.0)
        mass2 = RoundBox(frame.compose(rotation("x", -10.0), (sign * 31.0, 12.0, -38.0)), (13.0, 14.0, 13.0), 6.0)
        joint = facet_joint(s1, sign)
        joints.append(joint)
        anchor = np.array([sign * (s1.canal_width / 2 + 5.0), s1.depth / 2 + 9.0, s1.height / 2 - 7.0])
        parts += [ala, mass2] + superior_process(s1, frame, joint, anchor)
    yb = s1.depth / 2 + 15.0
    parts.append(RoundBox(frame.compose(rotation("x", 8.0), (0.0, yb, -16.0)), (25.0, 5.0, 27.0), 4.0))
    parts.append(RoundBox(frame.compose(rotation("x", 8.0), (0.0, yb + 6.0, -14.0)), (4.0, 5.0, 20.0), 3.0))
    raw = Union(*parts, k=4.0)
    holes: list[Shape] = [
        EllipticTube(
            frame.compose(None, (0.0, s1.depth / 2 - 1.5 + s1.canal_depth / 2, -20.0)),
            s1.canal_width / 2,
            s1.canal_depth / 2,
            55.0,
            0.0,
        )
    ]
    for sign in (1.0, -1.0):
        holes.append(
            EllipticTube(
                frame.compose(rotation("x", 90.0), (sign * 23.0, 0.0, -s1.height / 2 - 7.0)), 4.5, 4.0, 40.0, 0.0
            )
        )
    cut = Subtraction(raw, *holes)
    sacrum = Intersection(cut, *[_shifted(si_plane(frame, sg), -SI_GAP / 2) for sg in (1.0, -1.0)])
    return sacrum, body, joints


def _shifted(h: HalfSpace, d: float) -> HalfSpace:
    """The half-space moved by ``d`` mm along its normal."""
    return HalfSpace(h.point + d * h.normal, h.normal)


def ilium_shape(frame: Frame, sign: float, crest_z: float) -> tuple[Shape, Shape]:
    """One ilium near the sacroiliac joint: auricular part, tuberosity and wing.

    Parameters
    ----------
    frame : Frame
        The S1 frame.
    sign : float
        +1 for the patient's left ilium.
    crest_z : float
        World z (LPS mm) of the top of the iliac crest.

    Returns
    -------
    bone : Shape
    muscles : Shape
        Envelope of the iliacus (inner face) and gluteal muscles (outer face) and of
        the ligaments behind the joint: the bone grown by ~12-15 mm.
    """
    plane = si_plane(frame, sign)
    n = plane.normal
    q = plane.point
    up = frame.vector((0, 0, 1))
    t = np.cross(up, n)
    t /= np.linalg.norm(t)
    R = np.column_stack([n, t, np.cross(n, t)])
    auricular = RoundBox(Frame(R, q + 13.0 * n + 3.0 * t * sign), (12.0, 24.0, 30.0), 8.0)
    tuber = RoundBox(frame.compose(rotation("x", 8.0), (sign * 52.0, 38.0, -4.0)), (11.0, 10.0, 25.0), 6.0)
    # Wing: a 6-mm curved plate, concave towards the iliac fossa (anteromedial).
    o = frame.origin
    p1 = o + np.array([sign * 58.0, 14.0, 0.0])
    p2 = o + np.array([sign * 112.0, -42.0, 0.0])
    mid = 0.5 * (p1 + p2)
    chord = p2 - p1
    inward = np.array([-chord[1], chord[0], 0.0]) * sign
    inward /= np.linalg.norm(inward)
    if inward[0] * sign > 0:
        inward = -inward
    radius = 85.0
    half_chord = np.linalg.norm(chord) / 2
    axis_pt = mid + inward * np.sqrt(radius**2 - half_chord**2)
    # The wing flares laterally towards the crest.
    shell = _Shell(Cylinder(axis_pt, (0.3 * sign, 0.08 * sign, 1.0), radius), 3.0)
    z_lo = o[2] - 70.0
    zc = 0.5 * (crest_z + z_lo)
    e1 = chord / np.linalg.norm(chord)
    Rb = np.column_stack([e1, np.cross((0, 0, 1.0), e1), (0, 0, 1.0)])
    bound = RoundBox(Frame(Rb, np.array([mid[0], mid[1], zc])), (half_chord + 12.0, 25.0, (crest_z - z_lo) / 2), 10.0)
    wing = Intersection(shell, bound)
    crest = RoundCone(np.array([p1[0], p1[1], crest_z - 12.0]), np.array([p2[0], p2[1], crest_z - 8.0]), 6.0, 5.0)
    raw = Union(auricular, tuber, wing, crest, k=6.0)
    lateral = HalfSpace(plane.point + (SI_GAP / 2) * n, -n)
    bound_m = RoundBox(bound.frame, bound.half + np.array([0.0, 15.0, 0.0]), 10.0)
    muscles = Union(
        Offset(auricular, 10.0), Offset(tuber, 12.0), Intersection(_Shell(shell.surface, 18.0), bound_m), k=6.0
    )
    return Intersection(raw, lateral), muscles


class _Shell(Shape):
    """A surface thickened by ``half`` mm on both sides."""

    def __init__(self, surface: Shape, half: float):
        self.surface, self.half = surface, float(half)

    def sdf(self, p):
        return np.abs(self.surface.sdf(p)) - self.half


def rib_shape(t12: LevelSpec, frame: Frame, sign: float) -> Shape:
    """A floating 12th rib: head against the T12 body, running laterally, posteriorly
    then anteriorly and caudally, ~105 mm long, tapering from 5.5 to 3 mm radius."""
    w, d = t12.width / 2, t12.depth / 2
    pts = [
        (w - 5.0, d - 7.0, 4.0),
        (w + 10.0, d + 7.0, -1.0),
        (w + 32.0, d + 17.0, -11.0),
        (w + 57.0, d + 14.0, -26.0),
        (w + 78.0, d - 2.0, -44.0),
    ]
    radii = [5.5, 4.5, 4.2, 3.8, 3.0]
    world = [frame.point((sign * x, y, z)) for x, y, z in pts]
    segs = [RoundCone(world[i], world[i + 1], radii[i], radii[i + 1]) for i in range(len(pts) - 1)]
    return Union(*segs, k=2.0)
