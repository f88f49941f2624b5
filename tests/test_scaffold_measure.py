"""Measured scaffold properties against geometric truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.measure import marching_cubes

from pipeline.errors import InputError
from pipeline.scaffold import MATERIALS, build_scaffold, get_material
from pipeline.scaffold.measure import gibson_ashby_modulus_gpa
from pipeline.scaffold.thickness import distribution, local_thickness


def _weighted_percentiles(values, weights, q):
    order = np.argsort(values)
    cw = np.cumsum(weights[order]); cw /= cw[-1]
    return np.interp(np.asarray(q) / 100.0, cw, values[order])


def _gyroid_sheet_thickness(t, cell_mm, q):
    """Exact local wall thickness 2t / (k |grad f|) over the mid-surface f = 0 of the
    gyroid sheet, volume-weighted (area x thickness) percentiles."""
    n = 96
    g = (np.arange(n) + 0.5) / n * 2 * np.pi
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    f = np.sin(x) * np.cos(y) + np.sin(y) * np.cos(z) + np.sin(z) * np.cos(x)
    v, faces, _, _ = marching_cubes(f, 0.0, spacing=(2 * np.pi / n,) * 3)
    c = v[faces].mean(axis=1) + np.pi / n
    area = 0.5 * np.linalg.norm(np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]]), axis=1)
    cx, cy, cz = c.T
    grad = np.stack([np.cos(cx) * np.cos(cy) - np.sin(cz) * np.sin(cx),
                     np.cos(cy) * np.cos(cz) - np.sin(cx) * np.sin(cy),
                     np.cos(cz) * np.cos(cx) - np.sin(cy) * np.sin(cz)])
    thick = 2 * t / (2 * np.pi / cell_mm * np.linalg.norm(grad, axis=0))
    return _weighted_percentiles(thick, area * thick, q)


@pytest.fixture(scope="module")
def gyroid_report():
    s = build_scaffold("box:0,0,0,4,4,4", "gyroid-sheet", cell_mm=2.0, porosity=0.75)
    return s, s.measure(material="ti6al4v", max_block_voxels=96 ** 3)


def test_sheet_gyroid_wall_thickness_matches_exact_local_value(gyroid_report):
    s, report = gyroid_report
    t = s.parameters()["tpms_t"]
    exact = _gyroid_sheet_thickness(t, 2.0, [5, 50, 95])
    walls = report["wall_thickness_mm"]
    measured = [walls["p05"], walls["median"], walls["p95"]]
    np.testing.assert_allclose(measured, exact, rtol=0.10)


def test_mesh_and_voxel_porosity_agree_and_report_is_json(gyroid_report):
    s, report = gyroid_report
    assert report["porosity"] == pytest.approx(0.75, abs=0.01)
    assert abs(report["porosity"] - report["porosity_voxel"]) < 0.005
    assert report["interconnected_pore_fraction"] > 0.999 and report["closed_pores"] == 0
    assert report["smallest_feature_mm"] <= report["wall_thickness_mm"]["p05"]
    # surface area: trimesh's, over the solid and over the region volume
    assert report["surface_to_volume_per_mm"] == pytest.approx(s.mesh.area / s.mesh.volume)
    json.dumps(report)  # plain numbers only


def test_cubic_strut_pore_size_matches_geometry():
    """Cubic lattice, strut radius r, cell L: the pore is the ball between the struts,
    diameter sqrt(2) L - 2 r (cell centre to the nearest strut axis is L / sqrt(2))."""
    s = build_scaffold("box:0,0,0,6,6,6", "cubic", cell_mm=2.0, porosity=0.7)
    r = s.parameters()["strut_radius_mm"]
    report = s.measure()
    assert report["pore_diameter_mm"]["d50"] == pytest.approx(np.sqrt(2) * 2.0 - 2 * r, rel=0.10)
    # the struts: most of the solid is strut, 2 r across; nodes are thicker
    assert report["wall_thickness_mm"]["p05"] == pytest.approx(2 * r, rel=0.10)


def test_local_thickness_of_plate_and_rod_is_sub_voxel():
    """A 0.1 mm tilted plate (5 voxels) and a 0.4 mm rod, against their true size."""
    h = 0.02
    g = np.arange(90) * h
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    n = np.array([1.0, 2.0, 2.5]) / np.linalg.norm([1.0, 2.0, 2.5])
    plate = np.abs((x - 0.9) * n[0] + (y - 0.9) * n[1] + (z - 0.9) * n[2]) - 0.05
    rod = np.sqrt((x - 0.907) ** 2 + (y - 0.913) ** 2) - 0.2
    inner = (slice(20, 70),) * 3
    assert distribution(local_thickness(plate, (h, h, h))[inner])["p50"] == pytest.approx(0.1, rel=0.03)
    assert distribution(local_thickness(rod, (h, h, h))[inner])["p50"] == pytest.approx(0.4, rel=0.04)


def test_gibson_ashby_and_materials_table():
    ti = get_material("Ti-6Al-4V")
    # 30 % dense Ti-6Al-4V with C = 1, n = 2: 0.09 x 110 GPa
    assert gibson_ashby_modulus_gpa(0.3, ti.modulus_gpa) == pytest.approx(9.9)
    for m in MATERIALS.values():
        assert m.modulus_gpa > 0 and m.source
        assert m.modulus_range_gpa[0] <= m.modulus_gpa <= m.modulus_range_gpa[1]
    with pytest.raises(InputError):
        get_material("unobtainium")
