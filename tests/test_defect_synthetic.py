"""Fracture grading and defect region on synthetic spines with an exact truth.

Four elliptic-cylinder bodies (40 x 30 mm, 24 mm tall, 9 mm discs) with pedicles,
laminae and spinous processes, stacked along an axis tilted in the sagittal plane
(as lordosis tilts real bodies), with one body collapsed by a known amount. The
truth defect is the analytic intact body minus the collapsed one, voxelised by
voxel centre like the pipeline's masks.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pipeline.defect import defect_region, find_compression_fractures, fractures_to_fill, genant_grade, grade_levels
from pipeline.segment import VertebraSegmentation

NAMES = ["L1", "L2", "L3", "L4"]
H, GAP, A, B = 24.0, 9.0, 20.0, 15.0  # body height, disc, half width, half depth (mm)


def synthetic_spine(tilt_deg=15.0, kind="superior", loss=0.30, fractured="L2", spacing=(1.0, 0.8, 0.8), gap=GAP):
    """Labels of a straight, sagittally tilted spine and the truth defect.

    ``kind``: "superior"/"inferior" (wedge losing ``loss`` of the height at 15 %
    depth, hinged at 85 % depth), "crush" (top lowered by ``loss`` x height) or
    "biconcave" (both endplates dished by ``loss / 2`` x height at the centre).
    """
    t = np.radians(tilt_deg)
    up = np.array([0.0, np.sin(t), np.cos(t)])  # leans posteriorly going up for t > 0
    post = np.array([0.0, np.cos(t), -np.sin(t)])
    span = 4 * H + 3 * gap
    ext_z = span * np.cos(t) + 2 * (B + 30) * abs(np.sin(t)) + 16.0
    ext_y = span * abs(np.sin(t)) + (2 * B + 30) * np.cos(t) + 20.0
    shape = (int(ext_z / spacing[0]), int(ext_y / spacing[1]), int(56 / spacing[2]))
    # Origin off round numbers: no surface passes exactly through voxel centres.
    affine = np.array(
        [
            [0, 0, spacing[2], -27.63],
            [0, spacing[1], 0, -ext_y / 2 + 0.29],
            [spacing[0], 0, 0, -ext_z / 2 + 0.37],
            [0, 0, 0, 1.0],
        ]
    )
    idx = np.indices(shape, dtype=float).reshape(3, -1).T
    p = idx @ affine[:3, :3].T + affine[:3, 3]
    labels = np.zeros(len(p), np.int16)
    defect = np.zeros(len(p), bool)
    top = (span / 2 - H / 2) * up - 15.0 * post
    for i, name in enumerate(NAMES):
        q = p - (top - i * (H + gap) * up)
        x, y, z = q[:, 0], q @ post, q @ up
        body = ((x / A) ** 2 + (y / B) ** 2 <= 1) & (np.abs(z) <= H / 2)
        arch = (
            ((np.abs(np.abs(x) - 12.0) <= 3.5) & (y >= B - 2) & (y <= B + 12) & (np.abs(z - 3) <= 6))
            | ((np.abs(x) <= 15.5) & (y >= B + 12) & (y <= B + 16) & (np.abs(z - 3) <= 6))
            | ((np.abs(x) <= 2.5) & (y >= B + 16) & (y <= B + 30) & (np.abs(z - 2) <= 5))
        )
        vertebra = body | arch
        if name == fractured:
            ya, yp = -0.7 * B, 0.7 * B  # 15 % and 85 % of the depth
            wedge = loss * H * (yp - y) / (yp - ya)
            if kind == "superior":
                cut = z > H / 2 - wedge
            elif kind == "inferior":
                cut = z < -H / 2 + wedge
            elif kind == "crush":
                cut = z > H / 2 - loss * H
            elif kind == "biconcave":
                dish = np.clip(1 - (x / (0.8 * A)) ** 2 - (y / (0.8 * B)) ** 2, 0, 1)
                cut = np.abs(z) > H / 2 - 0.5 * loss * H * dish
            else:
                raise ValueError(kind)
            defect = body & cut
            vertebra &= ~defect
        labels[vertebra] = 20 + i
    seg = VertebraSegmentation(
        labels=labels.reshape(shape),
        affine=affine,
        levels={20 + i: n for i, n in enumerate(NAMES)},
        named=True,
        evidence="synthetic",
    )
    return seg, defect.reshape(shape)


def _iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("tilt", [-20.0, 0.0, 30.0])
def test_wedge_graded_and_outlined_whatever_the_tilt(tilt):
    seg, truth = synthetic_spine(tilt)
    found = find_compression_fractures(seg)
    assert [f.level for f in found] == ["L2"]
    f = found[0]
    iou = _iou(f.full_mask(), truth)
    print(f"tilt {tilt}: loss {f.info.height_loss}, IoU {iou:.3f}")
    # Wedge hinged at 85 % depth: 30 % lost at 15 %, 15 % at mid-depth, none behind.
    assert f.info.height_loss["anterior"] == pytest.approx(0.30, abs=0.025)
    assert f.info.height_loss["middle"] == pytest.approx(0.15, abs=0.025)
    assert abs(f.info.height_loss["posterior"]) < 0.025
    assert (f.grade, f.info.morphology) == (2, "wedge")
    assert iou >= 0.85
    assert f.info.volume_mm3 == pytest.approx(truth.sum() * 0.64, rel=0.15)


@pytest.mark.parametrize(
    "kind, loss, morphology, endplate, min_iou",
    [
        ("inferior", 0.30, "wedge", "inferior", 0.85),
        ("crush", 0.30, "crush", "superior", 0.85),
        ("biconcave", 0.35, "biconcave", "both", 0.75),
        ("superior", 0.50, "wedge", "superior", 0.85),
    ],
)
def test_morphology_endplate_and_region(kind, loss, morphology, endplate, min_iou):
    seg, truth = synthetic_spine(12.0, kind=kind, loss=loss)
    found = find_compression_fractures(seg)
    assert [f.level for f in found] == ["L2"]
    f = found[0]
    iou = _iou(f.full_mask(), truth)
    print(
        f"{kind}: grade {f.grade} {f.info.morphology}, losses {f.info.height_loss}, "
        f"endplate {f.info.collapsed_endplate}, IoU {iou:.3f}"
    )
    assert f.info.morphology == morphology
    assert f.grade == genant_grade(max(f.info.height_loss.values()))[0]
    assert f.info.collapsed_endplate == endplate
    assert iou >= min_iou


def test_restoration_keeps_clear_of_the_neighbour():
    # A 2.5 mm disc: the restored endplate would come within 2.5 mm of L1, so the
    # defect stops 3 mm (the default clearance) short of it, surface to surface.
    seg, truth = synthetic_spine(10.0, gap=2.5)
    mask = find_compression_fractures(seg)[0].full_mask()
    centres = ndimage.distance_transform_edt(seg.labels != 20, sampling=(1.0, 0.8, 0.8))
    gap = centres - 1.0  # voxel surfaces: one (largest) voxel step closer than centres
    kept = truth & (gap >= 3.0)
    print(
        f"closest defect voxel to L1: {gap[mask].min():.2f} mm (surfaces); "
        f"truth trimmed to {kept.sum() / truth.sum():.2f}; IoU {_iou(mask, kept):.3f}"
    )
    assert kept.sum() < 0.97 * truth.sum()  # the clearance does bite here
    assert mask.any() and gap[mask].min() >= 3.0 - 1e-6
    assert gap[mask].min() <= 3.5  # trimmed at the clearance, not far below it
    assert _iou(mask, kept) >= 0.85


def test_level_without_collapse_gives_an_empty_mask_and_says_why():
    seg, _ = synthetic_spine(10.0)
    found = defect_region(seg, "L3")
    assert found.full_mask().shape == seg.labels.shape and not found.any() and not found.full_mask().any()
    assert found.info.volume_mm3 == 0.0
    assert "no collapse" in found.info.reason and "L3" in found.info.reason


def test_the_fractures_to_fill_are_the_graded_ones_unless_a_level_is_named():
    seg, truth = synthetic_spine(10.0)
    (found,) = fractures_to_fill(seg)
    assert found.level == "L2" and found.grade == 2 and found.any()
    # A level named by the user comes back even without collapse, saying why it is empty.
    (named,) = fractures_to_fill(seg, level="L3")
    assert named.level == "L3" and named.grade == 0 and not named.any() and "no collapse" in named.info.reason
    mild, _ = synthetic_spine(10.0, loss=0.15)
    assert fractures_to_fill(mild) == []


def test_a_mild_collapse_the_user_names_is_outlined():
    seg, truth = synthetic_spine(10.0, loss=0.15)
    assert find_compression_fractures(seg) == []  # 15 %: below Genant grade 1
    found = defect_region(seg, "L2")
    assert found.any() and found.info.reason == ""
    mask = found.full_mask()
    assert (mask & truth).sum() >= 0.6 * truth.sum()
    assert found.info.collapsed_endplate == "superior"
    # The mask is cropped to its box; the volume is the whole defect's, once.
    voxel = abs(np.linalg.det(seg.affine[:3, :3]))
    assert found.info.volume_mm3 == pytest.approx(mask.sum() * voxel)
    assert found.mask.sum() == mask.sum() and found.mask.shape == tuple(np.ptp(np.argwhere(mask), 0) + 1)


def test_genant_thresholds():
    # Genant et al. 1993: < 20 % normal, 20-25 % mild, 25-40 % moderate, > 40 % severe.
    assert [genant_grade(v)[0] for v in (0.0, 0.19, 0.21, 0.24, 0.26, 0.39, 0.41, 0.8)] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_grading_expects_the_neighbours_shape():
    # Naturally wedged neighbours (anterior 10 % taller, middle 8 % shorter than
    # posterior): a level of the same shape is normal, one 30 % short anteriorly is
    # a moderate wedge, one short everywhere by 30 % a moderate crush.
    nb = {"anterior": 27.5, "middle": 23.0, "posterior": 25.0}
    same = {"anterior": 26.4, "middle": 22.1, "posterior": 24.0}
    wedge = {"anterior": 0.7 * 26.4, "middle": 22.1, "posterior": 24.0}
    crush = {k: 0.7 * v for k, v in nb.items()}
    g = grade_levels({"T12": nb, "L1": same, "L2": nb, "L3": wedge, "L4": nb, "L5": crush, "L6": nb})
    # A smaller body of the same shape: only its posterior height (4 % shorter than
    # the neighbours') differs, and that is normal variation.
    assert g["L1"].grade == 0
    assert abs(g["L1"].loss["anterior"]) < 0.005 and abs(g["L1"].loss["middle"]) < 0.005
    assert g["L1"].loss["posterior"] == pytest.approx(0.04, abs=0.005)
    assert (g["L3"].grade, g["L3"].morphology) == (2, "wedge")
    assert g["L3"].loss["anterior"] == pytest.approx(0.30, abs=0.005)
    assert (g["L5"].grade, g["L5"].morphology) == (2, "crush")
    assert g["L5"].loss["posterior"] == pytest.approx(0.30, abs=0.005)
    # The crushed level is not a reference for its neighbours.
    assert "L5" not in g["L4"].neighbours and g["L4"].grade == 0
