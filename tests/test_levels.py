"""Level naming on constructed landmarks with a known answer.

The rules are the radiologist's: count from the sacrum (S1 joined to both ilia),
the lowest ribs (T12) or the first ribs (T1, with a rib-free C7 above); name only
with evidence; when the anchors disagree (transitional anatomy), name nothing.
"""

import numpy as np

from pipeline.segment.landmarks import PELVIS_CONTACT_MM3, RIB_CONTACT_MM3, Landmarks
from pipeline.segment.levels import irregular, name_levels

RIB = {"left": 2 * RIB_CONTACT_MM3, "right": 2 * RIB_CONTACT_MM3}
PELVIS = {"left": 2 * PELVIS_CONTACT_MM3, "right": 2 * PELVIS_CONTACT_MM3}


def _marks(ribs=(), pelvis=()):
    return Landmarks(ribs={k: dict(RIB) for k in ribs}, pelvis={k: dict(PELVIS) for k in pelvis})


def test_sacrum_and_lowest_ribs_that_agree_name_every_vertebra_with_certainty():
    # T11 T12 L1 L2 L3 L4 L5 S1: ribs on the first two, pelvis on the last.
    result = name_levels(8, _marks(ribs=(1, 2), pelvis=(8,)), [True] * 7 + [False])
    assert result.names == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert result.named and result.certain
    assert result.anchors == {"S1": 8, "T12": 2}
    assert result.per_vertebra[1]["anchor"] == "T12" and result.per_vertebra[1]["ribs"] == ["left", "right"]


def test_six_rib_free_vertebrae_above_the_sacrum_leave_every_vertebra_unnamed():
    # A lumbarised S1 (or a missing 12th rib pair): ribs on vertebra 1, six rib-free
    # vertebrae, then the sacrum. Counting from either landmark contradicts the other.
    result = name_levels(8, _marks(ribs=(1,), pelvis=(8,)), [True] * 8)
    assert not result.named and not result.certain
    assert result.names == [f"V{i}" for i in range(1, 9)]
    assert "disagree" in result.warnings[0]


def test_one_landmark_names_the_vertebrae_but_not_as_certain():
    result = name_levels(4, _marks(pelvis=(4,)), [True, True, True, False])
    assert result.names == ["L3", "L4", "L5", "S1"]
    assert result.named and not result.certain
    assert any("one landmark" in w for w in result.warnings)


def test_no_landmark_no_names_and_the_reason_is_given():
    result = name_levels(3, _marks(), [True] * 3)
    assert result.names == ["V1", "V2", "V3"] and not result.named
    assert "levels not named" in result.warnings[0]


def test_ribs_on_the_lowest_vertebra_in_view_do_not_make_it_t12():
    # The scan ends at a rib-bearing vertebra: the next one down may carry ribs too.
    result = name_levels(3, _marks(ribs=(1, 2, 3)), [True] * 3)
    assert not result.named


def test_ribs_above_a_vertebra_cut_by_the_scan_do_not_make_t12():
    # Only a vertebra wholly in the scan can testify that it carries no rib.
    result = name_levels(3, _marks(ribs=(1, 2)), [True, True, False])
    assert not result.named


def test_first_ribs_need_a_whole_rib_free_vertebra_above():
    assert name_levels(4, _marks(ribs=(2, 3, 4)), [True] * 4).names[:2] == ["C7", "T1"]
    # The top vertebra cut by the scan: it may be T1 with its ribs out of view.
    assert not name_levels(4, _marks(ribs=(2, 3, 4)), [False, True, True, True]).named


def test_a_pelvis_contact_high_up_the_spine_is_not_a_sacrum():
    # Thick bright tissue touching a thoracic vertebra on both sides (a contrast-
    # filled heart and aorta) is not the sacrum: S1 is at the foot of the spine.
    result = name_levels(6, _marks(ribs=(1, 2, 3, 4, 5, 6), pelvis=(3,)), [True] * 6)
    assert "S1" not in result.anchors


def test_rib_count_between_first_and_lowest_ribs_must_be_twelve():
    # C7, then 13 rib-bearing vertebrae, then L1: a 13th rib pair.
    ribs = tuple(range(2, 15))
    result = name_levels(16, _marks(ribs=ribs), [True] * 16)
    assert not result.named


def test_counting_stops_at_a_vertebra_far_taller_than_its_neighbours():
    # Two thoracic vertebrae taken as one above the anchors: names above it would
    # be shifted by one, so they are withheld; below it they stand.
    heights = [20.0, 21.0, 44.0, 22.0, 23.0, 24.0, 26.0, 28.0, 30.0, 32.0]
    n = len(heights)
    result = name_levels(n, _marks(ribs=(1, 2, 3, 4, 5), pelvis=()), [True] * n, heights)
    assert irregular(heights) == [3]
    assert result.names[:3] == ["V1", "V2", "V3"]
    assert result.names[3:6] == ["T11", "T12", "L1"]


def test_irregular_ignores_vertebrae_cut_by_the_scan():
    assert irregular([np.nan, 20.0, 21.0, 22.0]) == []
    assert irregular([20.0, 21.0, 9.0, 22.0]) == [3]
