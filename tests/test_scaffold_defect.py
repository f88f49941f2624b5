"""Scaffolds in the phantom's L1 fracture defect: porosity measured from the mesh.

The defect is the one the pipeline finds (segmentation -> Genant grading ->
height-restored envelope). Each lattice is built at 60 % and 75 % and its porosity
is measured from the mesh volume against the region's volume measured here,
independently of the calibration: marching cubes of the region's signed distance on
a 0.1 mm grid.
"""

from pathlib import Path

import numpy as np
import pytest
import trimesh
from skimage.measure import marching_cubes

from pipeline.defect import find_compression_fractures
from pipeline.exchange.nifti import read_nifti
from pipeline.scaffold import Region, build_scaffold
from pipeline.volume import index_to_lps

SAMPLE = Path(__file__).resolve().parents[1] / "sample_scans" / "lumbar_phantom"


@pytest.fixture(scope="module")
def l1_defect(lumbar_scan, lumbar_segmentation):
    volume, seg = lumbar_scan, lumbar_segmentation
    (fracture,) = [f for f in find_compression_fractures(seg, volume) if f.level == "L1"]
    region = Region.from_mask(fracture.mask, fracture.affine(seg.affine))
    lo, hi = region.bounds()
    h = 0.1
    axes = [np.arange(lo[i] - 0.5, hi[i] + 0.5, h) for i in range(3)]
    d = region.sdf_xyz(axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :])
    v, f, _, _ = marching_cubes(np.asarray(d), 0.0, spacing=(h, h, h))
    return region, abs(trimesh.Trimesh(v, f).volume), fracture, seg


def test_defect_region_lands_on_the_truth(l1_defect):
    region, volume, fracture, seg = l1_defect
    truth, affine = read_nifti(SAMPLE / "truth" / "defect.nii.gz")
    assert np.allclose(affine, seg.affine[:, [2, 1, 0, 3]])
    truth = np.transpose(truth, (2, 1, 0)) > 0
    ours = fracture.full_mask()
    voxel = abs(np.linalg.det(seg.affine[:3, :3]))
    # The region is the mask's surface (the mask's own overlap with the truth is
    # tests/test_defect.py's): same volume, same place.
    assert volume == pytest.approx(float(ours.sum()) * voxel, rel=0.1)
    inside = region.sdf(index_to_lps(seg.affine, np.argwhere(ours)))
    assert np.mean(inside <= 0.0) >= 0.9
    assert volume == pytest.approx(float(truth.sum()) * abs(np.linalg.det(seg.affine[:3, :3])), rel=0.2)


# One sheet and one strut lattice in the everyday suite, every lattice and
# porosity under ``slow``.
EVERYDAY = {("gyroid-sheet", 0.60), ("gyroid-skeletal", 0.75)}
LATTICES = ["gyroid-sheet", "gyroid-skeletal", "schwarz-p-skeletal", "diamond-sheet", "octet"]


@pytest.mark.parametrize(
    "lattice,porosity",
    [
        pytest.param(lat, por, marks=() if (lat, por) in EVERYDAY else pytest.mark.slow)
        for por in (0.60, 0.75)
        for lat in LATTICES
    ],
)
def test_porosity_in_the_l1_defect(l1_defect, lattice, porosity):
    region, region_volume, _, _ = l1_defect
    # A 3 mm cell and 0.1 mm voxels keep the test quick; the level is still solved on
    # this region at this resolution.
    scaffold = build_scaffold(region, lattice, cell_mm=3.0, porosity=porosity, voxel_mm=0.1)
    mesh = scaffold.mesh
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    measured = 1.0 - mesh.volume / region_volume
    assert abs(measured - porosity) <= 0.01, f"{lattice} {porosity}: measured {measured:.3f}"
    # Inside the defect: every vertex within a voxel of the region.
    assert region.sdf(mesh.vertices).max() <= 0.1 + 1e-6
