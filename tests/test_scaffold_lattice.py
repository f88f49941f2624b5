"""Lattice fields, the porosity lookup, and when a lattice falls apart."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from pipeline.errors import DesignError, InputError
from pipeline.scaffold import build_scaffold
from pipeline.scaffold.calibrate import connectivity_limit, phase_connected
from pipeline.scaffold.lattice import get_lattice, lattice_names, porosity_lookup

RNG = np.random.default_rng(3)


def test_gyroid_levels_match_published_continuum_values():
    """Gyroid f = sin x cos y + sin y cos z + sin z cos x at 70 % porosity:
    skeletal t = 0.617, sheet t = 0.464 (the brief's reference values)."""
    skel = get_lattice("gyroid-skeletal").level_to_parameter(porosity_lookup("gyroid-skeletal").level(0.7), 2.0)[
        "tpms_t"
    ]
    sheet = get_lattice("gyroid-sheet").level_to_parameter(porosity_lookup("gyroid-sheet").level(0.7), 2.0)["tpms_t"]
    assert skel == pytest.approx(0.617, abs=0.005)
    assert sheet == pytest.approx(0.464, abs=0.005)


@pytest.mark.parametrize("name", ["gyroid-skeletal", "schwarz-p-skeletal", "diamond-skeletal"])
def test_symmetric_tpms_is_half_solid_at_zero(name):
    """These nodal surfaces map f to -f under a translation, so f > 0 fills half."""
    assert porosity_lookup(name).level(0.5) == pytest.approx(0.0, abs=2e-3)


def _brute_strut_distance(p, segments):
    """Distance to struts of all 27 neighbouring cells, by straightforward projection."""
    best = np.full(len(p), np.inf)
    for shift in product((-1, 0, 1), repeat=3):
        for a, b in segments:
            a2, b2 = np.add(a, shift), np.add(b, shift)
            d = b2 - a2
            t = np.clip(((p - a2) @ d) / (d @ d), 0, 1)
            best = np.minimum(best, np.linalg.norm(p - a2 - t[:, None] * d, axis=1))
    return best


CUBE = [((0, 0, 0), (1, 0, 0)), ((0, 0, 0), (0, 1, 0)), ((0, 0, 0), (0, 0, 1))]
BCC = [
    ((0, 0, 0), (0.5, 0.5, 0.5)),
    ((1, 0, 0), (0.5, 0.5, 0.5)),
    ((0, 1, 0), (0.5, 0.5, 0.5)),
    ((0, 0, 1), (0.5, 0.5, 0.5)),
    ((1, 1, 0), (0.5, 0.5, 0.5)),
    ((1, 0, 1), (0.5, 0.5, 0.5)),
    ((0, 1, 1), (0.5, 0.5, 0.5)),
    ((1, 1, 1), (0.5, 0.5, 0.5)),
]
# octet truss = every nearest-neighbour bond of the FCC lattice
FCC = [np.array(v, float) for v in ((0, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5))]
OCTET = [(a, a + np.array(d) / 2.0) for a in FCC for d in product((-1, 0, 1), repeat=3) if sum(map(abs, d)) == 2]


@pytest.mark.parametrize("name,segments", [("cubic", CUBE), ("bcc", BCC), ("octet", OCTET)])
def test_strut_field_is_distance_to_struts(name, segments):
    cell = 2.5
    pts = RNG.uniform(-4, 4, size=(400, 3))
    field = get_lattice(name).field(pts[:, 0], pts[:, 1], pts[:, 2], cell)
    # periodicity: the unit-cell position plus the 27 neighbouring cells see every strut
    unit = np.mod(pts / cell, 1.0)
    np.testing.assert_allclose(field * cell, _brute_strut_distance(unit, segments) * cell, atol=1e-5)


def test_lattice_names_round_trip_and_unknown_is_input_error():
    for name in lattice_names():
        assert get_lattice(name).name == name
    with pytest.raises(InputError):
        get_lattice("voronoi")


def test_schwarz_p_skeletal_disconnects_near_79_percent():
    """The solid (cos x + cos y + cos z > t) pinches off at t = 1, ~79 % porosity."""
    limit = connectivity_limit("schwarz-p-skeletal", "solid")
    assert 0.77 <= limit <= 0.81
    assert phase_connected("schwarz-p-skeletal", 0.75, "solid")
    assert not phase_connected("schwarz-p-skeletal", 0.85, "solid")


def test_falling_apart_design_is_rejected_with_a_clear_message():
    with pytest.raises(DesignError, match=r"falls apart.*above ~(77|78|79|80|81)%"):
        build_scaffold("box:0,0,0,6,6,6", "schwarz-p-skeletal", 2.0, 0.85)


def test_walls_below_process_minimum_are_rejected():
    with pytest.raises(DesignError, match="process minimum"):
        build_scaffold("box:0,0,0,6,6,6", "gyroid-sheet", 2.0, 0.8, min_wall_mm=0.3)


@pytest.mark.parametrize(
    "kwargs",
    [dict(porosity=1.2), dict(cell_mm=-1), dict(lattice="foam"), dict(rim_mm=-0.5), dict(grading="linear:Q,0.6,0.8")],
)
def test_bad_options_are_input_errors(kwargs):
    args = dict(region="sphere:0,0,0,5", lattice="gyroid-sheet", cell_mm=2.0, porosity=0.7)
    args.update(kwargs)
    with pytest.raises(InputError):
        build_scaffold(**args)
