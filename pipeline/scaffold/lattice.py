"""Periodic lattices as implicit fields: TPMS sheets and skeletons, strut lattices.

Every lattice is written the same way: a dimensionless scalar ``field`` over the
lattice's local frame (mm), periodic with the cell size ``L``, and the lattice is solid
where ``field < level``. The solid fraction therefore always grows with the level,
which is what lets one lookup table (:class:`PorosityLookup`) turn a porosity target
into a level for every lattice alike.

* TPMS, with ``X = 2*pi*x/L`` and the classic nodal approximations ``f(X, Y, Z)``:
  a **sheet** is solid where ``|f| < t`` (``field = |f|``, ``level = t``); a
  **skeletal** network is solid where ``f > t`` (``field = -f``, ``level = -t``).
* Strut lattices: ``field`` is the distance to the nearest strut axis in cell units
  (distance / L) and ``level`` is the strut radius / L.

The level for a porosity is never a formula: it is read from the empirical
distribution of the field over one finely sampled cell (:func:`porosity_lookup`), and
the scaffold stage then corrects it on the real clipped region (see ``calibrate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from itertools import product

import numpy as np

from pipeline.errors import InputError

TWO_PI = 2.0 * np.pi


# --- TPMS nodal functions over precomputed sines/cosines (separable evaluation) ---


def _gyroid(s, c):
    return s[0] * c[1] + s[1] * c[2] + s[2] * c[0]


def _schwarz_p(s, c):
    return c[0] + c[1] + c[2]


def _diamond(s, c):
    return s[0] * s[1] * s[2] + s[0] * c[1] * c[2] + c[0] * s[1] * c[2] + c[0] * c[1] * s[2]


def _neovius(s, c):
    return 3.0 * (c[0] + c[1] + c[2]) + 4.0 * c[0] * c[1] * c[2]


def _iwp(s, c):
    # cos 2X = 2 cos^2 X - 1 keeps the evaluation separable
    c2 = [2.0 * ci * ci - 1.0 for ci in c]
    return 2.0 * (c[0] * c[1] + c[1] * c[2] + c[2] * c[0]) - (c2[0] + c2[1] + c2[2])


TPMS = {"gyroid": _gyroid, "schwarz-p": _schwarz_p, "diamond": _diamond, "neovius": _neovius, "iwp": _iwp}


# --- strut cells, in cell units on [0, 1]^3 ---


def _cube_edges():
    corners = [np.array(c, float) for c in product((0, 1), repeat=3)]
    return [(a, b) for i, a in enumerate(corners) for b in corners[i + 1 :] if np.abs(a - b).sum() == 1]


def _bcc():
    centre = np.full(3, 0.5)
    return [(np.array(c, float), centre) for c in product((0, 1), repeat=3)]


def _octet():
    segs = []
    for ax in range(3):  # both diagonals of every face
        for side in (0.0, 1.0):
            u, v = [a for a in range(3) if a != ax]
            for flip in (False, True):
                a = np.zeros(3)
                b = np.zeros(3)
                a[ax] = b[ax] = side
                a[u], a[v] = 0.0, (1.0 if flip else 0.0)
                b[u], b[v] = 1.0, (0.0 if flip else 1.0)
                segs.append((a, b))
    faces = []  # octahedron joining face centres
    for ax in range(3):
        for side in (0.0, 1.0):
            p = np.full(3, 0.5)
            p[ax] = side
            faces.append(p)
    for i, a in enumerate(faces):
        for b in faces[i + 1 :]:
            if np.isclose(np.linalg.norm(a - b), np.sqrt(0.5)):
                segs.append((a, b))
    return segs


STRUTS = {"cubic": _cube_edges, "bcc": _bcc, "octet": _octet}


@dataclass(frozen=True)
class Lattice:
    """One lattice type.

    Attributes
    ----------
    name : str
        User-facing name, e.g. ``"gyroid-sheet"``, ``"schwarz-p-skeletal"``, ``"octet"``.
    family : str
        TPMS function name or strut topology.
    kind : str
        ``"sheet"``, ``"skeletal"`` or ``"strut"``.
    """

    name: str
    family: str
    kind: str

    def field(self, x, y, z, cell_mm: float) -> np.ndarray:
        """Dimensionless lattice field at local coordinates (mm); solid where < level.

        ``x, y, z`` are broadcastable arrays; 1-D arrays shaped ``(n,1,1)``,
        ``(1,n,1)``, ``(1,1,n)`` are evaluated separably (trigonometry on the axes only).
        Returns float32.
        """
        if self.kind == "strut":
            return _strut_field(self.family, x, y, z, cell_mm)
        k = np.float32(TWO_PI / cell_mm)
        axes = [np.asarray(a, dtype=np.float32) * k for a in (x, y, z)]
        s = [np.sin(a) for a in axes]
        c = [np.cos(a) for a in axes]
        f = TPMS[self.family](s, c)
        f = np.asarray(f, dtype=np.float32)
        return np.abs(f) if self.kind == "sheet" else np.negative(f)

    def level_to_parameter(self, level: float, cell_mm: float) -> dict:
        """The level in the words of the literature (TPMS ``t`` or strut radius mm)."""
        if self.kind == "strut":
            return {"strut_radius_mm": float(level) * cell_mm}
        if self.kind == "sheet":
            return {"tpms_t": float(level), "rule": "solid where |f| < t"}
        return {"tpms_t": -float(level), "rule": "solid where f > t"}


def lattice_names() -> list[str]:
    """All lattice names accepted by :func:`get_lattice`."""
    names = [f"{fam}-{kind}" for fam in TPMS for kind in ("sheet", "skeletal")]
    return names + list(STRUTS)


def get_lattice(name: str) -> Lattice:
    """Look a lattice up by name (case-insensitive); ``InputError`` if unknown.

    A bare TPMS family name (``"gyroid"``) is its skeletal network.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key in TPMS:
        # A bare TPMS name means the skeletal (network) solid, as in nTop and MSLattice.
        key = f"{key}-skeletal"
    if key in STRUTS:
        return Lattice(key, key, "strut")
    for kind in ("sheet", "skeletal"):
        if key.endswith("-" + kind) and key[: -len(kind) - 1] in TPMS:
            return Lattice(key, key[: -len(kind) - 1], kind)
    raise InputError(None, f"unknown lattice {name!r}; choose one of {', '.join(lattice_names())}")


# --- strut distance fields ---


@cache
def _strut_segments(family: str) -> tuple[np.ndarray, np.ndarray]:
    """Segments (a, b) of one cell that can be nearest to a point of [0, 1/2]^3.

    Points are folded into that octant (the three lattices are mirror-symmetric about
    every cell face), where a mirrored copy of a segment is never nearer than the
    segment itself. A greedy cover of a dense octant sample keeps only the segments
    needed to reproduce the nearest distance everywhere, which saves time.
    """
    segs = STRUTS[family]()
    a = np.array([s[0] for s in segs])
    b = np.array([s[1] for s in segs])
    g = np.linspace(0.0, 0.5, 41)
    q = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    d = np.stack([_segment_distance(q[:, 0], q[:, 1], q[:, 2], a[i], b[i]) for i in range(len(segs))])
    best = d.min(axis=0)
    nearest = d <= best + 1e-9
    keep: list[int] = []
    covered = np.zeros(best.shape, bool)
    while not covered.all():
        gain = (nearest & ~covered).sum(axis=1)
        i = int(np.argmax(gain))
        keep.append(i)
        covered |= nearest[i]
    keep.sort()
    return a[keep], b[keep]


def _segment_distance(x, y, z, a, b):
    d = b - a
    t = ((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / float(d @ d)
    t = np.clip(t, 0.0, 1.0)
    return np.sqrt((x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2)


def _strut_field(family, x, y, z, cell_mm):
    folded = []
    for v in (x, y, z):
        u = np.asarray(v, dtype=np.float32) / np.float32(cell_mm)
        folded.append(np.abs(u - np.round(u)))
    x, y, z = np.broadcast_arrays(*folded)
    a, b = _strut_segments(family)
    out = None
    for i in range(len(a)):
        d = _segment_distance(x, y, z, a[i].astype(np.float32), b[i].astype(np.float32))
        out = d if out is None else np.minimum(out, d, out=out)
    return out.astype(np.float32, copy=False)


# --- unit-cell sampling and the porosity <-> level lookup ---


def cell_sample(lattice: Lattice, n: int = 96) -> np.ndarray:
    """Field on ``n^3`` cell-centred points of one cell (cell size 1, float32)."""
    g = (np.arange(n, dtype=np.float64) + 0.5) / n
    return lattice.field(g[:, None, None], g[None, :, None], g[None, None, :], 1.0)


@dataclass(frozen=True, eq=False)
class PorosityLookup:
    """Porosity of the infinite lattice as a function of its level, and back.

    Built from the sorted field values of a finely sampled cell: the solid fraction at
    level ``l`` is the fraction of samples with ``field < l``.

    Attributes
    ----------
    levels : ndarray
        Field quantiles at ``solid`` fractions (strictly increasing).
    solid : ndarray
        Solid fractions 0..1 matching ``levels``.
    scale : float
        Mean |grad field| on the mid-porosity surface, per cell length: field units
        times ``cell_mm / scale`` is approximately a distance in mm near the surface.
    """

    levels: np.ndarray
    solid: np.ndarray
    scale: float

    def level(self, porosity):
        """Level giving ``porosity`` (fraction) in the infinite lattice."""
        return np.interp(1.0 - np.asarray(porosity, dtype=np.float64), self.solid, self.levels)

    def slope(self, level):
        """|d porosity / d level| at ``level`` (per field unit), smoothed; float32."""
        return np.interp(np.asarray(level, dtype=np.float32), self.levels.astype(np.float32), self._slope).astype(
            np.float32, copy=False
        )

    @cached_property
    def _slope(self) -> np.ndarray:
        d = np.gradient(self.solid, self.levels)
        # quantile spacing is noisy at this knot density; a short moving average is plenty
        k = np.ones(41) / 41.0
        return np.convolve(np.pad(d, 20, mode="edge"), k, mode="valid").astype(np.float32)

    def porosity(self, level):
        """Porosity (fraction) of the infinite lattice at ``level``; vectorised, float32."""
        sf = np.interp(
            np.asarray(level, dtype=np.float32), self.levels.astype(np.float32), self.solid.astype(np.float32)
        )
        return (np.float32(1.0) - sf).astype(np.float32, copy=False)


@cache
def porosity_lookup(name: str, log2_samples: int = 20, knots: int = 4001) -> PorosityLookup:
    """Calibrated porosity <-> level table of a lattice (cached per name).

    The field is sampled at scrambled Sobol points of one cell rather than on a grid:
    strut fields repeat exactly along the struts on a grid, which turns the empirical
    distribution into a staircase.
    """
    from scipy.stats import qmc

    lat = get_lattice(name)
    pts = qmc.Sobol(d=3, scramble=True, seed=12345).random_base2(log2_samples)
    f = lat.field(pts[:, 0], pts[:, 1], pts[:, 2], 1.0).astype(np.float64)
    solid = np.linspace(0.0, 1.0, knots)
    levels = np.quantile(f, solid, method="linear")
    # strictly increasing for np.interp; the nudge is far below any meaningful level step
    levels = levels + np.arange(knots) * 1e-9
    n = 64
    g = cell_sample(lat, n).astype(np.float64)
    grads = np.gradient(np.pad(g, 1, mode="wrap"), 1.0 / n)
    gmag = np.sqrt(sum(d[1:-1, 1:-1, 1:-1] ** 2 for d in grads))
    mid = levels[knots // 2]
    band = np.abs(g - mid) < 0.05 * (levels[-1] - levels[0])
    scale = float(np.median(gmag[band])) if band.any() else 1.0
    return PorosityLookup(levels=levels, solid=solid, scale=max(scale, 1e-6))
