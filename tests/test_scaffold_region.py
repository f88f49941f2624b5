"""Scaffold regions: primitive parsing, exact signed distances, masks in patient space."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from pipeline.errors import DesignError, InputError
from pipeline.scaffold.grid import sampling_grid
from pipeline.scaffold.region import Box, Cylinder, Region, Sphere, parse_primitive

RNG = np.random.default_rng(7)


def test_parse_primitives():
    assert parse_primitive("sphere: 1, -2, 3.5, 4") == Sphere((1.0, -2.0, 3.5), 4.0)
    # corners are normalised so lo < hi whatever order the user gives
    assert parse_primitive("box:5,0,0,0,2,3") == Box((0.0, 0.0, 0.0), (5.0, 2.0, 3.0))
    c = parse_primitive("CYLINDER:0,0,0,0,0,10,2")
    assert isinstance(c, Cylinder) and c.radius == 2.0


@pytest.mark.parametrize(
    "spec",
    [
        "sphere:1,2,3",
        "sphere:1,2,3,-1",
        "sphere:a,b,c,d",
        "cube:0,0,0,1",
        "box:0,0,0,1,1",
        "box:0,0,0,0,1,1",
        "cylinder:0,0,0,0,0,0,1",
        "cylinder:0,0,0,1,1,1,0",
        "sphere:1,2,3,nan",
        "",
    ],
)
def test_malformed_primitive_is_one_line_input_error(spec):
    with pytest.raises(InputError) as err:
        parse_primitive(spec)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("bad region")


def test_primitive_sdf_matches_trimesh_signed_distance():
    """Box and cylinder distances against trimesh's mesh-based signed distance."""
    pts = RNG.uniform(-6, 6, size=(300, 3))
    box = parse_primitive("box:-3,-2,-1,4,2,3")
    mesh = trimesh.creation.box(extents=(7, 4, 4))
    mesh.apply_translation((0.5, 0.0, 1.0))
    # trimesh: positive inside; ours: negative inside
    np.testing.assert_allclose(Region(box).sdf(pts), -trimesh.proximity.signed_distance(mesh, pts), atol=1e-4)
    cyl = parse_primitive("cylinder:-1,-1,-2,2,1,3,1.5")
    p0, p1 = np.array([-1, -1, -2.0]), np.array([2, 1, 3.0])
    length = np.linalg.norm(p1 - p0)
    tube = trimesh.creation.cylinder(radius=1.5, height=length, sections=512)
    tube.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], (p1 - p0) / length))
    tube.apply_translation((p0 + p1) / 2)
    ref = -trimesh.proximity.signed_distance(tube, pts)
    np.testing.assert_allclose(Region(cyl).sdf(pts), ref, atol=2e-3)
    ball = Region(parse_primitive("sphere:1,2,3,2.5"))
    np.testing.assert_allclose(ball.sdf(pts), np.linalg.norm(pts - [1, 2, 3], axis=1) - 2.5, atol=1e-5)


def test_clearance_shrinks_exactly_and_can_leave_nothing():
    r = Region(parse_primitive("sphere:0,0,0,5"), clearance_mm=1.0)
    assert r.exact_volume_mm3() == pytest.approx(4 / 3 * np.pi * 4**3)
    assert r.sdf(np.array([[4.0, 0, 0]]))[0] == pytest.approx(0.0, abs=1e-6)
    box = Region(parse_primitive("box:0,0,0,4,6,8"), clearance_mm=0.5)
    assert box.exact_volume_mm3() == pytest.approx(3 * 5 * 7)
    with pytest.raises(DesignError):
        Region(parse_primitive("box:0,0,0,2,6,8"), clearance_mm=1.0)


def _l_mask():
    m = np.zeros((22, 16, 14), bool)
    m[3:19, 3:13, 3:11] = True
    m[11:19, 8:13, 3:11] = False  # notch: an L, asymmetric along every axis
    return m


def test_mask_region_lands_where_the_affine_says_not_mirrored():
    """A mask on a permuted, flipped, anisotropic grid: inside/outside checked in LPS."""
    m = _l_mask()
    aff = np.zeros((4, 4))
    aff[3, 3] = 1.0
    aff[:3, 0] = (-0.75, 0.0, 0.0)  # index 0 runs to the patient's right
    aff[:3, 1] = (0.0, 0.0, 0.8)  # index 1 runs superior
    aff[:3, 2] = (0.0, -0.7, 0.0)  # index 2 runs anterior
    aff[:3, 3] = (30.0, -10.0, 200.0)
    region = Region.from_mask(m, aff)
    to_lps = lambda ijk: np.asarray(ijk, float) @ aff[:3, :3].T + aff[:3, 3]  # noqa: E731
    deep_in = to_lps([[6, 6, 7], [15, 5, 7], [7, 10, 6]])
    in_notch = to_lps([[15, 11, 7]])
    assert np.all(region.sdf(deep_in) < -0.3)
    assert region.sdf(in_notch)[0] > 0.2
    # the notch mirrored through the mask centre along LPS x is inside: a mirrored
    # region would swap the two answers
    centre = to_lps(np.argwhere(m).mean(0))
    mirrored = in_notch.copy()
    mirrored[0, 0] = 2 * centre[0] - in_notch[0, 0]
    assert region.sdf(mirrored)[0] < -0.3
    lo, hi = region.bounds()
    corners = to_lps(np.array([[3, 3, 3], [18, 12, 10]]) + np.array([[-0.5], [0.5]]))
    np.testing.assert_allclose(lo, corners.min(0), atol=1e-9)
    np.testing.assert_allclose(hi, corners.max(0), atol=1e-9)


def test_mask_sdf_is_smooth_and_close_to_the_true_surface():
    """A voxelised ball at 0.75 mm: the smooth zero level is a sphere, not a staircase."""
    sp = 0.75
    centre = np.array([15.1, 15.2, 14.9])
    idx = np.indices((40, 40, 40)).transpose(1, 2, 3, 0) * sp
    mask = np.linalg.norm(idx - centre, axis=-1) < 8.0
    region = Region.from_mask(mask, np.diag([sp, sp, sp, 1.0]))
    dirs = RNG.normal(size=(2000, 3))
    dirs /= np.linalg.norm(dirs, axis=1)[:, None]
    d = region.sdf(centre + 8.0 * dirs)
    assert abs(d.mean()) < 0.1 and d.std() < 0.08
    # distance-like (roughly 1 mm per mm across the surface), as the clipping expects
    slope = (region.sdf(centre + 8.5 * dirs) - region.sdf(centre + 7.5 * dirs)).mean()
    assert 0.85 < slope < 1.1


def test_bone_subtraction_and_intersection():
    aff = np.diag([0.5, 0.5, 0.5, 1.0])
    bone = np.zeros((40, 40, 40), bool)
    bone[:, :, :20] = True  # z < 9.75 mm is bone
    sphere = parse_primitive("sphere:10,10,10,6")
    sub = Region(sphere).with_bone(bone, aff, "subtract")
    inter = Region(sphere).with_bone(bone, aff, "intersect")
    above, below = np.array([[10, 10, 13.0]]), np.array([[10, 10, 7.0]])
    assert sub.sdf(above)[0] < 0 < sub.sdf(below)[0]
    assert inter.sdf(below)[0] < 0 < inter.sdf(above)[0]


def test_sampling_grid_covers_region_and_slabs_share_one_plane():
    region = Region(parse_primitive("box:-1,2,3,4,5,7"))
    grid = sampling_grid(region, 0.1)
    corner_lo = grid.affine[:3, 3]
    corner_hi = grid.affine[:3, :3] @ (np.array(grid.shape) - 1) + corner_lo
    assert np.all(corner_lo <= [-1, 2, 3]) and np.all(corner_hi >= [4, 5, 7])
    slabs = list(grid.slabs(max_voxels=grid.shape[1] * grid.shape[2] * 7))
    assert slabs[0][0] == 0 and slabs[-1][1] == grid.shape[0] - 1
    assert all(a[1] == b[0] for a, b in zip(slabs, slabs[1:]))
    chunks = list(grid.chunks(max_voxels=grid.shape[1] * grid.shape[2] * 7))
    assert sum(b - a + 1 for a, b in chunks) == grid.shape[0]
