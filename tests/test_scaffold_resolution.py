"""Scaffold meshes sized to the printer: the deviation bound, and the mesh sampled at
the printer's resolution against the exact lattice, the analytic region volume and an
independent mesh check."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.exchange.stl import read_stl, write_stl
from pipeline.mesh import check_mesh
from pipeline.printing import deviation_bound
from pipeline.scaffold import build_scaffold

CENTRE = np.array([1.0, -2.0, 3.0])
RADIUS = 5.0


@pytest.mark.parametrize(
    "material,process,bound",
    [
        # a quarter of the smallest printable wall or pore of the best-suited process
        ("ti6al4v", "powder_bed_fusion", 0.3 / 4),  # LPBF metal: 0.3 mm walls and pores
        ("hydroxyapatite", "vat_photopolymerization", 0.2 / 4),  # ceramic lithography: 0.2 mm
        ("pcl", "material_extrusion", 0.3 / 4),  # extruded polymer: 0.3 mm
    ],
)
def test_deviation_bound_is_a_quarter_of_the_printable_feature(material, process, bound):
    b = deviation_bound(material)
    assert b.process == process
    assert b.bound_mm == pytest.approx(bound)
    assert b.describe()["rule"] == b.rule and "0.25" in b.rule


@pytest.fixture(scope="module")
def printer_sized():
    spec = "sphere:" + ",".join(str(v) for v in (*CENTRE, RADIUS))
    bound = deviation_bound("ti6al4v").bound_mm
    return build_scaffold(spec, "gyroid", cell_mm=2.0, porosity=0.65, deviation_mm=bound), bound


def test_printer_sized_scaffold_is_closed_manifold_and_porous_as_asked(printer_sized, tmp_path):
    s, bound = printer_sized
    assert s.resolution["deviation_bound_mm"] == bound
    assert s.resolution["deviation_p999_mm"] <= bound and not s.warnings
    # the voxel is at most twice the bound, and coarser than the cell rule's 2 / 24 mm
    assert 2.0 / 24 < s.grid.voxel_mm <= 2 * bound + 1e-12
    # what the file holds, read back: closed, consistently wound, manifold, no crossings
    write_stl(tmp_path / "s.stl", s.mesh, "test scaffold")
    back = read_stl(tmp_path / "s.stl")
    q = check_mesh(back)
    assert q.watertight and q.winding_consistent and q.edge_manifold and q.vertex_manifold
    assert q.self_intersections == 0 and q.degenerate_faces == 0
    # porosity of the file against the analytic sphere volume
    porosity = 1.0 - back.volume / (4.0 / 3.0 * np.pi * RADIUS**3)
    assert porosity == pytest.approx(0.65, abs=0.01)
    assert s.porosity_mesh == pytest.approx(porosity, abs=1e-4)


def test_surface_stays_within_the_bound_of_the_exact_gyroid(printer_sized):
    """First-order distance from each face centroid to the exact skeletal gyroid
    ``f = t`` (analytic field and gradient), away from the sphere's boundary crease."""
    s, bound = printer_sized
    t = s.parameters()["tpms_t"]
    k = 2 * np.pi / 2.0
    c = s.mesh.triangles_center
    inside = np.linalg.norm(c - CENTRE, axis=1) < RADIUS - 0.3
    x, y, z = (k * (c[inside] - s.design.origin)).T
    f = np.sin(x) * np.cos(y) + np.sin(y) * np.cos(z) + np.sin(z) * np.cos(x)
    grad = k * np.stack(
        [
            np.cos(x) * np.cos(y) - np.sin(z) * np.sin(x),
            np.cos(y) * np.cos(z) - np.sin(x) * np.sin(y),
            np.cos(z) * np.cos(x) - np.sin(y) * np.sin(z),
        ]
    )
    distance = np.abs(f - t) / np.linalg.norm(grad, axis=0)
    assert inside.sum() > 0.5 * len(c)
    assert np.percentile(distance, 99.9) <= bound
    assert distance.max() <= 2 * bound
