"""Porous scaffolds that fill a region (e.g. a vertebral fracture defect).

The stage in one call::

    from pipeline.printing import deviation_bound
    from pipeline.scaffold import Region, build_scaffold, measure_scaffold
    region = Region.from_spec("sphere:10,-40,120,15")          # or Region.from_mask(mask, affine)
    bound = deviation_bound("ti6al4v")                         # the printer's resolution
    scaffold = build_scaffold(region, "gyroid-sheet", cell_mm=2.0, porosity=0.7,
                              deviation_mm=bound.bound_mm)
    report = measure_scaffold(scaffold.mesh, region, scaffold.design,
                              region_volume_mm3=scaffold.region_volume_mm3)
    report.porosity, report.to_dict()                         # a ScaffoldMeasurement

Modules, one idea each: ``region`` (what to fill, in LPS mm), ``grid`` (the fine
sampling grid and its slabs), ``lattice`` (periodic
implicit fields and their porosity lookup), ``grading`` (porosity varying with
position), ``design`` (the combined implicit), ``calibrate`` (level on the real
region, lattice limits, voxel size), ``meshing`` (slab-wise marching cubes, closure
checks, fragments), ``resolution`` (the printer's chord-deviation bound, the mesh
deviation), ``build`` (the stage), ``thickness`` (sub-voxel local thickness),
``measure`` (what the scaffold really is), ``materials`` (data with sources).
"""

from pipeline.scaffold.build import Scaffold, build_scaffold
from pipeline.scaffold.design import ScaffoldDesign
from pipeline.scaffold.grading import PorosityGrading, parse_grading
from pipeline.scaffold.grid import SamplingGrid, sampling_grid
from pipeline.scaffold.lattice import get_lattice, lattice_names
from pipeline.scaffold.materials import DESIGN_TARGETS, MATERIALS, get_material
from pipeline.scaffold.measure import ScaffoldMeasurement, measure_scaffold
from pipeline.scaffold.region import Region, parse_primitive

__all__ = [
    "DESIGN_TARGETS",
    "PorosityGrading",
    "MATERIALS",
    "Region",
    "SamplingGrid",
    "Scaffold",
    "ScaffoldDesign",
    "ScaffoldMeasurement",
    "build_scaffold",
    "get_lattice",
    "get_material",
    "lattice_names",
    "measure_scaffold",
    "parse_grading",
    "parse_primitive",
    "sampling_grid",
]
