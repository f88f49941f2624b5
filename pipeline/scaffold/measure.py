"""Measure a built scaffold: porosity, pore and wall sizes, connectivity, stiffness.

Everything reported is measured on the scaffold itself, not taken from the design
parameters: porosity from the mesh's enclosed volume (and, as a cross-check, from the
sampled field), feature sizes by local thickness on a representative block sampled
finely enough for sub-voxel accuracy, pore connectivity by labelling the pore space
of the whole region. The one model is the Gibson-Ashby stiffness estimate, whose
coefficients and source are returned with it.

The result is a :class:`ScaffoldMeasurement`; its values are plain floats, ints,
lists and dicts (``to_dict()`` is JSON-ready) and units are in the field names:
``_mm``, ``_mm2``, ``_mm3``, ``_per_mm``, ``_gpa``; fractions are 0..1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cc3d
import numpy as np

from pipeline.scaffold.calibrate import cell_features
from pipeline.scaffold.design import ScaffoldDesign
from pipeline.scaffold.grid import SamplingGrid, sampling_grid
from pipeline.scaffold.materials import DESIGN_TARGETS, GIBSON_ASHBY, get_material
from pipeline.scaffold.meshing import signed_volumes
from pipeline.scaffold.region import Region
from pipeline.scaffold.thickness import distribution, local_thickness


@dataclass(frozen=True, eq=False)
class ScaffoldMeasurement:
    """What a built scaffold is, measured on its mesh and its design.

    Fields needing the design (voxel porosity, feature sizes, connectivity) are None
    without it. Fractions are 0..1; units are in the names.

    Attributes
    ----------
    porosity : float
        ``1 - solid_volume_mm3 / region_volume_mm3``, from the mesh's signed volume.
    porosity_voxel : float or None
        Porosity of the design's field sampled with partial volumes (cross-check).
    porosity_difference : float or None
        ``porosity - porosity_voxel``.
    region_volume_mm3, solid_volume_mm3 : float
    surface_area_mm2 : float
    surface_to_volume_per_mm : float or None
        Surface area over solid volume, mm^-1.
    specific_surface_per_mm : float
        Surface area over region volume, mm^-1.
    relative_density : float
        ``1 - porosity``.
    wall_thickness_mm : dict or None
        Local wall (strut) thickness percentiles ``p01 p05 p50 median mean p95 max``, mm.
    pore_diameter_mm : dict or None
        Local pore diameter ``d10 d50 d90 mean p01 max``, mm.
    smallest_feature_mm : float or None
        The smaller of the walls' and pores' 1st percentiles, mm.
    interconnected_pore_fraction : float or None
        Share of the pore volume connected to the region's boundary.
    closed_pores : int or None
    closed_pore_volume_mm3 : float or None
    connectivity_voxel_mm : float or None
        Voxel the connectivity was labelled on, mm.
    measurement : dict or None
        How the feature sizes were measured (blocks, voxels, method).
    material : dict
        :meth:`pipeline.scaffold.materials.Material.describe`.
    apparent_modulus_gpa : float
        Gibson-Ashby estimate, GPa (``modulus_model`` gives its form and source).
    modulus_model : dict
    bone_modulus_band_gpa : list of 2 floats
    modulus_in_bone_band : bool
    porosity_band : list of 2 floats
    porosity_in_band : bool
    pore_size_ok : bool or None
        Median pore at least the recommended minimum pore size.
    """

    porosity: float
    porosity_voxel: float | None
    porosity_difference: float | None
    region_volume_mm3: float
    solid_volume_mm3: float
    surface_area_mm2: float
    surface_to_volume_per_mm: float | None
    specific_surface_per_mm: float
    relative_density: float
    wall_thickness_mm: dict | None
    pore_diameter_mm: dict | None
    smallest_feature_mm: float | None
    interconnected_pore_fraction: float | None
    closed_pores: int | None
    closed_pore_volume_mm3: float | None
    connectivity_voxel_mm: float | None
    measurement: dict | None
    material: dict
    apparent_modulus_gpa: float
    modulus_model: dict
    bone_modulus_band_gpa: list
    modulus_in_bone_band: bool
    porosity_band: list
    porosity_in_band: bool
    pore_size_ok: bool | None

    def to_dict(self) -> dict:
        """JSON-ready copy (for the manifest)."""
        return asdict(self)


def gibson_ashby_modulus_gpa(
    relative_density: float, solid_modulus_gpa: float, c: float = GIBSON_ASHBY["C"], n: float = GIBSON_ASHBY["n"]
) -> float:
    """Apparent modulus ``E = C * rho^n * Es`` (GPa) of a cellular solid (Gibson & Ashby 1997)."""
    return float(c * relative_density**n * solid_modulus_gpa)


def deepest_point(region: Region, n: int = 40) -> np.ndarray:
    """LPS point (mm) farthest inside the region, on an ``n^3`` sample of its box."""
    lo, hi = region.bounds()
    axes = [np.linspace(lo[i], hi[i], n) for i in range(3)]
    d = region.sdf_xyz(axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :])
    i = np.unravel_index(int(np.argmin(d)), d.shape)
    return np.array([axes[k][i[k]] for k in range(3)])


def block_grid(design: ScaffoldDesign, centre, side_mm: float, voxel_mm: float) -> SamplingGrid:
    """Cube of ``side_mm`` centred at ``centre`` (LPS), axes along the lattice's."""
    n = int(math.ceil(side_mm / voxel_mm)) + 1
    aff = np.eye(4)
    aff[:3, :3] = design.rotation * voxel_mm
    aff[:3, 3] = np.asarray(centre, float) - design.rotation @ np.full(3, (n - 1) * voxel_mm / 2)
    return SamplingGrid((n, n, n), aff)


def _phase_sizes(design, centre, inner_mm, margin_mm, voxel_mm, phase, max_voxels):
    side = inner_mm + 2 * margin_mm
    voxel_mm = max(voxel_mm, side / (max_voxels ** (1 / 3) - 1))
    grid = block_grid(design, centre, side, voxel_mm)
    parts = design.grid_parts(grid, 0, grid.shape[0] - 1)
    f = design.solid_from_parts(*parts) if phase == "solid" else design.pore_from_parts(*parts)
    if not (f.min() < 0 < f.max()):
        return {"n_voxels": 0}, voxel_mm, side
    lt = local_thickness(f, (voxel_mm,) * 3)
    m = int(round(margin_mm / voxel_mm))
    inner = lt[m : -m or None, m : -m or None, m : -m or None] if m else lt
    return distribution(inner), voxel_mm, side


def pore_connectivity(design: ScaffoldDesign, voxel_mm: float, max_voxels: int = 64_000_000):
    """Share of the pore space connected to the region's boundary, and sealed pores.

    The region's box is sampled at ``voxel_mm`` (coarsened to stay under
    ``max_voxels``); pore voxels (inside the region, outside the solid) are labelled
    6-connected together with the outside, so that a pore counts as open only through
    a face-connected path: conservative at coarse voxels.

    Returns
    -------
    dict with ``interconnected_pore_fraction``, ``closed_pores``,
    ``closed_pore_volume_mm3``, ``connectivity_voxel_mm``.
    """
    lo, hi = design.region.bounds()
    voxel_mm = max(voxel_mm, (float(np.prod(hi - lo + 4 * voxel_mm)) / max_voxels) ** (1 / 3))
    grid = sampling_grid(design.region, voxel_mm, design.rotation)
    pore = np.zeros(grid.shape, bool)
    outside = np.zeros(grid.shape, bool)
    for k0, k1 in grid.chunks():
        parts = design.grid_parts(grid, k0, k1)
        pore[k0 : k1 + 1] = design.pore_from_parts(*parts) < 0
        outside[k0 : k1 + 1] = parts[0] >= 0  # exactly on the boundary counts as outside
    labels = cc3d.connected_components(pore | outside, connectivity=6)
    open_labels = np.unique(labels[outside])
    n_pore = int(pore.sum())
    connected = np.isin(labels, open_labels) & pore
    closed = pore & ~connected
    closed_ids = np.unique(labels[closed])
    return {
        "interconnected_pore_fraction": float(connected.sum() / n_pore) if n_pore else 0.0,
        "closed_pores": int(len(closed_ids)),
        "closed_pore_volume_mm3": float(closed.sum() * voxel_mm**3),
        "connectivity_voxel_mm": float(voxel_mm),
    }


def voxel_porosity(design: ScaffoldDesign, voxel_mm: float) -> tuple[float, float]:
    """Porosity of the sampled field and region volume (mm^3) on a grid at ``voxel_mm``.

    Both the region and the solid are counted with sub-voxel partial volumes from their
    distance-like fields.
    """
    grid = sampling_grid(design.region, voxel_mm, design.rotation)
    h = np.float32(voxel_mm)
    region_sum = solid_sum = 0.0
    for k0, k1 in grid.chunks():
        parts = design.grid_parts(grid, k0, k1)
        w = np.clip(np.float32(0.5) - parts[0] / h, 0.0, 1.0)
        g = design.solid_from_parts(*parts)
        region_sum += float(w.sum(dtype=np.float64))
        solid_sum += float(np.clip(np.float32(0.5) - g / h, 0.0, 1.0).sum(dtype=np.float64))
    return 1.0 - solid_sum / region_sum, region_sum * voxel_mm**3


def measure_scaffold(
    mesh,
    region: Region,
    design: ScaffoldDesign | None = None,
    *,
    region_volume_mm3: float | None = None,
    voxel_mm: float | None = None,
    material: str = "ti6al4v",
    block_cells: float = 1.0,
    max_block_voxels: int = 128**3,
    connectivity_max_voxels: int = 64_000_000,
) -> ScaffoldMeasurement:
    """Measure a scaffold mesh filling ``region``.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Closed scaffold surface, LPS mm.
    region : Region
    design : ScaffoldDesign, optional
        The implicit the mesh was cut from; needed for everything beyond volume and
        surface (voxel porosity, feature sizes, connectivity).
    region_volume_mm3 : float, optional
        Region volume; default analytic for primitives, else measured on the grid.
    voxel_mm : float, optional
        Grid for the voxel porosity and connectivity; default ``cell / 32``
        (:meth:`Scaffold.measure` passes the build's voxel, tied to the thinnest
        feature and the printer's resolution).
    material : str
        Key of :data:`pipeline.scaffold.materials.MATERIALS` for the stiffness estimate.
    block_cells : float
        Side of the feature-measurement block, in cells (plus margins), centred at the
        region's deepest point.
    max_block_voxels, connectivity_max_voxels : int
        Memory caps (the voxel is coarsened to respect them).

    Returns
    -------
    ScaffoldMeasurement
        ``None`` in the fields that need ``design`` when it is absent.
    """
    mat = get_material(material)
    # the mesh's signed volume, as the STL file holds it (no mass properties needed)
    solid = float(signed_volumes(np.asarray(mesh.vertices), np.asarray(mesh.faces)).sum())
    area = float(mesh.area)
    out: dict = {}
    pv = None
    if design is not None:
        voxel_mm = voxel_mm or design.cell_mm / 32.0
        pv, grid_volume = voxel_porosity(design, voxel_mm)
    vr = region_volume_mm3 or region.exact_volume_mm3()
    if vr is None:
        if design is None:
            raise ValueError("region volume unknown: pass region_volume_mm3 or the design")
        vr = grid_volume
    porosity = 1.0 - solid / vr
    rho = 1.0 - porosity
    out.update(
        porosity=porosity,
        porosity_voxel=pv,
        porosity_difference=None if pv is None else porosity - pv,
        region_volume_mm3=vr,
        solid_volume_mm3=solid,
        surface_area_mm2=area,
        surface_to_volume_per_mm=area / solid if solid > 0 else None,
        specific_surface_per_mm=area / vr,
        relative_density=rho,
    )
    if design is not None:
        name, cell = design.lattice.name, design.cell_mm
        p_lo, p_hi = design.porosity_range()
        centre = deepest_point(region)
        # Estimates that only size the blocks and voxels: at the nominal porosities,
        # which the build has already worked out (the level's small shift would
        # cost a fresh cell sample and change them by a few percent).
        wall_est = cell_features(name, p_hi, "solid")
        pore_est = cell_features(name, p_lo, "pores")
        inner = block_cells * cell
        # voxels: ten (walls) or twelve (pores) across the thinnest; margins: the largest ball
        walls, wv, wside = _phase_sizes(
            design, centre, inner, 0.75 * wall_est.median * cell, wall_est.min * cell / 10.0, "solid", max_block_voxels
        )
        pores, pvx, pside = _phase_sizes(
            design, centre, inner, 0.75 * cell, pore_est.min * cell / 12.0, "pores", max_block_voxels
        )
        out["wall_thickness_mm"] = {k: walls.get(k) for k in ("p01", "p05", "p50", "mean", "p95", "max")}
        out["wall_thickness_mm"]["median"] = walls.get("p50")
        out["pore_diameter_mm"] = {
            "d10": pores.get("p10"),
            "d50": pores.get("p50"),
            "d90": pores.get("p90"),
            "mean": pores.get("mean"),
            "p01": pores.get("p01"),
            "max": pores.get("max"),
        }
        smallest = [v for v in (walls.get("p01"), pores.get("p01")) if v]
        out["smallest_feature_mm"] = min(smallest) if smallest else None
        out.update(pore_connectivity(design, voxel_mm, connectivity_max_voxels))
        out["measurement"] = {
            "porosity_voxel_mm": voxel_mm,
            "feature_block_center_lps_mm": [float(v) for v in centre],
            "wall_block_mm": wside,
            "wall_voxel_mm": wv,
            "pore_block_mm": pside,
            "pore_voxel_mm": pvx,
            "method": "local thickness (maximal inscribed spheres, sub-voxel radii), "
            "volume-weighted, over the central block_cells^3 cells",
        }
    else:
        for key in (
            "wall_thickness_mm",
            "pore_diameter_mm",
            "smallest_feature_mm",
            "interconnected_pore_fraction",
            "closed_pores",
            "closed_pore_volume_mm3",
            "connectivity_voxel_mm",
            "measurement",
        ):
            out[key] = None
    modulus = gibson_ashby_modulus_gpa(rho, mat.modulus_gpa)
    band = DESIGN_TARGETS["vertebral_cancellous_modulus"]["value"]
    out.update(
        material=mat.describe(),
        apparent_modulus_gpa=modulus,
        modulus_model=dict(GIBSON_ASHBY),
        bone_modulus_band_gpa=list(band),
        modulus_in_bone_band=bool(band[0] <= modulus <= band[1]),
        porosity_band=DESIGN_TARGETS["porosity_band"]["value"],
        porosity_in_band=bool(
            DESIGN_TARGETS["porosity_band"]["value"][0] <= porosity <= DESIGN_TARGETS["porosity_band"]["value"][1]
        ),
    )
    d50 = (out.get("pore_diameter_mm") or {}).get("d50")
    out["pore_size_ok"] = None if d50 is None else bool(d50 >= DESIGN_TARGETS["pore_size_min"]["value"])
    return ScaffoldMeasurement(**out)
