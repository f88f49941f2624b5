"""The private geometry layer against analytic truths: distances to spheres and
boxes, and the axes of a tilted synthetic vertebra."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.geometry.body import body_frame, crude_body
from pipeline.geometry.distance import depth_mm, signed_distance, within_mm


def _centres(shape, spacing):
    return np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij"), -1)


def test_depth_in_a_box_is_the_distance_to_the_nearest_face_centre():
    # Voxel centres of the box run a..b per axis: the nearest outside centre is
    # straight across the nearest face, one step past it.
    spacing = (0.5, 0.8, 1.25)
    mask = np.zeros((20, 16, 12), bool)
    lo, hi = np.array([3, 2, 4]), np.array([15, 12, 8])
    mask[3:16, 2:13, 4:9] = True
    idx = np.argwhere(mask)
    truth = np.min((np.minimum(idx - lo, hi - idx) + 1) * np.array(spacing), axis=1)
    np.testing.assert_allclose(depth_mm(mask, spacing)[mask], truth, rtol=1e-6)
    assert np.all(depth_mm(mask, spacing)[~mask] == 0)


def test_the_array_edge_is_outside_only_when_asked():
    spacing = (1.0, 0.5, 2.0)
    mask = np.zeros((10, 10, 10), bool)
    mask[:4, 1:9, 2:8] = True  # cut by the array's first plane along axis 0
    # At index 0 the nearest outside centre is across the side walls (axis 1,
    # 0.5 mm steps), or, when the edge counts as outside, 1 mm away across the cut.
    j = np.arange(3, 7)
    side = np.minimum(j, 9 - j) * 0.5
    assert depth_mm(mask, spacing)[0, 3:7, 5] == pytest.approx(side)
    assert depth_mm(mask, spacing, edge_is_outside=True)[0, 3:7, 5] == pytest.approx(np.minimum(1.0, side))
    full = np.ones((4, 4, 4), bool)
    assert np.isinf(depth_mm(full, spacing)).all()
    # Two 0.5 mm steps from the middle to just past the edge along axis 1.
    assert depth_mm(full, spacing, edge_is_outside=True).max() == pytest.approx(1.0)


def test_within_is_a_euclidean_ball_around_a_voxel():
    spacing = (0.6, 0.9, 1.5)
    mask = np.zeros((21, 15, 11), bool)
    mask[10, 7, 5] = True
    d = np.linalg.norm(_centres(mask.shape, spacing) - np.array([10, 7, 5]) * spacing, axis=-1)
    for r in (0.9, 2.0, 4.7):
        assert np.array_equal(within_mm(mask, spacing, r), d <= r + 1e-6)


@pytest.mark.parametrize("spacing", [0.5, (0.5, 0.5, 0.5)])
def test_signed_distance_of_a_voxelised_sphere(spacing):
    h = 0.5
    shape = (64, 64, 64)
    centre, radius = np.array([16.1, 15.8, 16.3]), 9.0
    exact = np.linalg.norm(_centres(shape, (h, h, h)) - centre, axis=-1) - radius
    sdf = signed_distance(exact < 0, spacing)
    assert sdf.dtype == np.float32
    assert np.all(np.sign(sdf[np.abs(exact) > h]) == np.sign(exact[np.abs(exact) > h]))
    near = np.abs(exact) < 3.0
    err = sdf[near] - exact[near]
    # A voxelised surface is off by up to half a voxel diagonal; on average the
    # half-voxel correction puts it on the true sphere.
    assert np.abs(err).max() <= h * np.sqrt(3) / 2 + 1e-6
    assert abs(float(err.mean())) < 0.05


def test_signed_distance_with_anisotropic_voxels_steps_by_the_spacing():
    spacing = np.array([0.5, 1.0, 2.0])
    lo, hi = np.array([10, 5, 3]), np.array([29, 14, 6])
    mask = np.zeros((40, 20, 10), bool)
    mask[10:30, 5:15, 3:7] = True
    sdf = signed_distance(mask, spacing)
    half = spacing.mean() / 2  # the half-voxel correction of anisotropic voxels
    idx = np.argwhere(mask)
    depth = np.min((np.minimum(idx - lo, hi - idx) + 1) * spacing, axis=1)
    np.testing.assert_allclose(sdf[mask], -(depth - half), atol=1e-5)
    # Outside, in line with the box along axis 0: straight to its nearest face.
    i = np.arange(40)
    out = (i < 10) | (i > 29)
    steps = np.where(i < 10, 10 - i, i - 29)[out]
    np.testing.assert_allclose(sdf[out, 10, 5], steps * 0.5 - half, atol=1e-5)


def _rotation(ax_deg, ay_deg):
    a, b = np.radians(ax_deg), np.radians(ay_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    return rx @ ry


def _vertebra(R, spacing=(0.8, 0.7, 1.0), body="cylinder"):
    """A tilted vertebra in its frame ``R`` (columns left, posterior, superior).

    ``"cylinder"``: a round body 36 mm across and 24 mm tall, and behind it a
    6 mm thick arch in its mid-height plane. ``"ellipsoid"``: a body alone,
    semi-axes 16, 14, 12 mm. Returns the mask, its affine, the body's centre and
    the crude body expected of an opening by a ball of 60 % of the largest
    inscribed radius.
    """
    shape = (80, 90, 70)
    affine = np.diag([*spacing, 1.0])
    centre = np.array(shape) * spacing / 2 - np.array([0, 8.0, 0])
    local = (_centres(shape, spacing) - centre) @ R
    x, y, z = local[..., 0], local[..., 1], local[..., 2]
    if body == "ellipsoid":
        mask = (x / 16) ** 2 + (y / 14) ** 2 + (z / 12) ** 2 <= 1
        # Its smallest radius of curvature (12²/16 = 9 mm) exceeds the ball's
        # 7.2 mm: the opening keeps it whole.
        return mask, affine, centre, mask
    rho = np.hypot(x, y)
    mask = (rho <= 18) & (np.abs(z) <= 12)
    # Largest inscribed radius 12 mm (half the height), ball r = 7.2 mm: the core is
    # the cylinder rho <= 10.8, |z| <= 4.8 and the opening is that core grown by r.
    r = 0.6 * 12
    expected = mask & (np.maximum(rho - 10.8, 0) ** 2 + np.maximum(np.abs(z) - 4.8, 0) ** 2 <= r * r + 1e-6)
    arch = (np.abs(x) <= 3) & (y > 17) & (y <= 40) & (np.abs(z) <= 3)
    arch |= (np.abs(x) <= 18) & (y > 34) & (y <= 40) & (np.abs(z) <= 3)
    return mask | arch, affine, centre, expected


@pytest.mark.parametrize("tilt", [(0.0, 0.0), (20.0, 0.0), (15.0, -12.0)])
def test_body_frame_of_a_tilted_synthetic_vertebra(tilt):
    R = _rotation(*tilt)
    mask, affine, centre, expected = _vertebra(R)
    est = body_frame(mask, affine)
    assert est.posterior_elements
    axes = est.frame.axes
    assert np.allclose(axes.T @ axes, np.eye(3), atol=1e-9) and np.linalg.det(axes) == pytest.approx(1.0)
    assert _angle(axes[:, 2], R[:, 2]) < 2.0  # superior: the body's short axis
    assert _angle(axes[:, 1], R[:, 1]) < 3.0  # posterior: towards the arch
    assert _angle(axes[:, 0], R[:, 0]) < 3.0
    assert np.linalg.norm(est.frame.origin - centre) < 1.5
    # The crude body is the opening of the cylinder: the arch is dropped.
    iou = (est.body & expected).sum() / (est.body | expected).sum()
    assert iou > 0.95, iou


def test_a_body_without_posterior_elements_falls_back_on_the_patients_posterior():
    R = _rotation(10.0, 0.0)
    mask, affine, centre, expected = _vertebra(R, body="ellipsoid")
    est = body_frame(mask, affine)
    assert not est.posterior_elements
    assert (est.body & expected).sum() / (est.body | expected).sum() > 0.97
    assert np.linalg.norm(est.frame.origin - centre) < 0.2
    assert np.degrees(np.arccos(est.frame.axes[:, 2] @ R[:, 2])) < 2.0
    y = np.array([0.0, 1.0, 0.0]) - R[1, 2] * R[:, 2]
    assert est.frame.axes[:, 1] @ (y / np.linalg.norm(y)) > np.cos(np.radians(2.0))
    assert np.array_equal(crude_body(mask, affine.diagonal()[:3]), est.body)


def test_segment_distance_against_closed_forms():
    from pipeline.geometry.lines import segment_distance

    # Skew lines along x (z = 0) and along y (z = 3): 3 mm apart where they cross.
    assert segment_distance((-20, 0, 0), (20, 0, 0), (5, -20, 3), (5, 20, 3)) == pytest.approx(3.0, abs=1e-6)
    # The same, but the second segment stops short of the crossing: the nearest
    # points are its end (5, 4, 3) and (5, 0, 0), 5 mm apart.
    assert segment_distance((-20, 0, 0), (20, 0, 0), (5, 4, 3), (5, 20, 3)) == pytest.approx(5.0, abs=1e-6)
    # Parallel segments 2 mm apart, overlapping; and end to end along one line.
    assert segment_distance((0, 0, 0), (30, 0, 0), (10, 2, 0), (50, 2, 0)) == pytest.approx(2.0, abs=1e-6)
    assert segment_distance((0, 0, 0), (30, 0, 0), (33, 0, 0), (50, 0, 0)) == pytest.approx(3.0, abs=1e-6)
    # Screws 40 mm long converging to 1.234 mm at an oblique angle.
    d = np.array([np.cos(0.3), np.sin(0.3), 0.0])
    got = segment_distance((0, 0, 0), 40 * d, (17, -15, 1.234), (17, 25, 1.234))
    assert got == pytest.approx(1.234, abs=1e-3)


def _angle(a, b) -> float:
    """Angle between two unit vectors, degrees."""
    return float(np.degrees(np.arccos(np.clip(a @ b, -1, 1))))
