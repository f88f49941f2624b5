"""prints.3mf read back with lib3mf (the 3MF Consortium's reader): one manifold,
named, coloured object per print, millimetres, on the plate in the positive octant,
and a recorded transform that puts every vertex back where it was in LPS."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

pytest.importorskip("lib3mf")

from pipeline.exchange.threemf import NAMESPACE, PlatePart, plate_translations, write_3mf  # noqa: E402


def matrix(meta, key):
    """A 4x4 matrix from its 16 row-major numbers in osteoprint's 3MF metadata."""
    return np.array([float(v) for v in meta[(NAMESPACE, key)].split()]).reshape(4, 4)


def _parts():
    a = trimesh.creation.icosphere(subdivisions=3, radius=12.0)
    a.apply_translation([-40.0, 60.0, -420.0])
    b = trimesh.creation.box(extents=[30.0, 20.0, 10.0])
    b.apply_translation([25.0, 80.0, -380.0])
    return [
        PlatePart(
            "L2 vertebra model",
            a.vertices,
            a.faces,
            (31, 119, 180),
            "anatomical model (planning)",
            {"kind": "anatomical_model", "level": "L2"},
        ),
        PlatePart(
            "L2 drill guide",
            b.vertices,
            b.faces,
            (70, 130, 200),
            "surgical-guide resin",
            {"kind": "guide", "level": "L2"},
        ),
    ]


def test_read_back_objects_units_positive_octant_and_way_back_to_lps(tmp_path, read_3mf):
    parts = _parts()
    write_3mf(tmp_path / "prints.3mf", parts, metadata={"series_hash": "abc123"})
    model, objects = read_3mf(tmp_path / "prints.3mf")
    from lib3mf import Lib3MF

    assert model.GetUnit() == Lib3MF.ModelUnit.MilliMeter
    assert [o["name"] for o in objects] == [p.name for p in parts]
    boxes = []
    for part, obj in zip(parts, objects):
        assert obj["manifold"]
        assert obj["colour"] == part.colour
        assert obj["meta"][(NAMESPACE, "level")] == "L2"
        assert obj["vertices"].min() >= 0.0, "3MF parts lie in the positive octant"
        assert obj["vertices"][:, 2].min() == pytest.approx(0.0, abs=1e-4), "parts sit on the plate"
        to_lps = matrix(obj["meta"], "build_to_lps")
        assert np.allclose(to_lps @ matrix(obj["meta"], "lps_to_build"), np.eye(4))
        assert np.allclose(to_lps[:3, :3], np.eye(3)), "translation only: never rotated or mirrored"
        back = obj["vertices"] @ to_lps[:3, :3].T + to_lps[:3, 3]
        assert np.abs(back - part.vertices).max() < 1e-3
        assert np.array_equal(obj["faces"], part.faces)
        boxes.append((obj["vertices"].min(0), obj["vertices"].max(0)))
    (lo0, hi0), (lo1, hi1) = boxes
    assert np.any(hi0 < lo1) or np.any(hi1 < lo0), "parts must not overlap on the plate"


def test_same_parts_give_the_same_file(tmp_path):
    write_3mf(tmp_path / "a.3mf", _parts())
    write_3mf(tmp_path / "b.3mf", _parts())
    assert (tmp_path / "a.3mf").read_bytes() == (tmp_path / "b.3mf").read_bytes()


def test_layout_keeps_a_gap_and_wraps_rows():
    bounds = [(np.zeros(3), np.array([100.0, 50.0, 30.0]))] * 5
    moves = plate_translations(bounds, gap_mm=5.0, row_width_mm=250.0)
    placed = [(lo + t, hi + t) for (lo, hi), t in zip(bounds, moves)]
    assert all(lo[:2].min() >= 5.0 - 1e-9 and lo[2] == 0.0 for lo, _ in placed)
    assert all(hi[0] <= 250.0 for _, hi in placed)
    rows = sorted({round(lo[1], 6) for lo, _ in placed})
    assert len(rows) == 3 and rows[1] - rows[0] == pytest.approx(55.0)
