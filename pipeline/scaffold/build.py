"""Build a porous scaffold that fills a region: calibrate, mesh, clean, verify.

:func:`build_scaffold` is the stage's entry point. It returns a :class:`Scaffold`:
the closed triangle mesh in patient LPS mm, the exact design that produced it (so any
property can be re-measured), the solved level, and what happened on the way
(fragments dropped, warnings) in the user's words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import trimesh

from pipeline.errors import DesignError, InputError
from pipeline.scaffold.calibrate import check_design, choose_voxel_mm, solve_level, thinnest_feature_mm
from pipeline.scaffold.design import ScaffoldDesign
from pipeline.scaffold.grading import PorosityGrading, parse_grading
from pipeline.scaffold.grid import SamplingGrid, sampling_grid
from pipeline.scaffold.lattice import get_lattice
from pipeline.scaffold.meshing import closed_and_consistent, drop_fragments, mesh_field
from pipeline.scaffold.region import Region
from pipeline.scaffold.resolution import DEVIATION_PERCENTILE, implicit_deviation_mm

if TYPE_CHECKING:
    from pipeline.scaffold.measure import ScaffoldMeasurement

from ..mesh import snap_to_float32


@dataclass(frozen=True, eq=False)
class Scaffold:
    """A built scaffold.

    Attributes
    ----------
    mesh : trimesh.Trimesh
        Closed, consistently wound surface in LPS mm, normals outward.
    design : ScaffoldDesign
        The implicit geometry the mesh was cut from (``design.solid(points)``).
    grid : SamplingGrid
        The fine grid it was sampled on.
    porosity_target : float
        Volume-weighted mean porosity asked for over the region (fraction): the
        requested or graded porosity, with the rim's reduced porosity where it applies.
    porosity_mesh : float
        ``1 - mesh volume / region volume``.
    porosity_voxel : float
        Porosity of the sampled field on ``grid`` (partial-volume weighted).
    region_volume_mm3 : float
        Region volume: analytic for plain primitives, else the grid's partial volume.
    level : float or None
        The single lattice level (field units) when porosity is uniform and there is no
        rim; None when the level varies with position.
    fragments_dropped : int
        Floating pieces smaller than ``min_fragment_mm3`` removed from the mesh.
    fragments_dropped_mm3 : float
    bodies : int
        Separate solid pieces left (1 for a sound scaffold).
    warnings : tuple of str
    resolution : dict or None
        With a chord-deviation bound: ``deviation_bound_mm``, the measured
        ``deviation_p999_mm`` and ``deviation_max_mm`` (first-order distance from face
        centroids to the design's surface, mm) and the ``voxel_mm`` sampled at; None
        without a bound.
    """

    mesh: trimesh.Trimesh
    design: ScaffoldDesign
    grid: SamplingGrid
    porosity_target: float
    porosity_mesh: float
    porosity_voxel: float
    region_volume_mm3: float
    level: float | None
    fragments_dropped: int
    fragments_dropped_mm3: float
    bodies: int
    warnings: tuple[str, ...] = field(default_factory=tuple)
    resolution: dict | None = None

    @property
    def region(self) -> Region:
        return self.design.region

    def parameters(self) -> dict:
        """JSON-ready record of the design and the build, for the manifest."""
        d = self.design
        out = {
            "lattice": d.lattice.name,
            "cell_mm": d.cell_mm,
            "porosity_target": self.porosity_target,
            "porosity_mesh": self.porosity_mesh,
            "porosity_voxel": self.porosity_voxel,
            "porosity_shift": d.shift,
            "grading": None if d.grading is None else d.grading.describe(),
            "rim_mm": d.rim_mm,
            "vent_fraction": d.vent_fraction if d.rim_mm > 0 else None,
            "voxel_mm": self.grid.voxel_mm,
            "grid_shape": list(self.grid.shape),
            "lattice_origin_lps_mm": [float(v) for v in d.origin],
            "lattice_axes_lps": d.rotation.T.tolist(),
            "region": d.region.describe(),
            "region_volume_mm3": self.region_volume_mm3,
            "solid_volume_mm3": float(self.mesh.volume),
            "triangles": int(len(self.mesh.faces)),
            "fragments_dropped": self.fragments_dropped,
            "fragments_dropped_mm3": self.fragments_dropped_mm3,
            "bodies": self.bodies,
            "warnings": list(self.warnings),
            "mesh_resolution": self.resolution,
        }
        if self.level is not None:
            out["level"] = self.level
            out.update(d.lattice.level_to_parameter(self.level, d.cell_mm))
        return out

    def measure(self, **kwargs) -> ScaffoldMeasurement:
        """Shorthand for :func:`pipeline.scaffold.measure.measure_scaffold` on this scaffold."""
        from pipeline.scaffold.measure import measure_scaffold

        return measure_scaffold(
            self.mesh,
            self.region,
            self.design,
            region_volume_mm3=self.region_volume_mm3,
            voxel_mm=self.grid.voxel_mm,
            **kwargs,
        )


def _number(name, value, lo=None, hi=None, *, open_lo=True):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(None, f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or (lo is not None and (v <= lo if open_lo else v < lo)) or (hi is not None and v >= hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"{'>' if open_lo else '>='} {lo}"
        raise InputError(None, f"{name} must be {bounds}, got {value!r}")
    return v


def build_scaffold(
    region,
    lattice: str = "gyroid-sheet",
    cell_mm: float = 2.0,
    porosity: float = 0.7,
    grading=None,
    rim_mm: float = 0.0,
    voxel_mm: float | None = None,
    min_fragment_mm3: float = 1.0,
    *,
    vent_fraction: float = 0.4,
    min_wall_mm: float | None = None,
    min_pore_mm: float | None = None,
    rotation=None,
    origin=None,
    max_triangles: int = 40_000_000,
    tolerance: float = 0.0025,
    max_slab_voxels: int = 8_000_000,
    deviation_mm: float | None = None,
    max_cached_voxels: int = 24_000_000,
) -> Scaffold:
    """Fill ``region`` with a porous lattice and return its closed mesh.

    Parameters
    ----------
    region : Region or str
        What to fill; a string is parsed as a primitive (``"sphere:X,Y,Z,R"`` ...).
    lattice : str
        One of :func:`pipeline.scaffold.lattice.lattice_names`, e.g. ``"gyroid-sheet"``,
        ``"schwarz-p-skeletal"``, ``"diamond-sheet"``, ``"cubic"``, ``"bcc"``, ``"octet"``.
    cell_mm : float
        Lattice period, mm.
    porosity : float
        Porosity of the lattice (fraction of the region volume); ignored when
        ``grading`` is given. With a rim, the rim's porosity is ``vent_fraction`` times
        this and the whole scaffold's target is their volume-weighted mean
        (``Scaffold.porosity_target``).
    grading : PorosityGrading or str, optional
        Porosity varying with position (see :func:`pipeline.scaffold.grading.parse_grading`).
    rim_mm : float
        Dense rim along the region boundary, mm: the same lattice thickened to
        ``vent_fraction`` of the local porosity, so the lattice's own pore channels
        perforate it as vents and it never seals the pores.
    voxel_mm : float, optional
        Sampling voxel; default: the thinnest wall or pore is 4 voxels across, capped
        so that the mesh stays under ``max_triangles``.
    min_fragment_mm3 : float
        Floating pieces smaller than this are removed (and counted).
    vent_fraction : float
        See ``rim_mm``.
    min_wall_mm, min_pore_mm : float, optional
        Process limits; a design whose walls (pores) get thinner raises DesignError.
    rotation : array (3, 3), optional
        Lattice axes in LPS (columns, proper rotation); default the LPS axes.
    origin : array (3,), optional
        LPS point at the lattice's origin; default the centre of the region's box.
    max_triangles : int
        Triangle budget for the automatic voxel size (memory).
    tolerance : float
        Allowed difference between the mesh porosity and the target before the level
        is corrected from the mesh and the mesh remade (at most twice).
    max_slab_voxels : int
        Voxels per slab (memory; float32 fields, about 40 bytes per voxel in flight).
    deviation_mm : float, optional
        Chord-deviation bound, mm (see :func:`pipeline.printing.deviation_bound`):
        the automatic voxel is then at most twice this (marching cubes cuts a crease by
        up to half a voxel) instead of a 24th of the cell, and the mesh's deviation
        from the design is measured (``Scaffold.resolution``).
    max_cached_voxels : int
        Grids up to this size keep the region distance and lattice field between the
        level corrections instead of evaluating them again (8 bytes per voxel).

    Returns
    -------
    Scaffold

    Raises
    ------
    InputError
        Malformed options.
    DesignError
        A design that cannot be built: falls apart, seals its pores, breaks process
        limits, or leaves nothing inside the region.
    """
    if isinstance(region, str):
        region = Region.from_spec(region)
    if not isinstance(region, Region):
        raise InputError(None, "region must be a Region or a primitive spec string")
    lat = get_lattice(lattice)
    cell_mm = _number("cell size (mm)", cell_mm, 0.0)
    porosity = _number("porosity", porosity, 0.0, 1.0)
    rim_mm = _number("rim (mm)", rim_mm, 0.0, open_lo=False)
    min_fragment_mm3 = _number("minimum fragment volume (mm^3)", min_fragment_mm3, 0.0, open_lo=False)
    vent_fraction = _number("vent fraction", vent_fraction, 0.0, 1.0 + 1e-9)
    if voxel_mm is not None:
        voxel_mm = _number("voxel size (mm)", voxel_mm, 0.0)
    if isinstance(grading, str):
        grading = parse_grading(grading)
    if grading is not None and not isinstance(grading, PorosityGrading):
        raise InputError(None, "grading must be a PorosityGrading or a spec string")
    rot = np.eye(3) if rotation is None else np.asarray(rotation, float)
    if rot.shape != (3, 3) or not np.allclose(rot.T @ rot, np.eye(3), atol=1e-6) or np.linalg.det(rot) < 0:
        raise InputError(None, "lattice rotation must be a proper 3x3 rotation matrix")
    lo, hi = region.bounds()
    org = (lo + hi) / 2.0 if origin is None else np.asarray(origin, float).reshape(3)
    if grading is not None:
        grading = grading.resolve(region)
    design = ScaffoldDesign(region, lat, cell_mm, porosity, grading, rim_mm, vent_fraction, 0.0, org, rot)
    check_design(design, min_wall_mm=min_wall_mm, min_pore_mm=min_pore_mm)

    warnings: list[str] = []
    exact = region.exact_volume_mm3()
    if voxel_mm is None:
        rough = exact if exact else float(np.prod(hi - lo))
        voxel_mm, notes = choose_voxel_mm(design, rough, max_triangles=max_triangles, deviation_mm=deviation_mm)
        warnings += notes
    else:
        thinnest = thinnest_feature_mm(design)
        if thinnest < 4 * voxel_mm:
            warnings.append(
                f"the thinnest wall or pore ({thinnest:.3f} mm) is only "
                f"{thinnest / voxel_mm:.1f} voxels across at {voxel_mm} mm; "
                "the level is corrected on the mesh, but detail is coarse"
            )
    grid = sampling_grid(region, voxel_mm, rot)

    cal = solve_level(design, grid, max_voxels=max_slab_voxels)
    # The region distance and lattice field do not depend on the level: keep them
    # between corrections when they fit (they are most of a remesh's time).
    cache: dict | None = {} if grid.n_voxels <= max_cached_voxels else None
    region_volume = exact if exact else cal.region_volume_mm3
    target = cal.target
    shift = cal.shift
    for attempt in range(3):
        design = design.with_shift(shift)
        if attempt == 0 and abs(shift) > 0.005:
            check_design(design, min_wall_mm=min_wall_mm, min_pore_mm=min_pore_mm)

        def slab(k0, k1, design=design):
            if cache is None:
                return design.solid_from_parts(*design.grid_parts(grid, k0, k1))
            if (k0, k1) not in cache:
                cache[(k0, k1)] = design.grid_parts(grid, k0, k1)
            return design.solid_from_parts(*cache[(k0, k1)])

        verts, faces = mesh_field(grid, slab, max_voxels=max_slab_voxels)
        if len(faces) == 0:
            raise DesignError("the scaffold is empty: the region is too small for the lattice")
        verts, faces, cleanup = drop_fragments(verts, faces, min_fragment_mm3)
        volume = cleanup.volume_mm3
        porosity_mesh = 1.0 - volume / region_volume
        error = porosity_mesh - target
        if abs(error) <= tolerance or attempt == 2:
            break
        # the shift is in porosity units, so the mesh's error corrects it one to one
        shift -= error
    if cache is not None:
        cache.clear()  # the fields are not needed beyond the last remesh
    # The STL file holds float32: make the mesh exactly what the file will be.
    snapped = snap_to_float32(trimesh.Trimesh(vertices=verts, faces=faces, process=False, validate=False))
    verts, faces = np.asarray(snapped.vertices), np.asarray(snapped.faces)
    resolution = None
    if deviation_mm is not None:
        dev = implicit_deviation_mm(design, verts, faces)
        p999 = float(np.percentile(dev, DEVIATION_PERCENTILE))
        resolution = {
            "deviation_bound_mm": float(deviation_mm),
            "deviation_p999_mm": p999,
            "deviation_max_mm": float(dev.max()),
            "deviation_method": "first-order distance |f|/|grad f| from each face centroid "
            "to the design's implicit surface; p999 = 99.9th percentile",
            "voxel_mm": grid.voxel_mm,
        }
        if p999 > deviation_mm:
            warnings.append(
                f"the mesh strays up to {p999:.3f} mm (99.9th percentile) from the "
                f"design, beyond the printer's {deviation_mm:.3f} mm; give a smaller voxel"
            )
    if abs(error) > tolerance:
        warnings.append(
            f"mesh porosity {porosity_mesh:.1%} misses the target {target:.1%} by {abs(error):.1%} after correction"
        )
    if not closed_and_consistent(faces, len(verts)) or volume <= 0:
        raise RuntimeError("scaffold mesh is not closed and consistently wound (bug)")
    if cleanup.bodies == 0:
        raise DesignError("the scaffold is empty: the region is too small for the lattice")
    if cleanup.bodies > 1:
        vols = cleanup.body_volumes_mm3
        if vols[0] < 0.9 * sum(vols):
            raise DesignError(
                f"the scaffold falls apart into {cleanup.bodies} pieces (largest "
                f"{vols[0]:.1f} of {sum(vols):.1f} mm^3); use a denser or "
                "better-connected lattice or a smaller cell"
            )
        warnings.append(
            f"{cleanup.bodies - 1} loose piece(s) above {min_fragment_mm3} mm^3 "
            f"remain ({sum(vols[1:]):.2f} mm^3 in all); raise the minimum fragment "
            "volume to drop them"
        )
    if cleanup.cavities:
        warnings.append(
            f"{cleanup.cavities} sealed cavit{'y' if cleanup.cavities == 1 else 'ies'} "
            "inside the solid (powder would be trapped)"
        )
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, process=False, validate=False)
    level = None
    if grading is None and rim_mm == 0:
        level = float(design.lookup.level(porosity + design.shift))
    return Scaffold(
        mesh=mesh,
        design=design,
        grid=grid,
        porosity_target=float(target),
        porosity_mesh=float(porosity_mesh),
        porosity_voxel=float(cal.porosity_at(design.shift)),
        region_volume_mm3=float(region_volume),
        level=level,
        fragments_dropped=cleanup.dropped,
        fragments_dropped_mm3=cleanup.dropped_mm3,
        bodies=cleanup.bodies,
        warnings=tuple(warnings),
        resolution=resolution,
    )
