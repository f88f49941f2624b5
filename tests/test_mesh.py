"""Meshing and mesh checks against analytic shapes and an independent library (trimesh)."""

import numpy as np
import pytest
import trimesh

from pipeline.mesh import check_mesh, count_self_intersections, mesh_mask, mesh_vertebra, smallest_feature_mm
from pipeline.volume import index_to_lps

# A left-handed affine like a real axial DICOM series: slices towards the head,
# rows towards the back, columns towards the patient's left, anisotropic voxels.
AFFINE = np.array([[0, 0, 0.75, -50.0], [0, 0.75, 0, -30.0], [1.25, 0, 0, -200.0], [0, 0, 0, 1.0]])


def _ellipsoid_mask(shape, centre_lps, radii):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    p = index_to_lps(AFFINE, idx)
    return (((p - centre_lps) / radii) ** 2).sum(-1) <= 1.0


def test_sphere_surface_lands_on_the_true_surface_in_lps():
    centre = np.array([-20.0, -5.0, -165.0])
    mask = _ellipsoid_mask((60, 80, 70), centre, np.array([15.0, 15.0, 15.0]))
    mesh = mesh_mask(mask, AFFINE)
    r = np.linalg.norm(mesh.vertices - centre, axis=1)
    # Half the largest voxel (1.25 mm slices) bounds the staircase of the mask itself.
    assert np.abs(r - 15.0).max() <= 0.625 + 1e-6
    assert np.percentile(np.abs(r - 15.0), 95) < 0.3
    voxel_volume = mask.sum() * 0.75 * 0.75 * 1.25
    assert mesh.volume == pytest.approx(voxel_volume, rel=0.01)
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 15**3, rel=0.02)
    q = check_mesh(mesh)
    assert q.printable and q.components == 1 and q.euler_number == 2


def test_asymmetric_shape_is_not_mirrored():
    # Ellipsoid elongated along x (left-right) and offset to the patient's left.
    centre = np.array([-10.0, -5.0, -170.0])
    mask = _ellipsoid_mask((50, 70, 90), centre, np.array([25.0, 8.0, 12.0]))
    mesh = mesh_vertebra(mask, AFFINE)
    extent = mesh.bounds[1] - mesh.bounds[0]
    assert extent[0] == pytest.approx(50.0, abs=1.0)
    assert extent[1] == pytest.approx(16.0, abs=1.0)
    assert extent[2] == pytest.approx(24.0, abs=1.3)
    assert np.allclose(mesh.bounds.mean(axis=0), centre, atol=0.4)
    # Outward normals: the face normals point away from the centre.
    outward = np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center - centre)
    assert (outward > 0).mean() > 0.99


def test_decimation_keeps_watertight_and_close():
    centre = np.array([-20.0, -5.0, -165.0])
    mask = _ellipsoid_mask((60, 80, 70), centre, np.array([15.0, 12.0, 10.0]))
    full = mesh_mask(mask, AFFINE, decimate=0.0)
    small = mesh_mask(mask, AFFINE, decimate=0.5)
    assert len(small.faces) < 0.6 * len(full.faces)
    assert small.is_watertight and small.is_winding_consistent
    _, d, _ = trimesh.proximity.closest_point(full, small.vertices)
    assert d.max() <= 0.1


def test_structure_touching_the_scan_edge_is_closed():
    mask = np.zeros((20, 30, 30), bool)
    mask[:8, 5:20, 5:20] = True  # cut by the first slice
    mesh = mesh_mask(mask, AFFINE)
    assert mesh.is_watertight and mesh.volume > 0


def test_self_intersections_found_in_overlapping_shells():
    a = trimesh.creation.icosphere(subdivisions=3, radius=10)
    b = trimesh.creation.icosphere(subdivisions=3, radius=10)
    b.apply_translation([7.3, 0.37, 0.21])  # generic position: no edge lies exactly on a face
    both = trimesh.util.concatenate([a, b])
    assert count_self_intersections(a) == 0
    assert count_self_intersections(both) > 0
    # Disjoint shells do not intersect.
    b.apply_translation([30.0, 0, 0])
    assert count_self_intersections(trimesh.util.concatenate([a, b])) == 0
    q = check_mesh(trimesh.util.concatenate([a, b]))
    assert q.components == 2 and q.printable


def test_self_intersections_of_a_triangle_soup_match_every_pair_tested():
    """The broad phase and the plane-side rejection lose no crossing: the count
    equals a test of every pair, with and without voxel binning."""
    from pipeline.mesh.checks import _segment_hits_triangle

    rng = np.random.default_rng(11)
    centres = rng.uniform(0, 12, (300, 1, 3))
    tris = centres + rng.normal(0, 1.2, (300, 3, 3))
    soup = trimesh.Trimesh(tris.reshape(-1, 3), np.arange(900).reshape(-1, 3), process=False)
    i, j = np.triu_indices(300, 1)
    hit = np.zeros(len(i), bool)
    for p, q in ((i, j), (j, i)):
        for e0, e1 in ((0, 1), (1, 2), (2, 0)):
            hit |= _segment_hits_triangle(tris[p, e0], tris[p, e1], tris[q])
    truth = int(hit.sum())
    assert truth > 100
    assert count_self_intersections(soup) == truth
    voxels = np.diag([0.7, 0.9, 1.1, 1.0])
    voxels[:3, 3] = [-3.0, -2.0, -4.0]
    assert count_self_intersections(soup, voxels) == truth


def _marching_cubes_ball(centre_idx, radius, affine, dtype):
    """A ball's marching-cubes surface on a 40^3 grid, vertices through ``affine``."""
    from skimage.measure import marching_cubes

    idx = np.stack(np.meshgrid(*[np.arange(40.0)] * 3, indexing="ij"), -1)
    field = np.linalg.norm(idx - centre_idx, axis=-1) - radius
    v, f, _, _ = marching_cubes(field, 0.0)
    lps = (v.astype(float) @ affine[:3, :3].T + affine[:3, 3]).astype(dtype).astype(float)
    return trimesh.Trimesh(lps, f, process=False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_self_intersections_binned_by_the_marching_cubes_voxels(dtype):
    # an oblique, anisotropic, mirrored grid far from the origin
    rot = trimesh.transformations.rotation_matrix(0.4, [1, 2, 3])[:3, :3]
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.15, 0.2, -0.25])
    affine[:3, 3] = [-180.0, 95.0, -1210.0]
    a = _marching_cubes_ball(np.array([15.3, 17.1, 16.7]), 9.2, affine, dtype)
    b = _marching_cubes_ball(np.array([23.9, 18.4, 20.2]), 8.7, affine, dtype)
    far = _marching_cubes_ball(np.array([30.6, 30.2, 29.9]), 4.1, affine, dtype)
    for single in (a, b, trimesh.util.concatenate([a, far])):
        assert count_self_intersections(single, affine) == 0 == count_self_intersections(single)
    crossing = trimesh.util.concatenate([a, b])
    n = count_self_intersections(crossing)
    binned = check_mesh(crossing, grid_affine=affine).self_intersections
    assert binned > 100
    if dtype is np.float64:
        assert binned == n
    else:
        # Rounded to float32, triangles of the two shells in neighbouring voxels that
        # only touch on the voxel face between them look crossed to the unbinned
        # test; the binned one leaves contacts within four ulps out.
        assert 0.6 * n <= binned <= n


def test_pinched_vertex_is_not_manifold():
    # Two tetrahedra sharing exactly one vertex: every edge has two faces, yet the
    # shared vertex is a pinch that slicers read as two solids.
    t = trimesh.creation.box()
    u = trimesh.creation.box()
    u.apply_translation([1.0, 1.0, 1.0])
    pinched = trimesh.util.concatenate([t, u])
    pinched.merge_vertices()
    q = check_mesh(pinched)
    assert q.edge_manifold
    assert not q.vertex_manifold
    assert check_mesh(t).vertex_manifold


def test_smallest_feature_of_a_plate():
    # A 3 mm plate with a 20 mm block: the thinnest part is the plate.
    aff = np.diag([0.5, 0.5, 0.5, 1.0])
    mask = np.zeros((60, 60, 60), bool)
    mask[10:16, 10:50, 10:50] = True  # 6 voxels = 3 mm
    mask[16:56, 20:60, 20:60] = True
    t = smallest_feature_mm(mask, aff)
    assert 2.5 <= t <= 3.5
