"""The lumbar-spine anatomy as signed distances in LPS mm: T12 (with floating ribs),
L1-L5, the sacrum with iliac wings, and the discs between them.

Deliberate abnormalities, both recorded in the truth:

* L1 has an anterior wedge compression fracture: its superior endplate is cut by a
  plane through the intact endplate at 85 % of the body depth and 30 % of the
  anterior height below it at 15 % depth. The cut face is bone surface like any
  other, so it gets a cortical shell. The defect is the intact body minus the
  collapsed one.
* L3 has a bony spur (osteophyte) on its patient-LEFT (+x) superior anterolateral
  rim, part of L3's label: an asymmetric landmark for orientation tests.
"""

from __future__ import annotations

import numpy as np

from .distance import refine_distance
from .levels import DISCS, LABELS, LEVELS, MIN_GAP, build_frames, spec
from .pelvis import RIB_GAP, ilium_shape, rib_shape, sacrum_shape
from .shapes import (
    Frame,
    Function,
    HalfSpace,
    Intersection,
    RoundCone,
    Separated,
    Shape,
    Subtraction,
    Union,
    ellipse_2d_approx,
)
from .truthgeom import body_depth_points, ray_exit
from .vertebra import VertebralBody, arch_parts, canal_cutter, facet_joint, inferior_process, junction, superior_process

#: Fraction of the anterior body height lost by the L1 wedge fracture.
FRACTURE_LOSS = 0.30
FRACTURE_LEVEL = "L1"
SPUR_LEVEL = "L3"
#: Where the fracture plane is hinged and where the loss is measured (body depth).
DEPTHS = {"anterior": 0.15, "middle": 0.50, "posterior": 0.85}


class Disc(Shape):
    """Intervertebral disc filling the space between two endplates, bulging ~1 mm."""

    def __init__(
        self, upper: VertebralBody, lower: VertebralBody, lower_cut=None, bulge: float = 1.0, overlap: float = 0.8
    ):
        self.upper, self.lower, self.cut = upper, lower, lower_cut
        a = upper.frame.point((0, 0, -upper.H / 2))
        b = lower.frame.point((0, 0, lower.H / 2))
        u, _, vt = np.linalg.svd(upper.frame.R + lower.frame.R)
        self.mid = Frame(u @ vt, 0.5 * (a + b))
        self.a = 0.5 * (upper.W + lower.W) / 2 + bulge
        self.b = 0.5 * (upper.D + lower.D) / 2 + bulge
        self.endplate_overlap = overlap
        ext = np.array([self.a + 2, self.b + 2, np.linalg.norm(a - b) / 2 + 8])
        ext = np.abs(self.mid.R) @ ext
        self.lo, self.hi = self.mid.origin - ext, self.mid.origin + ext

    def sdf(self, p):
        q = self.mid.to_local(p)
        d2 = ellipse_2d_approx(q[:, 0], q[:, 1], self.a, self.b)
        ql = self.lower.frame.to_local(p)
        top, _ = self.lower.heights_local(ql[:, 0], ql[:, 1])
        g_low = ql[:, 2] - top
        if self.cut is not None:
            g_low = np.maximum(g_low, self.cut.sdf(p))
        qu = self.upper.frame.to_local(p)
        _, bottom = self.upper.heights_local(qu[:, 0], qu[:, 1])
        return np.maximum.reduce([d2, -g_low - self.endplate_overlap, qu[:, 2] - bottom - self.endplate_overlap])

    def nucleus(self) -> Shape:
        """The nucleus pulposus: the disc's central ~55 % (wetter, a little darker)."""

        def f(p):
            q = self.mid.to_local(p)
            return np.maximum(
                self.sdf(p), ellipse_2d_approx(q[:, 0], q[:, 1] - 0.1 * self.b, 0.55 * self.a, 0.5 * self.b)
            )

        return Function(f, self.lo, self.hi)


class SpineModel:
    """Signed-distance anatomy of the phantom (all coordinates LPS mm).

    Parameters
    ----------
    s1_centre : array_like, shape (3,)
        LPS position of the centre of the S1 body; the rest follows from the
        lordotic chain in :mod:`.levels`.

    Notes
    -----
    :meth:`vertebra_sdf` returns the Euclidean signed distance (negative inside),
    within ~0.01 mm for points within 3 mm of the surface (projection onto the zero
    level set, :func:`.distance.refine_distance`; checked against a 0.25-mm
    marching-cubes mesh in the tests: 99th percentile error < 0.05 mm, rare outliers
    up to ~1 mm at blended junctions of the L5 arch); beyond 4 mm the value is a
    lower bound of the distance.
    """

    def __init__(self, s1_centre=(1.5, 72.0, -560.0)):
        self.frames = build_frames(s1_centre)
        self.specs = {s.name: s for s in LEVELS}
        self.levels = tuple(s.name for s in LEVELS)
        self.label_values = dict(LABELS)
        self.intact_bodies: dict[str, VertebralBody] = {}
        self.bodies: dict[str, Shape] = {}
        self.pedicles = {}
        self.joints = {}
        self._build_vertebrae()
        self._build_other_bones()
        self._build_discs()

    # ------------------------------------------------------------------ building
    def _build_vertebrae(self):
        names = self.levels
        sacrum, s1_body, s1_joints = sacrum_shape(spec("S1"), self.frames["S1"])
        # The label S1 is the sacrum's first segment (TotalSegmentator's
        # vertebrae_S1): sacral bone below the S1 body's lower border (S2 on) is
        # bone but not this vertebra.
        f1 = self.frames["S1"]
        self.s1_lower_border = HalfSpace(f1.point((0.0, 0.0, -spec("S1").height / 2 - 0.5)), f1.R[:, 2])
        self.intact_bodies["S1"] = s1_body
        self.bodies["S1"] = s1_body
        self.joints["S1"] = s1_joints
        for name in names[:-1]:
            s, f = spec(name), self.frames[name]
            body = VertebralBody(f, s.width, s.depth, s.height, s.wedge)
            self.intact_bodies[name] = body
            self.bodies[name] = body
            self.joints[name] = [facet_joint(s, sg) for sg in (1.0, -1.0)]
        self._fracture()
        parts: dict[str, list[Shape]] = {n: [] for n in names}
        for name in names[:-1]:
            s, f = spec(name), self.frames[name]
            arch, peds = arch_parts(s, f)
            self.pedicles[name] = peds
            parts[name] += [self.bodies[name]] + arch
            for joint, ped in zip(self.joints[name], peds):
                parts[name] += superior_process(s, f, joint, junction(s, ped))
        for upper, lower in zip(names[:-1], names[1:]):
            for joint in self.joints[lower]:
                parts[upper] += inferior_process(self.frames[lower], joint, spec(upper), self.frames[upper])
        parts[SPUR_LEVEL].append(self._spur())
        self.raw: dict[str, Shape] = {}
        for name in names[:-1]:
            s, f = spec(name), self.frames[name]
            self.raw[name] = Subtraction(Union(*parts[name], k=2.0), canal_cutter(s, f))
        self.raw["S1"] = sacrum
        self.vertebrae: dict[str, Shape] = {}
        for upper, lower in zip(names[:-1], names[1:]):
            self.vertebrae[upper] = Separated(self.raw[upper], self.raw[lower], MIN_GAP)
        self.vertebrae["S1"] = self.raw["S1"]

    def _fracture(self):
        """Cut the L1 superior endplate (anterior wedge compression)."""
        body = self.intact_bodies[FRACTURE_LEVEL]
        up = body.frame.R[:, 2]
        pts = body_depth_points(body, DEPTHS)
        top_a = ray_exit(body, pts["anterior"], up)
        bot_a = ray_exit(body, pts["anterior"], -up)
        top_p = ray_exit(body, pts["posterior"], up)
        a = top_a - FRACTURE_LOSS * (top_a - bot_a)
        n = np.cross(top_p - a, body.frame.R[:, 0])
        if n @ up < 0:
            n = -n
        self.fracture_plane = HalfSpace(a, n)
        self.bodies[FRACTURE_LEVEL] = Intersection(body, self.fracture_plane)
        self.defect = Intersection(body, _Complement(self.fracture_plane))

    def _spur(self) -> Shape:
        """Osteophyte on the patient-left superior anterolateral rim of L3."""
        s, f = spec(SPUR_LEVEL), self.frames[SPUR_LEVEL]
        psi = np.radians(50.0)
        a, b = s.width / 2, s.depth / 2
        rim = np.array([a * np.sin(psi), -b * np.cos(psi), s.height / 2 - 1.0])
        out = np.array([np.sin(psi) / a, -np.cos(psi) / b, 0.0])
        out /= np.linalg.norm(out)
        base = rim - 6.0 * out - np.array([0, 0, 2.5])
        tip = rim + 6.5 * out + np.array([0, 0, 3.0])
        self.spur_tip = f.point(tip)
        self.spur_base = f.point(base)
        self.spur_shape = RoundCone(self.spur_base, self.spur_tip, 4.5, 1.8)
        return self.spur_shape

    def _build_other_bones(self):
        t12f = self.frames["T12"]
        self.ribs = {
            side: Separated(Separated(rib_shape(spec("T12"), t12f, sg), self.raw["T12"], RIB_GAP), self.raw["L1"], 2.0)
            for side, sg in (("left", 1.0), ("right", -1.0))
        }
        l4, l5 = self.frames["L4"], self.frames["L5"]
        crest_z = 0.5 * (l4.point((0, 0, -spec("L4").height / 2))[2] + l5.point((0, 0, spec("L5").height / 2))[2]) + 6.0
        self.ilia, self.gluteal = {}, {}
        for side, sg in (("left", 1.0), ("right", -1.0)):
            bone, muscles = ilium_shape(self.frames["S1"], sg, crest_z)
            self.ilia[side] = Separated(bone, self.raw["L5"], 3.0)
            self.gluteal[side] = muscles

    def _build_discs(self):
        self.discs = {}
        for upper, lower in DISCS:
            cut = self.fracture_plane if lower == FRACTURE_LEVEL else None
            self.discs[(upper, lower)] = Disc(self.intact_bodies[upper], self.intact_bodies[lower], cut)

    # ------------------------------------------------------------------ queries
    def bones(self) -> list[tuple[str, int, Shape]]:
        """Every bone as ``(name, label, shape)``; non-vertebral bones have label 0."""
        out = [(n, self.label_values[n], self.vertebrae[n]) for n in self.levels]
        out += [(f"rib_{s}", 0, r) for s, r in self.ribs.items()]
        out += [(f"ilium_{s}", 0, i) for s, i in self.ilia.items()]
        return out

    def _shape(self, level: str) -> Shape:
        if level in self.vertebrae:
            return self.vertebrae[level]
        for n, _, s in self.bones():
            if n == level:
                return s
        raise KeyError(f"unknown bone {level!r}; known: {', '.join(n for n, _, _ in self.bones())}")

    def vertebra_sdf(self, level: str, points, *, exact: bool = True) -> np.ndarray:
        """Signed distance (mm, negative inside) from LPS ``points`` (..., 3) to a bone.

        ``level`` is a vertebra name ("T12", "L1", ..., "S1") or another bone
        ("rib_left", "ilium_right", ...). With ``exact=False`` the raw model value is
        returned: correct sign, first-order accurate near the surface.
        """
        shape = self._shape(level)
        p = np.asarray(points, dtype=float)
        if exact:
            return refine_distance(shape, p)
        flat = p.reshape(-1, 3)
        return shape.culled(flat).reshape(p.shape[:-1])

    def body_sdf(self, level: str, points, *, intact: bool = False) -> np.ndarray:
        """Raw signed distance to a vertebral body alone (optionally before the fracture)."""
        shape = self.intact_bodies[level] if intact else self.bodies[level]
        return shape(np.asarray(points, float))

    def defect_sdf(self, points) -> np.ndarray:
        """Raw signed distance to the fracture defect (intact minus collapsed L1 body)."""
        return self.defect(np.asarray(points, float))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """LPS box containing every bone, mm."""
        shapes = [s for _, _, s in self.bones()]
        return np.min([s.lo for s in shapes], axis=0), np.max([s.hi for s in shapes], axis=0)


class _Complement(Shape):
    def __init__(self, shape: Shape):
        self.shape = shape

    def sdf(self, p):
        return -self.shape.sdf(p)
