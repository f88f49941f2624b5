"""Plans and scaffolds that take the measured bone density into account (phantom)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.bone_quality import level_near, scaffold_beside_bone
from pipeline.guide.augmentation import screw_bone_advice, with_bone_advice


def test_screws_in_low_density_vertebrae_carry_augmentation_advice(
    lumbar_plan, lumbar_bone, lumbar_anatomy, lumbar_truth
):
    truth = lumbar_truth["json"]["bone_density"]["trabecular_hu"]
    plan = with_bone_advice(lumbar_plan, lumbar_bone, lumbar_anatomy)
    assert [s.id for s in plan.screws] == [s.id for s in lumbar_plan.screws]  # advice, not a new plan
    for s in plan.screws:
        info = plan.planning[s.id]["bone_quality"]
        if truth[s.level] <= 110.0:  # L1 (88 HU) and L2 (100 HU)
            assert info["category"] == "likely_osteoporosis", s.id
            assert "cement" in info["advice"] and f"planned {s.diameter_mm:g} mm" in info["advice"]
            assert "110 HU" in info["reason"] and any("Halvorson" in src for src in info["sources"])
            assert info["largest_diameter_mm"] >= s.diameter_mm
        else:  # L3, L4 indeterminate; L5 likely normal
            assert info["advice"] is None, s.id
            assert info["category"] == ("likely_normal" if truth[s.level] > 160 else "indeterminate")
        # What the planner measured is kept.
        assert plan.planning[s.id]["isthmus_width_mm"] == lumbar_plan.planning[s.id]["isthmus_width_mm"]


def test_advice_without_a_measurement_says_so():
    info = screw_bone_advice(None, 6.5, 10.0)
    assert info["advice"] is None and info["category"] == "not_assessable" and "not measured" in info["reason"]


def test_scaffold_stiffness_beside_this_patients_bone(lumbar_bone, lumbar_segmentation, lumbar_truth):
    defect_centre = lumbar_truth["json"]["fracture"]["defect_centroid_lps"]
    # The defect lies outside L1's (collapsed) label, next to it: its bone is L1's.
    assert level_near(lumbar_segmentation, defect_centre) == "L1"
    scaffold_gpa = 9.77  # a 70 % titanium gyroid (Gibson-Ashby)
    record = scaffold_beside_bone(lumbar_bone, lumbar_segmentation, None, defect_centre, scaffold_gpa)
    hu = lumbar_bone.level("L1").mean_hu
    bone_mpa = 4730.0 * (hu / 1000.0 / 0.6) ** 1.56  # Morgan et al. 2003, vertebra
    assert record["level"] == "L1"
    assert record["bone"]["modulus_mpa"] == pytest.approx(bone_mpa, rel=1e-3)
    assert record["ratio_scaffold_to_bone"] == pytest.approx(scaffold_gpa * 1000 / bone_mpa, rel=1e-2)
    assert "estimate" in record["statement"] and "Morgan" in " ".join(record["bone"]["chain"])
    assert record["bone"]["calibration"]["calibrated"] is False


def test_level_near_a_point_far_from_any_vertebra(lumbar_segmentation):
    far = np.array([150.0, -300.0, 0.0])
    assert level_near(lumbar_segmentation, far) is None
