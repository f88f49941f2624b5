"""Built scaffolds: porosity measured on the exported mesh, closure, placement, grading, rim.

Porosities here are measured independently of the calibration code: trimesh's volume
of the mesh against the analytic region volume, and manifold3d booleans for the
porosity of slabs.
"""

from __future__ import annotations

import dataclasses
import json

import manifold3d as m3
import numpy as np
import pytest
import trimesh
from scipy import ndimage
from skimage.measure import marching_cubes

from pipeline.scaffold import Region, build_scaffold
from pipeline.scaffold.grid import SamplingGrid
from pipeline.scaffold.measure import pore_connectivity
from pipeline.scaffold.meshing import drop_fragments, mesh_field

BOX = "box:0,0,0,3.3,3.7,4.1"  # not a whole number of 2 mm cells on any axis
BOX_VOLUME = 3.3 * 3.7 * 4.1


def _assert_closed(mesh: trimesh.Trimesh):
    assert mesh.is_watertight
    assert mesh.is_winding_consistent
    assert mesh.volume > 0


def _manifold(mesh):
    return m3.Manifold(
        m3.Mesh(vert_properties=np.asarray(mesh.vertices, np.float32), tri_verts=np.asarray(mesh.faces, np.uint32))
    )


def _box_volume(manifold, lo, hi):
    cube = m3.Manifold.cube(tuple(np.subtract(hi, lo))).translate(tuple(lo))
    return (manifold ^ cube).volume()


@pytest.mark.parametrize(
    "lattice,porosity",
    [
        pytest.param(
            lat, por, marks=() if (lat, por) in {("diamond-sheet", 0.6), ("octet", 0.75)} else pytest.mark.slow
        )
        for por in (0.6, 0.75)
        for lat in ("gyroid-sheet", "gyroid-skeletal", "schwarz-p-skeletal", "diamond-sheet", "octet")
    ],
)
def test_porosity_of_exported_mesh_in_a_box(lattice, porosity):
    s = build_scaffold(BOX, lattice, cell_mm=2.0, porosity=porosity)
    _assert_closed(s.mesh)
    measured = 1.0 - s.mesh.volume / BOX_VOLUME
    assert measured == pytest.approx(porosity, abs=0.01)
    # the mesh stays inside the box (to within a voxel's marching-cubes chamfer)
    assert np.all(s.mesh.bounds[0] >= -1e-5) and np.all(s.mesh.bounds[1] <= np.add([3.3, 3.7, 4.1], 1e-5))
    assert s.bodies == 1


def test_rotated_lattice_keeps_porosity_and_stays_in_the_region():
    c, s_ = np.cos(np.radians(30)), np.sin(np.radians(30))
    rot = np.array([[c, -s_, 0.0], [s_, c, 0.0], [0.0, 0.0, 1.0]])
    s = build_scaffold(BOX, "gyroid-skeletal", cell_mm=2.0, porosity=0.7, rotation=rot)
    _assert_closed(s.mesh)
    assert 1.0 - s.mesh.volume / BOX_VOLUME == pytest.approx(0.7, abs=0.01)
    assert np.all(s.mesh.bounds[0] >= -1e-5) and np.all(s.mesh.bounds[1] <= np.add([3.3, 3.7, 4.1], 1e-5))
    # the lattice really turned: its field matches the unrotated one at rotated points
    pts = np.random.default_rng(1).uniform(0.5, 2.5, size=(50, 3))
    flat = dataclasses.replace(s.design, rotation=np.eye(3))
    origin = s.design.origin
    np.testing.assert_allclose(s.design.solid(origin + (pts - origin) @ rot.T), flat.solid(pts), atol=1e-4)


def _l_mask():
    m = np.zeros((24, 16, 12), bool)
    m[2:18, 2:12, 2:10] = True
    m[10:18, 7:12, 2:10] = False  # notch: an L, asymmetric along every axis
    return m


def test_irregular_mask_region_with_flipped_axes_is_filled_in_place():
    mask = _l_mask()
    aff = np.zeros((4, 4))
    aff[3, 3] = 1.0
    aff[:3, 0] = (-0.75, 0.0, 0.0)  # flipped: index 0 runs to the patient's right
    aff[:3, 1] = (0.0, 0.0, 0.75)  # permuted: index 1 runs superior
    aff[:3, 2] = (0.0, 0.9, 0.0)  # anisotropic
    aff[:3, 3] = (40.0, -20.0, 100.0)
    region = Region.from_mask(mask, aff)
    s = build_scaffold(region, "gyroid-sheet", cell_mm=3.0, porosity=0.7)
    _assert_closed(s.mesh)

    # every vertex maps back (through the inverse affine, computed here) into the mask
    inv = np.linalg.inv(aff)
    ijk = np.rint(s.mesh.vertices @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    ijk = np.clip(ijk, 0, np.array(mask.shape) - 1)
    assert ndimage.binary_dilation(mask)[tuple(ijk.T)].all()
    # the solid's centre of mass sits on the mask's centroid; mirrored it would be 3 mm off
    centroid = (np.argwhere(mask) @ aff[:3, :3].T + aff[:3, 3]).mean(0)
    assert np.linalg.norm(s.mesh.center_mass - centroid) < 0.5
    mirrored = aff.copy()
    mirrored[:3, 0] *= -1
    mirrored_centroid = (np.argwhere(mask) @ mirrored[:3, :3].T + aff[:3, 3]).mean(0)
    assert np.linalg.norm(s.mesh.center_mass - mirrored_centroid) > 3.0

    # porosity against the region's volume measured here: marching cubes of its SDF
    lo, hi = region.bounds()
    h = 0.1
    axes = [np.arange(lo[i] - 0.5, hi[i] + 0.5, h) for i in range(3)]
    d = region.sdf_xyz(axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :])
    v, f, _, _ = marching_cubes(d, 0.0, spacing=(h, h, h))
    region_volume = abs(trimesh.Trimesh(v, f).volume)
    assert 1.0 - s.mesh.volume / region_volume == pytest.approx(0.7, abs=0.01)
    json.dumps(s.parameters())  # manifest-ready, plain numbers


def test_linear_grading_gives_the_requested_gradient():
    """Porosity 0.6 at the inferior end to 0.8 at the superior end, measured in slabs."""
    s = build_scaffold("box:0,0,0,4,4,8", "gyroid-skeletal", cell_mm=2.0, grading="linear:S,0.6,0.8")
    _assert_closed(s.mesh)
    solid = _manifold(s.mesh)
    measured = [1.0 - _box_volume(solid, (-1, -1, z), (5, 5, z + 2)) / 32.0 for z in (0, 2, 4, 6)]
    expected = [0.6 + 0.2 * (z + 1) / 8 for z in (0, 2, 4, 6)]
    np.testing.assert_allclose(measured, expected, atol=0.015)
    assert 1.0 - s.mesh.volume / 128.0 == pytest.approx(0.7, abs=0.01)


def test_boundary_grading_is_denser_at_the_bone():
    s = build_scaffold("box:0,0,0,8,8,8", "gyroid-skeletal", cell_mm=2.0, grading="boundary:0.6,0.8,2.0")
    solid = _manifold(s.mesh)
    core = 1.0 - _box_volume(solid, (2.5, 2.5, 2.5), (5.5, 5.5, 5.5)) / 27.0
    total = 1.0 - s.mesh.volume / 512.0
    shell = 1.0 - (s.mesh.volume - _box_volume(solid, (1, 1, 1), (7, 7, 7))) / (512.0 - 216.0)
    assert core == pytest.approx(0.8, abs=0.02)
    assert shell < 0.7 and shell < total < core


def test_rim_is_dense_but_vented():
    """A 0.5 mm rim adds solid along the boundary yet leaves every pore open to outside."""
    s = build_scaffold("box:0,0,0,5,5,5", "gyroid-sheet", cell_mm=2.0, porosity=0.7, rim_mm=0.5, vent_fraction=0.4)
    _assert_closed(s.mesh)
    solid = _manifold(s.mesh)
    # beyond the rim and its short blending ramp
    inner = _box_volume(solid, (0.8, 0.8, 0.8), (4.2, 4.2, 4.2))
    rim = s.mesh.volume - _box_volume(solid, (0.4, 0.4, 0.4), (4.6, 4.6, 4.6))
    # lattice porosity as asked inside; the rim at about vent_fraction x 0.7 = 0.28
    assert 1.0 - inner / 3.4**3 == pytest.approx(0.7, abs=0.015)
    assert 1.0 - rim / (125.0 - 4.2**3) == pytest.approx(0.28, abs=0.04)
    # the whole scaffold: the volume-weighted mix, measured on the mesh
    expected = (0.7 * 4.0**3 + 0.28 * (125.0 - 4.0**3)) / 125.0
    assert s.porosity_target == pytest.approx(expected, abs=0.02)
    assert 1.0 - s.mesh.volume / 125.0 == pytest.approx(s.porosity_target, abs=0.01)
    links = pore_connectivity(s.design, s.grid.voxel_mm)
    assert links["closed_pores"] == 0
    assert links["interconnected_pore_fraction"] > 0.999


def test_slab_meshing_with_mirrored_grid_drops_small_fragments():
    """Two balls on a left-handed grid: outward winding kept, the tiny one dropped."""
    aff = np.diag([-0.1, 0.1, 0.1, 1.0])
    aff[:3, 3] = (3.0, -3.0, -3.0)
    grid = SamplingGrid((61, 61, 61), aff)

    def field(k0, k1):
        x, y, z = grid.axes_lps(k0, k1)
        big = np.sqrt((x - 0.5) ** 2 + y**2 + z**2) - 2.0
        small = np.sqrt((x + 2.3) ** 2 + y**2 + z**2) - 0.4
        return np.minimum(big, small)

    v, f = mesh_field(grid, field, max_voxels=61 * 61 * 6)
    mesh = trimesh.Trimesh(v, f, process=False)
    _assert_closed(mesh)
    v2, f2, cleanup = drop_fragments(v, f, min_volume_mm3=1.0)
    kept = trimesh.Trimesh(v2, f2, process=False)
    _assert_closed(kept)
    assert cleanup.dropped == 1 and cleanup.bodies == 1
    assert cleanup.dropped_mm3 == pytest.approx(4 / 3 * np.pi * 0.4**3, rel=0.05)
    assert kept.volume == pytest.approx(4 / 3 * np.pi * 8.0, rel=0.01)
    assert kept.center_mass[0] == pytest.approx(0.5, abs=0.01)
