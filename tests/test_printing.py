"""Process recommendations follow the rule table and reject what a process cannot print."""

import pytest

from pipeline.printing import CATEGORIES, recommend_process


def test_all_five_categories_ranked_best_first():
    ranked = recommend_process("anatomical_model", "planning", smallest_feature_mm=2.0)
    assert sorted(r["category"] for r in ranked) == sorted(CATEGORIES)
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(r["reasons"] for r in ranked)


@pytest.mark.parametrize(
    "purpose, best",
    [("teaching", "material_jetting"), ("low_cost", "material_extrusion"), ("planning", "vat_photopolymerization")],
)
def test_purpose_drives_the_choice(purpose, best):
    assert recommend_process("anatomical_model", purpose, smallest_feature_mm=2.0)[0]["category"] == best


def test_teaching_model_prefers_multicolour_processes():
    top2 = [r["category"] for r in recommend_process("anatomical_model", "teaching", smallest_feature_mm=2.0)[:2]]
    assert set(top2) == {"material_jetting", "binder_jetting"}


def test_feature_below_process_minimum_is_rejected_with_reason():
    # 0.4 mm: below binder jetting (0.5) and polymer powder bed fusion (0.7) minima.
    ranked = {r["category"]: r for r in recommend_process("anatomical_model", "planning", smallest_feature_mm=0.4)}
    for cat in ("binder_jetting", "powder_bed_fusion"):
        assert ranked[cat]["score"] == 0 and not ranked[cat]["feasible"]
        assert any("0.40 mm" in reason and "minimum" in reason for reason in ranked[cat]["reasons"])
    assert ranked["vat_photopolymerization"]["feasible"]
    # The same model with 2 mm features is printable by both: the 0.4 mm feature,
    # not the process, was rejected.
    coarse = {r["category"]: r for r in recommend_process("anatomical_model", "planning", smallest_feature_mm=2.0)}
    assert all(coarse[cat]["feasible"] and coarse[cat]["score"] > 0 for cat in ("binder_jetting", "powder_bed_fusion"))


def test_unknown_purpose_is_an_error():
    with pytest.raises(ValueError, match="no printing rules"):
        recommend_process("anatomical_model", "jewellery", smallest_feature_mm=1.0)
