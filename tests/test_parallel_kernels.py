"""The fast paths give exactly what the plain library calls give.

Threaded slab filters against scipy.ndimage, the grid-accelerated mesh distance
against trimesh's R-tree query,
the process map against a plain loop, and a background branch against a direct call.
"""

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from pipeline import parallel
from pipeline.mesh.surface import _max_distance_to_surface
from pipeline.segment import filters


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(7)
    field = ndimage.gaussian_filter(rng.random((90, 150, 160)), 3)
    return field, field > np.percentile(field, 70)


@pytest.fixture
def two_workers(monkeypatch):
    # Force the parallel path whatever this machine has, and let small arrays through.
    monkeypatch.setattr(filters, "workers", lambda: 2)
    monkeypatch.setattr(filters, "_MIN_PARALLEL_VOXELS", 0)


def test_slab_filters_are_bit_identical_to_scipy(blobs, two_workers):
    field, mask = blobs
    img = (field * 1000).astype(np.float32)
    assert np.array_equal(filters.gaussian(img, 0.5), ndimage.gaussian_filter(img, 0.5))
    sigma = (1.6, 1.28, 1.28)
    assert np.array_equal(filters.gaussian(img, sigma), ndimage.gaussian_filter(img, sigma))
    assert np.array_equal(filters.maximum(img, 5), ndimage.maximum_filter(img, size=5))
    assert np.array_equal(filters.minimum(img, 3), ndimage.minimum_filter(img, size=3))
    cross = ndimage.generate_binary_structure(3, 1)
    assert np.array_equal(filters.binary_erosion(mask, cross), ndimage.binary_erosion(mask, cross))
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = ndimage.generate_binary_structure(2, 1)
    assert np.array_equal(filters.binary_dilation(mask, plane), ndimage.binary_dilation(mask, plane))


def test_mesh_distance_matches_trimesh_rtree_query():
    surface = trimesh.creation.icosphere(subdivisions=4, radius=10.0)
    rng = np.random.default_rng(3)
    directions = rng.normal(size=(500, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    points = directions * (10.0 + rng.uniform(-0.08, 0.08, size=(500, 1)))
    _, exact, _ = trimesh.proximity.closest_point(surface, points)
    assert _max_distance_to_surface(points, surface, 0.2) == pytest.approx(exact.max(), abs=1e-9)
    # Farther than the reach from every triangle: reported as infinite, never as near.
    far = np.vstack([points, [[0.0, 0.0, 10.5]]])
    assert _max_distance_to_surface(far, surface, 0.2) == np.inf


def _square(x):
    if x == 13:
        raise ValueError("unlucky")
    return x * x


@pytest.mark.parametrize("n_workers", [1, 2])
def test_process_map_keeps_order_and_reports_each_result(monkeypatch, n_workers):
    monkeypatch.setattr(parallel, "workers", lambda: n_workers)
    seen = []
    assert parallel.map_processes(_square, range(8), on_result=seen.append) == [x * x for x in range(8)]
    assert seen == [x * x for x in range(8)]
    with pytest.raises(ValueError, match="unlucky"):
        parallel.map_processes(_square, [1, 13, 2])


def test_background_branch_gives_its_value_or_its_error(blobs):
    field, _ = blobs
    branch = parallel.Background(ndimage.gaussian_filter, field, 2.0)
    here = ndimage.uniform_filter(field, 5)  # this thread's own work meanwhile
    assert np.array_equal(branch.result(), ndimage.gaussian_filter(field, 2.0))
    assert np.array_equal(here, ndimage.uniform_filter(field, 5))
    failing = parallel.Background(_square, 13)
    with pytest.raises(ValueError, match="unlucky"):
        failing.result()
