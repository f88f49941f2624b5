"""Soft tissues around the spine and the patient table, as signed distances (LPS mm).

Placed relative to the spine so they follow its curve: psoas beside the bodies,
erector spinae behind the laminae, aorta anterior-left and inferior vena cava
anterior-right of the bodies (bifurcating at L4/L5), kidneys at T12-L2, thecal sac in
the canal, iliacus and gluteal muscles on either face of the iliac wings, bowel
anteriorly, subcutaneous fat and skin, and the patient lying supine on a foam pad
over a curved carbon-fibre table (posterior, +y).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

from .anatomy import SpineModel
from .levels import spec
from .shapes import (
    Ellipsoid,
    EllipticTube,
    Frame,
    Function,
    Intersection,
    Offset,
    RoundCone,
    Shape,
    Union,
    ellipse_2d_approx,
    rotation,
)

#: Thickness of the table's carbon-fibre skins, its total thickness and the pad, mm.
TABLE_SHELL, TABLE_THICKNESS, PAD_THICKNESS = 2.0, 30.0, 6.0
#: Radius of curvature of the table top (concave towards the patient), mm.
TABLE_RADIUS = 450.0
SKIN_MM = 2.0


class AxialTube(Shape):
    """A solid whose axial section at height z is an ellipse centred at ``(cx, cy)(z)``
    with semi-axes ``(a, b)(z)``, between ``z0`` and ``z1`` (parameters interpolated
    linearly between the sampled heights ``zs``, which must increase)."""

    def __init__(self, zs, cx, cy, a, b, z0=None, z1=None):
        self.zs = np.asarray(zs, float)
        self.cx, self.cy = np.asarray(cx, float), np.asarray(cy, float)
        self.a, self.b = np.asarray(a, float), np.asarray(b, float)
        self.z0 = self.zs[0] if z0 is None else float(z0)
        self.z1 = self.zs[-1] if z1 is None else float(z1)
        self.lo = np.array([np.min(self.cx - self.a), np.min(self.cy - self.b), self.z0])
        self.hi = np.array([np.max(self.cx + self.a), np.max(self.cy + self.b), self.z1])

    def sdf(self, p):
        z = p[:, 2]
        args = [np.interp(z, self.zs, v) for v in (self.cx, self.cy, self.a, self.b)]
        d2 = ellipse_2d_approx(p[:, 0] - args[0], p[:, 1] - args[1], args[2], args[3])
        dz = np.maximum(self.z0 - z, z - self.z1)
        return np.where(dz > 0, np.sqrt(np.maximum(d2, 0) ** 2 + dz**2), np.maximum(d2, dz))


class Table:
    """Curved table top (concave towards the patient) and the pad lying on it."""

    def __init__(self, y_pad_top: float, x_centre: float = 0.0, half_width: float = 240.0):
        self.y0, self.xc, self.hw = float(y_pad_top), float(x_centre), float(half_width)

    def _sag(self, x):
        dx = np.clip(x - self.xc, -0.95 * TABLE_RADIUS, 0.95 * TABLE_RADIUS)
        return TABLE_RADIUS - np.sqrt(TABLE_RADIUS**2 - dx * dx)

    def pad_top(self, x):
        """y (mm) of the pad's upper surface (where the patient's back lies)."""
        return self.y0 - self._sag(x)

    def _slab(self, y0_offset: float, thickness: float) -> Shape:
        def f(p):
            s = p[:, 1] - (self.pad_top(p[:, 0]) + y0_offset)
            return np.maximum.reduce([-s, s - thickness, np.abs(p[:, 0] - self.xc) - self.hw])

        lo = [self.xc - self.hw, self.y0 - self._sag(self.hw) + y0_offset, -np.inf]
        hi = [self.xc + self.hw, self.y0 + y0_offset + thickness, np.inf]
        return Function(f, lo, hi)

    def pad(self) -> Shape:
        return self._slab(0.0, PAD_THICKNESS)

    def board(self) -> Shape:
        return self._slab(PAD_THICKNESS, TABLE_THICKNESS)


class BodyModel:
    """Soft tissues of the lower trunk built around a :class:`SpineModel`.

    Attributes are :class:`~.shapes.Shape` objects in LPS mm; :meth:`regions` lists
    them in priority order for the image synthesis.
    """

    def __init__(self, spine: SpineModel, skin_back_y: float | None = None):
        self.spine = spine
        fr = spine.frames
        names = list(spine.levels)
        # Anchor rows from S1 (bottom) to T12 (top), extended so tissues run through
        # the whole field of view.
        z = np.array([fr[n].origin[2] for n in names][::-1])
        cx = np.array([fr[n].origin[0] for n in names][::-1])
        cy = np.array([fr[n].origin[1] for n in names][::-1])
        front = np.array([fr[n].point((0, -spec(n).depth / 2, 0))[1] for n in names][::-1])
        half_w = np.array([spec(n).width / 2 for n in names][::-1])
        z = np.concatenate([[z[0] - 200.0, z[0] - 45.0], z, [z[-1] + 200.0]])
        cx = np.concatenate([[cx[0], cx[0]], cx, [cx[-1]]])
        cy = np.concatenate([[cy[0] + 45.0, cy[0] + 18.0], cy, [cy[-1] + 10.0]])
        front = np.concatenate([[front[0] + 60.0, front[0] + 22.0], front, [front[-1] + 10.0]])
        half_w = np.concatenate([[half_w[0] * 0.6, half_w[0] * 0.85], half_w, [half_w[-1]]])
        self.z_anchor = z
        self._cx = PchipInterpolator(z, cx)
        self._cy = PchipInterpolator(z, cy)
        self._front = PchipInterpolator(z, front)
        self._half_w = PchipInterpolator(z, half_w)
        lo, hi = spine.bounds()
        self.z_lo, self.z_hi = lo[2], hi[2]
        if skin_back_y is None:
            skin_back_y = self._posterior_bone_y() + 16.0
        self.skin_back_y = skin_back_y
        self.table = Table(skin_back_y, x_centre=float(cx.mean()))
        self._build()

    def _posterior_bone_y(self) -> float:
        """Most posterior bone surface (spinous tips, sacrum, iliac tuberosities)."""
        lo, hi = self.spine.bounds()
        ys = np.arange(lo[1], hi[1] + 1, 1.0)[::-1]
        xs = np.arange(-60, 61, 2.0)
        zs = np.arange(lo[2], hi[2], 2.0)
        for y in ys:
            g = np.stack(np.meshgrid(xs, [y], zs, indexing="ij"), -1).reshape(-1, 3)
            if any((s.culled(g) < 0).any() for _, _, s in self.spine.bones()):
                return float(y)
        return float(hi[1])

    def samples(self, step: float = 4.0):
        zs = np.arange(self.z_anchor[0], self.z_anchor[-1] + step, step)
        return zs, self._cx(zs), self._cy(zs), self._front(zs), self._half_w(zs)

    def _build(self):
        zs, cx, cy, front, half_w = self.samples()
        sp = self.spine
        s1_top = sp.frames["S1"].point((0, 0, spec("S1").height / 2))[2]
        # Trunk outline: wider over the pelvis, flattened where the back meets the pad.
        pelvis = np.clip((s1_top + 30.0 - zs) / 60.0, 0, 1)
        A = 158.0 + 20.0 * pelvis
        B = np.full_like(zs, 112.0)
        yc = self.skin_back_y - B + 14.0
        ellipse = AxialTube(zs, np.full_like(zs, cx.mean()), np.full_like(zs, yc[0]), A, B)
        table = self.table

        def trunk(p):
            return np.maximum(ellipse.sdf(p), p[:, 1] - table.pad_top(p[:, 0]))

        self.trunk = Function(trunk, ellipse.lo, ellipse.hi)
        self.skin = _Band(self.trunk, SKIN_MM)
        self.subcutaneous = _Band(self.trunk, 18.0)
        inner = Offset(self.trunk, -18.0)
        # Erector spinae + multifidus: from the laminae back to the subcutaneous fat,
        # split at the midline by the interspinous ligament and fat.
        lam_y = cy + 0.5 * np.array([spec("L3").depth]) + 14.0
        back = self.skin_back_y - 18.0
        muscles = []
        for sg in (1.0, -1.0):
            b = np.maximum((back - lam_y) / 2 + 6.0, 8.0)
            muscles.append(AxialTube(zs, cx + sg * 34.0, lam_y + b - 6.0, np.full_like(zs, 31.0), b))
        self.paraspinal = Intersection(
            Union(*muscles),
            inner,
            Function(lambda p: 2.5 - np.abs(p[:, 0] - self._cx(p[:, 2])), [-np.inf] * 3, [np.inf] * 3),
        )
        # Psoas: thin at T12/L1, ~25 mm radius at L4-L5, moving anterolaterally below.
        l1z, l5z = sp.frames["L1"].origin[2], sp.frames["L5"].origin[2]
        grow = np.clip((l1z + 10.0 - zs) / (l1z - l5z), 0, 1.25)
        r_ps = 6.0 + 16.0 * grow
        below = np.clip((l5z - zs) / 60.0, 0, 1)
        psoas = []
        for sg in (1.0, -1.0):
            x = cx + sg * (half_w + r_ps - 3.0 + 18.0 * below)
            y = cy + 4.0 - 0.4 * r_ps - 20.0 * below
            psoas.append(AxialTube(zs, x, y, r_ps * 1.05, r_ps * 0.9, z1=sp.frames["T12"].origin[2] - 5.0))
        self.psoas = Union(*psoas)
        # Quadratus lumborum, lateral to the transverse processes, T12 to the iliac crest.
        ql = [
            AxialTube(
                zs,
                cx + sg * 70.0,
                lam_y - 8.0,
                np.full_like(zs, 16.0),
                np.full_like(zs, 9.0),
                z0=sp.frames["L5"].origin[2],
                z1=sp.frames["T12"].origin[2],
            )
            for sg in (1.0, -1.0)
        ]
        self.quadratus = Union(*ql)
        self._vessels(zs, cx, front)
        self._kidneys()
        self._canal()
        self._pelvic_muscles()
        # Bowel and mesenteric fat fill the abdomen in front of the vessels.
        self.bowel = Intersection(
            inner, Function(lambda p: p[:, 1] - (self._front(p[:, 2]) - 38.0), [-np.inf] * 3, [np.inf] * 3)
        )
        self.fat = self.trunk

    def _vessels(self, zs, cx, front):
        sp = self.spine
        levels = ["T12", "L1", "L2", "L3", "L4"]
        pts = []
        for n in levels:
            z = sp.frames[n].origin[2]
            pts.append(np.array([float(self._cx(z)) + 17.0, float(self._front(z)) - 13.0, z]))
        top = pts[0] + np.array([0.0, 2.0, 60.0])
        aorta = [RoundCone(a, b, 11.0, 10.5) for a, b in zip([top] + pts[:-1], pts)]
        bif = pts[-1]
        s1 = sp.frames["S1"].origin
        iliacs = [
            RoundCone(bif, np.array([s1[0] + sg * 40.0, bif[1] + 10.0, s1[2] - 5.0]), 6.5, 5.5) for sg in (1.0, -1.0)
        ]
        self.aorta = Union(*aorta, *iliacs, k=4.0)
        # Calcified plaques on the posterior-left aortic wall (elderly patient).
        plaques = []
        for i, n in enumerate(["L2", "L3", "L3", "L4"]):
            z = sp.frames[n].origin[2] - 6.0 * i
            c = np.array([float(self._cx(z)) + 17.0, float(self._front(z)) - 13.0, z])
            ang = np.radians(40.0 + 35.0 * i)
            d = np.array([np.sin(ang), np.cos(ang), 0.0])
            plaques.append(RoundCone(c + 10.3 * d, c + 10.3 * d + np.array([0, 0, 5.0 + i]), 1.3, 1.1))
        self.calcification = Union(*plaques)
        ivc = []
        for n in ["T12", "L1", "L2", "L3", "L4", "L5"]:
            z = sp.frames[n].origin[2]
            ivc.append(np.array([float(self._cx(z)) - 21.0, float(self._front(z)) - 10.0, z]))
        top = ivc[0] + np.array([0.0, 0.0, 60.0])
        veins = [RoundCone(a, b, 11.5, 11.0) for a, b in zip([top] + ivc[:-1], ivc)]
        conf = ivc[-1]
        veins += [
            RoundCone(conf, np.array([s1[0] + sg * 38.0, conf[1] + 12.0, s1[2] - 25.0]), 8.0, 7.0) for sg in (1.0, -1.0)
        ]
        self.ivc = Union(*veins, k=4.0)

    def _kidneys(self):
        sp = self.spine
        out = []
        for sg, dz in ((1.0, 12.0), (-1.0, -8.0)):
            z = sp.frames["L1"].origin[2] + dz
            c = np.array([float(self._cx(z)) + sg * 78.0, float(self._front(z)) + 14.0, z])
            R = rotation("z", -sg * 25.0) @ rotation("y", sg * 12.0)
            out.append(Ellipsoid(Frame(R, c), (27.0, 22.0, 52.0)))
        self.kidneys = Union(*out)

    def _canal(self):
        """Canal contents: thecal sac (CSF) inside epidural fat, following each level."""
        sp = self.spine
        canal, sac = [], []
        for n in sp.levels:
            s, f = spec(n), sp.frames[n]
            yc = s.depth / 2 - 1.5 + s.canal_depth / 2
            ext = s.height / 2 + 9.0
            canal.append(
                EllipticTube(
                    f.compose(None, (0.0, yc, 0.0)),
                    s.canal_width / 2,
                    s.canal_depth / 2,
                    ext + (10.0 if n == "S1" else 0.0),
                    2.0,
                )
            )
            if n != "S1":
                sac.append(
                    EllipticTube(
                        f.compose(None, (0.0, yc - 0.5, 0.0)), 0.36 * s.canal_width, 0.36 * s.canal_depth, ext, 2.0
                    )
                )
        f = sp.frames["S1"]
        sac.append(EllipticTube(f.compose(None, (0.0, spec("S1").depth / 2 + 5.0, 2.0)), 7.0, 4.5, 10.0, 3.0))
        self.canal = Union(*canal, k=4.0)
        self.thecal_sac = Union(*sac, k=4.0)

    def _pelvic_muscles(self):
        """Iliacus lines the iliac fossa; gluteus medius covers the outer wing."""
        self.pelvic_muscle = Union(*self.spine.gluteal.values())

    def regions(self) -> list[tuple[str, Shape]]:
        """Soft-tissue regions in priority order (first match wins), after the bones."""
        return [
            ("skin", self.skin),
            ("subcutaneous_fat", self.subcutaneous),
            ("calcification", self.calcification),
            ("aorta", self.aorta),
            ("ivc", self.ivc),
            ("kidney", self.kidneys),
            ("psoas", self.psoas),
            ("muscle", self.paraspinal),
            ("muscle", self.quadratus),
            ("muscle", self.pelvic_muscle),
            ("bowel", self.bowel),
            ("fat", self.fat),
        ]


class _Band(Shape):
    """The outer ``width`` mm of a solid."""

    def __init__(self, shape: Shape, width: float):
        self.shape, self.w = shape, float(width)
        self.lo, self.hi = shape.lo, shape.hi

    def sdf(self, p):
        f = self.shape.sdf(p)
        return np.maximum(f, -self.w - f)
