"""Functional grading: a porosity target that varies with position.

Two forms, both as porosity targets (fractions), never as raw lattice levels:

* ``linear`` along a patient direction: porosity goes from ``start`` at the region's
  extreme in the opposite direction to ``end`` at its extreme in that direction.
* ``boundary``: ``start`` where the region meets bone (its boundary), ``end`` at
  ``depth_mm`` inside and beyond (default: the region's deepest point), e.g. 0.6 at
  the bone -> 0.8 in the centre, denser where load passes into the bone.

The local lattice level is then read from the lattice's calibrated porosity lookup,
and one global shift (solved on the clipped region) corrects what the lookup misses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.errors import InputError

# +x patient Left, +y Posterior, +z Superior (LPS)
DIRECTIONS = {
    "L": (1.0, 0.0, 0.0),
    "R": (-1.0, 0.0, 0.0),
    "P": (0.0, 1.0, 0.0),
    "A": (0.0, -1.0, 0.0),
    "S": (0.0, 0.0, 1.0),
    "I": (0.0, 0.0, -1.0),
}


@dataclass(frozen=True)
class PorosityGrading:
    """Porosity as a function of position.

    Attributes
    ----------
    kind : str
        ``"linear"`` or ``"boundary"``.
    start, end : float
        Porosity (fraction) at the start and end of the ramp.
    direction : tuple of 3 floats
        Unit LPS vector of the linear ramp (ignored for ``boundary``).
    depth_mm : float, optional
        Ramp length inward from the boundary (``boundary`` only); None = region depth.
    """

    kind: str
    start: float
    end: float
    direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    depth_mm: float | None = None

    def __post_init__(self):
        if self.kind not in ("linear", "boundary"):
            raise InputError(None, f"grading must be 'linear' or 'boundary', got {self.kind!r}")
        for p in (self.start, self.end):
            if not (0.0 < p < 1.0):
                raise InputError(None, f"graded porosity must be between 0 and 1, got {p}")
        d = np.asarray(self.direction, float)
        if d.shape != (3,) or not np.isfinite(d).all() or np.linalg.norm(d) == 0:
            raise InputError(None, "grading direction must be a non-zero 3-vector")
        object.__setattr__(self, "direction", tuple(float(v) for v in d / np.linalg.norm(d)))
        if self.depth_mm is not None and not (self.depth_mm > 0 and math.isfinite(self.depth_mm)):
            raise InputError(None, f"grading depth must be > 0 mm, got {self.depth_mm}")

    @property
    def porosity_range(self) -> tuple[float, float]:
        return min(self.start, self.end), max(self.start, self.end)

    def resolve(self, region) -> PorosityGrading:
        """Copy with everything that depends on the region fixed (boundary depth)."""
        if self.kind == "boundary" and self.depth_mm is None:
            return PorosityGrading(self.kind, self.start, self.end, self.direction, region.depth_mm())
        return self

    def porosity_xyz(self, x, y, z, sdf, region_bounds) -> np.ndarray:
        """Target porosity at broadcastable LPS coordinates (float32).

        ``sdf`` is the region's signed distance there (mm); ``region_bounds`` its LPS
        bounding box, which fixes the ends of a linear ramp.
        """
        if self.kind == "boundary":
            depth = self.depth_mm
            frac = np.clip(-np.asarray(sdf, np.float32) / np.float32(depth), 0.0, 1.0)
        else:
            d = np.asarray(self.direction)
            lo, hi = (np.asarray(b, float) for b in region_bounds)
            corners = lo + np.array(list(np.ndindex(2, 2, 2))) * (hi - lo)
            proj = corners @ d
            a, b = proj.min(), proj.max()
            s = d[0] * x + d[1] * y + d[2] * z
            frac = np.clip((s - a) / (b - a), 0.0, 1.0).astype(np.float32)
        return (np.float32(self.start) + np.float32(self.end - self.start) * frac).astype(np.float32)

    def describe(self) -> dict:
        out = {"kind": self.kind, "porosity_start": self.start, "porosity_end": self.end}
        if self.kind == "linear":
            out["direction_lps"] = list(self.direction)
        else:
            out["depth_mm"] = self.depth_mm
        return out


def parse_grading(spec: str) -> PorosityGrading:
    """Parse ``"linear:S,0.6,0.8"`` (direction letter L/R/P/A/S/I or ``x,y,z``) or
    ``"boundary:0.6,0.8[,depth_mm]"`` into a :class:`PorosityGrading`."""
    text = str(spec).strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    parts = [p.strip() for p in rest.split(",")] if rest else []
    usage = "expected linear:DIR,P_START,P_END (DIR one of L,R,P,A,S,I) or boundary:P_BONE,P_CENTRE[,DEPTH_MM]"
    try:
        if kind == "linear" and len(parts) == 3 and parts[0].upper() in DIRECTIONS:
            return PorosityGrading("linear", float(parts[1]), float(parts[2]), DIRECTIONS[parts[0].upper()])
        if kind == "linear" and len(parts) == 5:
            v = tuple(float(p) for p in parts[:3])
            return PorosityGrading("linear", float(parts[3]), float(parts[4]), v)
        if kind == "boundary" and len(parts) in (2, 3):
            depth = float(parts[2]) if len(parts) == 3 else None
            return PorosityGrading("boundary", float(parts[0]), float(parts[1]), depth_mm=depth)
    except ValueError:
        pass
    raise InputError(None, f"bad grading {text!r}: {usage}")
