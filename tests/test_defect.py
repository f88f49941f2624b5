"""Fracture grading and defect region on the bundled phantom, against its ground truth.

The phantom's L1 has an anterior wedge compression fracture (30 % anterior height
loss, posterior wall intact); ``truth/defect.nii.gz`` is the intact L1 body minus
the collapsed one and ``truth.json`` holds every body's heights at 15/50/85 % depth
measured on the exact signed-distance model.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.defect import defect_region, find_compression_fractures, measure_vertebral_bodies
from pipeline.errors import DesignError, InputError
from pipeline.exchange.nifti import read_nifti
from pipeline.volume import index_to_lps

SAMPLE = Path(__file__).resolve().parents[1] / "sample_scans" / "lumbar_phantom"


@pytest.fixture(scope="module")
def phantom(lumbar_scan, lumbar_segmentation):
    return lumbar_scan, lumbar_segmentation


@pytest.fixture(scope="module")
def truth():
    return json.loads((SAMPLE / "truth" / "truth.json").read_text())


@pytest.fixture(scope="module")
def truth_defect(phantom):
    volume, _ = phantom
    stored, affine = read_nifti(SAMPLE / "truth" / "defect.nii.gz")
    # Stored (column, row, slice): same voxels as the scan once the axes are reversed.
    assert np.allclose(affine[:, [2, 1, 0, 3]], volume.affine, atol=1e-4)
    return np.transpose(stored, (2, 1, 0)).astype(bool)


@pytest.fixture(scope="module")
def fractures(phantom):
    volume, seg = phantom
    return find_compression_fractures(seg, volume)


def _iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_l1_is_the_only_fracture_graded_moderate_wedge(fractures, truth):
    assert [f.level for f in fractures] == ["L1"]  # nothing on T12, L2-L5
    f = fractures[0]
    loss = f.info.height_loss["anterior"]
    print(
        f"L1 anterior loss {loss:.3f} (truth {truth['fracture']['anterior_height_loss_fraction']}), "
        f"grade {f.grade} {f.info.morphology}, losses {f.info.height_loss}"
    )
    assert f.grade == 2 and f.info.grading.grade_name == "moderate"
    assert f.info.morphology == "wedge"
    assert 0.25 <= loss < 0.40
    assert abs(loss - truth["fracture"]["anterior_height_loss_fraction"]) <= 0.05
    # The wedge spares the posterior wall: no posterior loss against the neighbours.
    assert abs(f.info.height_loss["posterior"]) < 0.05
    assert f.info.collapsed_endplate == "superior"


def test_body_heights_match_truth(phantom, truth):
    volume, seg = phantom
    measured = measure_vertebral_bodies(seg, volume)
    assert list(measured) == ["T12", "L1", "L2", "L3", "L4", "L5"]  # sacrum excluded
    errors = {}
    for level in truth["levels"]:
        if level["name"] not in measured:
            continue
        got = measured[level["name"]].heights
        errors[level["name"]] = {k: round(got[k] - v, 2) for k, v in level["body_heights_mm"].items()}
    print("height errors (mm):", errors)
    worst = max(abs(e) for per in errors.values() for e in per.values())
    assert worst <= 1.5
    # The body axis is the model's (lordosis: T12 tilts 6 deg, L5 22 deg from the scan axis).
    for level in truth["levels"]:
        if level["name"] in measured:
            cos = float(measured[level["name"]].axis_lps @ np.asarray(level["body_axis_lps"]))
            assert np.degrees(np.arccos(min(cos, 1.0))) < 3.0, level["name"]


def test_defect_matches_truth(fractures, truth_defect, truth, phantom):
    mask = fractures[0].full_mask()
    assert mask.shape == truth_defect.shape and mask.dtype == bool
    iou = _iou(mask, truth_defect)
    vol = fractures[0].info.volume_mm3
    true_vol = truth["fracture"]["defect_volume_mm3"]
    print(f"defect IoU {iou:.3f}, volume {vol:.0f} mm3 (truth {true_vol:.0f})")
    assert iou >= 0.8
    assert abs(vol - true_vol) <= 0.2 * true_vol
    # Never on bone: the defect is the space the collapse left.
    _, seg = phantom
    assert not (mask & (seg.labels != 0)).any()


def test_labels_alone_still_find_the_defect(phantom, truth_defect):
    _, seg = phantom
    found = find_compression_fractures(seg)
    assert [f.level for f in found] == ["L1"]
    assert found[0].info.morphology == "wedge" and found[0].grade == 2
    assert _iou(found[0].full_mask(), truth_defect) >= 0.75


def _mirror(array):
    return np.ascontiguousarray(array[:, ::-1, ::-1])


def _mirrored_affine(affine, shape):
    out = np.array(affine, float, copy=True)
    out[:3, 3] += out[:3, 1] * (shape[1] - 1) + out[:3, 2] * (shape[2] - 1)
    out[:3, 1:3] *= -1
    return out


def test_mirrored_storage_gives_the_same_defect_in_lps(phantom, fractures):
    volume, seg = phantom
    affine = _mirrored_affine(seg.affine, seg.labels.shape)
    seg_m = replace(seg, labels=_mirror(seg.labels), affine=affine)
    vol_m = replace(volume, hu=_mirror(volume.hu), affine=affine)
    found = defect_region(seg_m, "L1", vol_m)
    mirrored = found.full_mask()
    original = fractures[0].full_mask()

    def lps_set(mask, aff):
        pts = np.round(index_to_lps(aff, np.argwhere(mask)), 3)
        return set(map(tuple, pts))

    assert mirrored.sum() == original.sum() > 0
    assert lps_set(mirrored, affine) == lps_set(original, seg.affine)
    assert found.info.volume_mm3 == pytest.approx(fractures[0].info.volume_mm3)


def test_levels_the_user_cannot_fill(phantom):
    volume, seg = phantom
    with pytest.raises(InputError, match="L7"):
        defect_region(seg, "L7", volume)
    with pytest.raises(InputError, match="sacrum"):
        defect_region(seg, "S1", volume)


def test_level_cut_by_the_scan_edge_is_refused(phantom):
    _, seg = phantom
    cut = replace(seg, cut_by_scan_edge=("L5",))
    with pytest.raises(DesignError, match="cut by the scan"):
        defect_region(cut, "L5")


def test_json_report_has_no_mask(fractures):
    d = json.loads(json.dumps(fractures[0].info.to_dict()))
    assert d["level"] == "L1" and d["genant_grade"] == 2 and d["morphology"] == "wedge"
    assert set(d["expected_heights_mm"]) == {"anterior", "middle", "posterior"}
    assert d["defect_volume_mm3"] > 0 and "mask" not in json.dumps(d)
