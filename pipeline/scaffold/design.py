"""The scaffold as one implicit field: lattice, region, grading and rim together.

``ScaffoldDesign`` is pure data; evaluating it anywhere gives a distance-like field
in mm, negative in the solid (:meth:`ScaffoldDesign.solid_xyz`), or negative in the
pore space inside the region (:meth:`ScaffoldDesign.pore_xyz`). Marching cubes,
calibration and measurement all sample this same field, so what is measured is what
is printed.

How the pieces combine (per point, fields in porosity terms so grading and rim are
just thresholds):

* target porosity ``p(x)`` (uniform or graded) plus the calibration ``shift``;
* rim: within ``rim_mm`` of the region boundary the lattice is thickened to
  ``vent_fraction`` of its local porosity, so the rim is dense but stays perforated
  by the lattice's own pore channels (vents) and never seals the pores;
* lattice solid where ``field < level(s(x) * (p(x) + shift))`` with ``level`` the
  lattice's calibrated porosity lookup;
* clipped to the region by ``max(lattice_mm, region_sdf)``: the lattice part is
  scaled from field units to approximate mm, so near the clip both are distances and
  marching cubes places the crease well.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from pipeline.scaffold.grading import PorosityGrading
from pipeline.scaffold.grid import SamplingGrid
from pipeline.scaffold.lattice import Lattice, PorosityLookup, porosity_lookup
from pipeline.scaffold.region import Region


@dataclass(frozen=True, eq=False)
class ScaffoldDesign:
    """Everything that defines the scaffold's geometry.

    Attributes
    ----------
    region : Region
    lattice : Lattice
    cell_mm : float
        Lattice period L, mm.
    porosity : float
        Uniform porosity target (fraction); unused when ``grading`` is given.
    grading : PorosityGrading, optional
        Position-dependent porosity target (already resolved against the region).
    rim_mm : float
        Thickness of the dense, vented rim along the region boundary, mm (0 = none).
    vent_fraction : float
        Fraction of the local porosity left open through the rim (0 < v <= 1).
    shift : float
        Porosity shift solved by calibration, added to every local target.
    origin : ndarray (3,)
        LPS point where the lattice's local coordinates are zero.
    rotation : ndarray (3, 3)
        Columns: the lattice axes in LPS.
    """

    region: Region
    lattice: Lattice
    cell_mm: float
    porosity: float = 0.7
    grading: PorosityGrading | None = None
    rim_mm: float = 0.0
    vent_fraction: float = 0.4
    shift: float = 0.0
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    @cached_property
    def lookup(self) -> PorosityLookup:
        return porosity_lookup(self.lattice.name)

    @cached_property
    def _bounds(self):
        return self.region.bounds()

    @property
    def mm_per_field(self) -> float:
        """Field units to approximate mm near the lattice surface."""
        return self.cell_mm / self.lookup.scale

    def with_shift(self, shift: float) -> ScaffoldDesign:
        return replace(self, shift=float(shift))

    def porosity_range(self) -> tuple[float, float]:
        """Lowest and highest local porosity target (before the shift)."""
        if self.grading is None:
            return self.porosity, self.porosity
        return self.grading.porosity_range

    # --- the pieces at arbitrary points ---

    def parts_xyz(self, x, y, z, local=None):
        """Region distance, lattice field, target porosity and rim factor.

        Parameters
        ----------
        x, y, z : array_like
            Broadcastable LPS coordinates, mm.
        local : tuple of 3 arrays, optional
            The same points in lattice coordinates (separable grids pass 1-D axes).

        Returns
        -------
        sdf : float32 array, mm (negative inside the region)
        lattice_field : float32 array, field units
        porosity : float or float32 array, local target without the shift
        rim_factor : float or float32 array, 1 away from the rim, ``vent_fraction`` in it
        """
        sdf = self.region.sdf_xyz(x, y, z)
        if local is None:
            r, o = self.rotation, self.origin
            local = tuple(r[0, c] * (x - o[0]) + r[1, c] * (y - o[1]) + r[2, c] * (z - o[2]) for c in range(3))
        lat = self.lattice.field(*local, self.cell_mm)
        if self.grading is None:
            p = np.float32(self.porosity)
        else:
            p = np.broadcast_to(self.grading.porosity_xyz(x, y, z, sdf, self._bounds), sdf.shape)
        s = np.float32(1.0)
        if self.rim_mm > 0:
            # a short ramp instead of a step keeps the rim's inner face smooth
            width = min(0.2 * self.cell_mm, self.rim_mm)
            ramp = np.clip((sdf + np.float32(self.rim_mm)) / np.float32(width) + 0.5, 0.0, 1.0)
            s = (1.0 - (1.0 - self.vent_fraction) * ramp).astype(np.float32)
        return sdf, lat, p, s

    def lattice_mm(self, lat, p, s, shift=None) -> np.ndarray:
        """Lattice part alone in approximate mm, negative in the solid."""
        shift = self.shift if shift is None else shift
        q = np.clip(s * (p + np.float32(shift)), 0.0, 1.0)
        if np.ndim(q) == 0:
            level = np.float32(self.lookup.level(float(q)))
        else:
            level = np.interp(
                1.0 - q, self.lookup.solid.astype(np.float32), self.lookup.levels.astype(np.float32)
            ).astype(np.float32)
        h = lat - level
        h *= np.float32(self.mm_per_field)
        return h

    def solid_from_parts(self, sdf, lat, p, s, shift=None) -> np.ndarray:
        """Scaffold field (mm, negative in the solid) from :meth:`parts_xyz` output."""
        return np.maximum(self.lattice_mm(lat, p, s, shift), sdf)

    def pore_from_parts(self, sdf, lat, p, s, shift=None) -> np.ndarray:
        """Pore field (mm, negative in pore space inside the region)."""
        return np.maximum(-self.lattice_mm(lat, p, s, shift), sdf)

    def solid_xyz(self, x, y, z) -> np.ndarray:
        """Scaffold field at broadcastable LPS coordinates (mm, negative in solid)."""
        return self.solid_from_parts(*self.parts_xyz(x, y, z))

    def pore_xyz(self, x, y, z) -> np.ndarray:
        """Pore field at broadcastable LPS coordinates (mm, negative in pores)."""
        return self.pore_from_parts(*self.parts_xyz(x, y, z))

    def solid(self, points) -> np.ndarray:
        """Scaffold field at LPS points ``(..., 3)`` (mm, negative in solid)."""
        p = np.asarray(points, dtype=float)
        return self.solid_xyz(p[..., 0], p[..., 1], p[..., 2])

    # --- on a grid, plane range by plane range ---

    def grid_parts(self, grid: SamplingGrid, k0: int, k1: int):
        """:meth:`parts_xyz` on planes ``k0..k1`` (inclusive) of ``grid``."""
        x, y, z = grid.axes_lps(k0, k1)
        a = grid.affine[:3, :3]
        h = grid.voxel_mm
        m = self.rotation.T @ a / h
        if np.allclose(m, np.eye(3), atol=1e-9):
            # grid axes are the lattice axes: lattice coordinates are 1-D per axis
            o = self.rotation.T @ (grid.affine[:3, 3] - self.origin)
            local = (
                o[0] + h * np.arange(k0, k1 + 1)[:, None, None],
                o[1] + h * np.arange(grid.shape[1])[None, :, None],
                o[2] + h * np.arange(grid.shape[2])[None, None, :],
            )
        else:
            local = None
        return self.parts_xyz(x, y, z, local)
