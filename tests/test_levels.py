"""Level naming landmarks on constructed anatomy with a known answer."""

import numpy as np

from pipeline.segment.distance import depth_mm
from pipeline.segment.levels import find_landmarks, name_levels, spacing_warnings
from pipeline.segment.vertebrae import Core

SPACING = (1.0, 1.0, 1.0)


def _core(i, z_mm, x_mm=60.0):
    return Core(i, np.array([z_mm, 40.0, x_mm]), 5000.0, np.array([25.0, 30.0, 40.0]), ())


def _spine_with(piece_fn):
    """Two stacked vertebral bodies (canonical SPL axes, 1 mm voxels) and one lateral
    bone piece, built by ``piece_fn``, touching the lower body on the patient's left."""
    shape = (80, 80, 120)
    labels = np.zeros(shape, np.int16)
    labels[45:70, 25:55, 45:75] = 1  # upper body
    labels[10:35, 25:55, 45:75] = 2  # lower body
    other = np.zeros(shape, bool)
    piece_fn(other)
    dist = depth_mm(labels > 0, SPACING) + depth_mm(other, SPACING)
    chain = [_core(1, 57.0), _core(2, 22.0)]  # superior first
    return find_landmarks(labels, other, dist, SPACING, chain)


def test_a_thick_bone_plate_beside_the_lowest_body_is_pelvis():
    def ilium(other):
        other[5:40, 20:60, 77:115] = True  # 38 mm wide, 35 mm tall, 40 mm deep block

    marks = _spine_with(ilium)
    assert marks.pelvis_sides == {2: {"left"}} and marks.rib_sides == {}


def test_thin_bone_fused_into_one_piece_is_not_pelvis():
    # A rib cage at coarse resolution: 3 mm thin ribs, fused by a few thick knots
    # (costal cartilage, crossings) that are as deep as an ilium.
    def rib_cage(other):
        for z in range(8, 38, 8):
            other[z : z + 3, 20:60, 77:118] = True  # a rib every 8 mm
        other[8:38, 20:60, 115:118] = True  # joined at their ends
        other[20:34, 30:44, 95:109] = True  # one 14 mm knot, depth 7 mm

    marks = _spine_with(rib_cage)
    assert marks.pelvis_sides == {}
    assert marks.rib_sides == {2: {"left"}}
    names, named, evidence, _ = name_levels(2, marks)
    assert "sacrum" not in evidence


def test_irregular_body_spacing_is_reported():
    names = ["T10", "T11", "T12", "L1", "L2", "L3"]
    regular = [_core(i, z) for i, z in enumerate([200.0, 172.0, 142.0, 110.0, 75.0, 38.0], start=1)]
    assert spacing_warnings(regular, names) == []
    # One body missed (a 65 mm gap where 30-35 mm are typical), one split in two (12 mm).
    missing = [_core(i, z) for i, z in enumerate([200.0, 172.0, 107.0, 75.0, 63.0, 30.0], start=1)]
    (warning,) = spacing_warnings(missing, names)
    assert "T11-T12 65 mm" in warning and "L1-L2 12 mm" in warning
