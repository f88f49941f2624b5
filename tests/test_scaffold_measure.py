"""Measured scaffold properties against geometric truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.measure import marching_cubes, mesh_surface_area

from pipeline.errors import InputError
from pipeline.scaffold import MATERIALS, build_scaffold, get_material
from pipeline.scaffold.measure import gibson_ashby_modulus_gpa
from pipeline.scaffold.thickness import distribution, local_thickness


def _weighted_percentiles(values, weights, q):
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    cw /= cw[-1]
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
    grad = np.stack(
        [
            np.cos(cx) * np.cos(cy) - np.sin(cz) * np.sin(cx),
            np.cos(cy) * np.cos(cz) - np.sin(cx) * np.sin(cy),
            np.cos(cz) * np.cos(cx) - np.sin(cy) * np.sin(cz),
        ]
    )
    thick = 2 * t / (2 * np.pi / cell_mm * np.linalg.norm(grad, axis=0))
    return _weighted_percentiles(thick, area * thick, q)


def _gyroid_sheet_area_mm2(t, lo_mm, hi_mm, cell_mm=2.0, centre_mm=2.0, n=240):
    """Surface of the exact sheet gyroid ``|f| < t`` inside the cube ``[lo_mm, hi_mm]^3``
    (lattice origin at ``centre_mm`` on every axis): both offset surfaces ``f = +-t``,
    marching cubes of the analytic field on a grid far finer than any build's."""
    g = np.linspace(lo_mm, hi_mm, n + 1)
    x, y, z = np.meshgrid(*(2 * np.pi / cell_mm * (g - centre_mm),) * 3, indexing="ij")
    f = np.sin(x) * np.cos(y) + np.sin(y) * np.cos(z) + np.sin(z) * np.cos(x)
    h = g[1] - g[0]
    return sum(mesh_surface_area(*marching_cubes(f, level, spacing=(h, h, h))[:2]) for level in (t, -t))


def _gyroid_face_cut_mm2(t, side_mm, n=2000):
    """Solid cut by the six faces of a cube of whole cells whose faces lie on the
    lattice planes x, y, z = 0: the share of each face where ``|f| < t``."""
    u = (np.arange(n) + 0.5) / n * 2 * np.pi
    a, b = np.meshgrid(u, u, indexing="ij")
    # f(0, a, b), f(a, 0, b), f(a, b, 0)
    planes = (np.sin(a) * np.cos(b) + np.sin(b), np.sin(b) * np.cos(a) + np.sin(a), np.sin(a) * np.cos(b) + np.sin(b))
    return sum(2 * side_mm**2 * float(np.mean(np.abs(p) < t)) for p in planes)


@pytest.fixture(scope="module")
def gyroid_report():
    s = build_scaffold("box:0,0,0,4,4,4", "gyroid-sheet", cell_mm=2.0, porosity=0.75)
    return s, s.measure(material="ti6al4v", max_block_voxels=96**3)


def test_sheet_gyroid_wall_thickness_matches_exact_local_value(gyroid_report):
    s, report = gyroid_report
    t = s.parameters()["tpms_t"]
    exact = _gyroid_sheet_thickness(t, 2.0, [5, 50, 95])
    walls = report.wall_thickness_mm
    measured = [walls["p05"], walls["median"], walls["p95"]]
    np.testing.assert_allclose(measured, exact, rtol=0.10)


def test_mesh_and_voxel_porosity_agree_and_report_is_json(gyroid_report):
    s, report = gyroid_report
    assert report.porosity == pytest.approx(0.75, abs=0.01)
    assert abs(report.porosity - report.porosity_voxel) < 0.005
    assert report.interconnected_pore_fraction > 0.999 and report.closed_pores == 0
    assert report.smallest_feature_mm <= report.wall_thickness_mm["p05"]
    # the solid volume against trimesh's own (mass properties, not our signed volumes)
    assert report.solid_volume_mm3 == pytest.approx(s.mesh.volume, rel=1e-9)
    # The surface against the exact gyroid's. Away from the box's faces the lattice's
    # own surface: 0.3 mm in, marching cubes is within a few tenths of a percent.
    t = s.parameters()["tpms_t"]
    c = s.mesh.triangles_center
    inner = np.all((c > 0.3) & (c < 3.7), axis=1)
    assert s.mesh.area_faces[inner].sum() == pytest.approx(_gyroid_sheet_area_mm2(t, 0.3, 3.7), rel=0.01)
    # The whole report: the 4 mm box holds 2 x 2 x 2 cells of 2 mm whose faces lie on
    # the lattice's zero planes (origin at the box centre). Marching cubes cuts the
    # creases where walls meet the faces by a fraction of a voxel (1.5 % of the area
    # at this voxel), hence 3 %.
    exact = _gyroid_sheet_area_mm2(t, 0.0, 4.0) + _gyroid_face_cut_mm2(t, 4.0)
    assert report.surface_area_mm2 == pytest.approx(exact, rel=0.03)
    assert report.specific_surface_per_mm == pytest.approx(exact / 64.0, rel=0.03)
    json.dumps(report.to_dict())  # plain numbers only


def test_cubic_strut_pore_size_matches_geometry():
    """Cubic lattice, strut radius r, cell L: the pore is the ball between the struts,
    diameter sqrt(2) L - 2 r (cell centre to the nearest strut axis is L / sqrt(2))."""
    s = build_scaffold("box:0,0,0,6,6,6", "cubic", cell_mm=2.0, porosity=0.7)
    r = s.parameters()["strut_radius_mm"]
    report = s.measure()
    assert report.pore_diameter_mm["d50"] == pytest.approx(np.sqrt(2) * 2.0 - 2 * r, rel=0.10)
    # the struts: most of the solid is strut, 2 r across; nodes are thicker
    assert report.wall_thickness_mm["p05"] == pytest.approx(2 * r, rel=0.10)


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
