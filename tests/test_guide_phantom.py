"""Vertebra landmarks and bone surfaces found on the bundled phantom, against its exact truth.

The scan, its segmentation and the L1-L5 anatomy come from session fixtures in
conftest.py (read and computed once).
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from pipeline.guide import SurfaceDistance, surface_mesh

LUMBAR = ("L1", "L2", "L3", "L4", "L5")


def test_levels_are_segmented_and_named(lumbar_segmentation):
    names = set(lumbar_segmentation.levels.values())
    assert set(LUMBAR) <= names
    assert "T12" in names  # needed for L1's facet check


@pytest.mark.parametrize("level", LUMBAR)
def test_vertebra_frame_matches_the_model(lumbar_anatomy, lumbar_truth, level):
    frame = lumbar_truth["model"].spine.frames[level]
    got = lumbar_anatomy[level].frame
    for axis in range(3):
        angle = np.degrees(np.arccos(np.clip(got.axes[:, axis] @ frame.R[:, axis], -1, 1)))
        assert angle < 3.0, (level, axis, angle)
    assert np.linalg.det(got.axes) == pytest.approx(1.0)  # never mirrored
    assert np.linalg.norm(got.origin - frame.origin) < 2.5


@pytest.mark.parametrize("level", LUMBAR)
def test_isthmus_size_and_place_match_the_truth(lumbar_anatomy, lumbar_truth, level):
    an = lumbar_anatomy[level]
    for truth in lumbar_truth["levels"][level]["pedicles"]:
        ped = an.pedicles[truth["side"]]
        assert abs(ped.width_mm - truth["width_mm"]) <= 1.0, (level, truth["side"], ped.width_mm)
        assert abs(ped.height_mm - truth["height_mm"]) <= 1.5, (level, truth["side"], ped.height_mm)
        # The isthmus may sit anywhere along the uniform part of the pedicle, but on its axis.
        c, a = np.array(truth["isthmus_centre_lps"]), np.array(truth["axis_lps"])
        r = ped.centre - c
        assert np.linalg.norm(r - (r @ a) * a) <= 1.0
        assert abs(r @ a) <= 6.0
        # L5's pedicle is short and wider than tall: its axis is poorly defined by
        # the bone alone; the planner searches around it and does not depend on it.
        tol = 15.0 if level == "L5" else 10.0
        assert abs(ped.medial_angle_deg - truth["medial_angle_deg"]) <= tol
        assert abs(ped.cranial_angle_deg - truth["cranial_angle_deg"]) <= (8.0 if level == "L5" else 6.0)


def test_exact_surface_distance_agrees_with_trimesh(lumbar_segmentation, lumbar_surfaces):
    """The k-d tree closest-triangle search is exact: same distances and signs as
    trimesh's brute-force-checked proximity queries, near and far from the surface."""
    mesh = surface_mesh(lumbar_segmentation.mask("L3"), lumbar_segmentation.affine)
    surface = lumbar_surfaces.setdefault("L3", SurfaceDistance(mesh))
    rng = np.random.default_rng(7)
    pts, _ = trimesh.sample.sample_surface(mesh, 600, seed=3)
    pts = pts + rng.normal(size=pts.shape) * np.repeat([0.3, 1.5, 5.0], 200)[:, None]
    _, signed = surface.closest(pts)
    theirs = -trimesh.proximity.signed_distance(mesh, pts)  # trimesh: positive inside
    assert np.max(np.abs(signed - theirs)) < 1e-9
    assert (signed < 0).sum() > 100 and (signed > 0).sum() > 100


def test_segmented_surface_lies_on_the_true_surface(lumbar_segmentation, lumbar_truth):
    """What every check measures against: the mesh of the segmentation, within the
    scan's resolution of the model's exact surface (no offset)."""
    spine = lumbar_truth["model"].spine
    for level in ("L2", "L4"):
        mesh = surface_mesh(lumbar_segmentation.mask(level), lumbar_segmentation.affine)
        err = spine.vertebra_sdf(level, mesh.vertices[::5])
        assert abs(np.mean(err)) < 0.15, (level, np.mean(err))
        assert np.percentile(np.abs(err), 90) < 0.6, (level, np.percentile(np.abs(err), 90))
