"""Segmentation on variants of the bundled phantom that real scans bring.

The phantom is ours, so these are unit tests of the anatomy-driven steps, not proof
on real CT (tests/test_segment_real_ct.py is): a 3 mm routine-abdomen slice
spacing with osteoporotic bone (faint, thin-looking cortex and dim marrow), a
spine-targeted 105 mm field of view with scanner padding outside the
reconstruction circle, and a scan without a spine. Each is derived from the sample
by resampling its voxels, so the truth labels follow exactly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from pipeline.segment import segment_vertebrae
from pipeline.volume import CTVolume, crop_affine

LEVEL_VALUES = {19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5", 26: "S1"}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


def _matched(seg, truth) -> dict:
    """Truth level -> (our name for the label that covers most of it, Dice)."""
    out = {}
    for value, level in LEVEL_VALUES.items():
        ref = truth == value
        hit = seg.labels[ref]
        hit = hit[hit > 0]
        if not hit.size:
            out[level] = (None, 0.0)
            continue
        ours = int(np.bincount(hit).argmax())
        out[level] = (seg.levels[ours], _dice(seg.labels == ours, ref))
    return out


def _never_named_wrong(seg, matched: dict) -> None:
    for level, (name, _) in matched.items():
        assert name is None or not seg.named or name == level, matched


@pytest.fixture(scope="module")
def osteoporotic_3mm(lumbar_scan, lumbar_truth_labels):
    # Bone loses density: everything brighter than soft tissue keeps 55 % of its
    # excess (marrow ~80 HU, cortex a few hundred HU) ...
    hu = lumbar_scan.hu.astype(np.float32)
    soft = 40.0
    hu = np.where(hu > soft, soft + 0.55 * (hu - soft), hu)
    # ... and is seen in 3 mm slices: each slice the mean over its thickness.
    dz = float(np.linalg.norm(lumbar_scan.affine[:3, 0]))
    zoom = dz / 3.0
    thick = ndimage.uniform_filter1d(hu, size=max(int(round(3.0 / dz)), 1), axis=0)
    hu3 = ndimage.zoom(thick, (zoom, 1, 1), order=1, grid_mode=False)
    n = hu3.shape[0]
    z_src = np.linspace(0, hu.shape[0] - 1, n)
    affine = lumbar_scan.affine.copy()
    affine[:3, 0] *= z_src[1] - z_src[0]
    truth = lumbar_truth_labels[np.rint(z_src).astype(int)]
    volume = replace(lumbar_scan, hu=np.rint(hu3).astype(np.int16), affine=affine)
    return segment_vertebrae(volume), truth


def test_osteoporotic_bone_in_3mm_slices_is_found_and_never_misnamed(osteoporotic_3mm):
    seg, truth = osteoporotic_3mm
    matched = _matched(seg, truth)
    print({k: (n, round(d, 3)) for k, (n, d) in matched.items()})
    _never_named_wrong(seg, matched)
    found = [lv for lv, (_, d) in matched.items() if d >= 0.5]
    assert len(found) >= 6, matched
    # Measured: lumbar mean 0.89 (L1 0.82 .. L3 0.93); 0.79 before the arches'
    # marrow, ringed slice by slice but open in 3-D, was filled. S1 (0.33) is not
    # asserted: its faint junction with S2 is not found at this contrast.
    lumbar = [matched[lv][1] for lv in ("L1", "L2", "L3", "L4", "L5")]
    assert np.mean(lumbar) >= 0.87 and min(lumbar) >= 0.78, matched


@pytest.fixture(scope="module")
def narrow_fov(lumbar_scan, lumbar_truth_labels):
    # A spine-targeted reconstruction: 105 mm circle around the canal, scanner
    # padding (-2048 HU) outside it; ribs and ilia mostly out of view.
    hu, affine = lumbar_scan.hu, lumbar_scan.affine
    spine = np.argwhere(np.isin(lumbar_truth_labels, list(LEVEL_VALUES)))
    cy, cx = np.rint(spine.mean(axis=0)[1:]).astype(int)
    sp = np.linalg.norm(affine[:3, :3], axis=0)
    r = (int(52.5 / sp[1]), int(52.5 / sp[2]))
    box = (slice(None), slice(max(cy - r[0], 0), cy + r[0]), slice(max(cx - r[1], 0), cx + r[1]))
    narrow = hu[box].copy()
    yy, xx = np.mgrid[: narrow.shape[1], : narrow.shape[2]]
    outside = ((yy - (cy - box[1].start)) * sp[1]) ** 2 + ((xx - (cx - box[2].start)) * sp[2]) ** 2 > 52.5**2
    narrow[:, outside] = -2048
    volume = replace(lumbar_scan, hu=narrow, affine=crop_affine(affine, (0, box[1].start, box[2].start)))
    return segment_vertebrae(volume), lumbar_truth_labels[box]


def test_narrow_field_of_view_finds_the_vertebrae_and_names_none_wrong(narrow_fov):
    seg, truth = narrow_fov
    matched = _matched(seg, truth)
    print(seg.evidence, {k: (n, round(d, 3)) for k, (n, d) in matched.items()})
    _never_named_wrong(seg, matched)
    lumbar = [matched[lv][1] for lv in ("L1", "L2", "L3", "L4", "L5")]
    assert min(lumbar) >= 0.9, matched


def test_a_skull_without_a_spine_gives_no_vertebra():
    # A head: an ellipsoidal calvarium 6 mm thick (diploe between two tables) in
    # soft tissue, with padding outside the reconstruction circle.
    shape, mm = (120, 200, 200), (1.25, 0.9, 0.9)
    z, y, x = np.meshgrid(*[(np.arange(n) - n / 2) * s for n, s in zip(shape, mm)], indexing="ij")
    r = np.sqrt((z / 75.0) ** 2 + (y / 95.0) ** 2 + (x / 80.0) ** 2)
    hu = np.full(shape, -1000.0)
    hu[r < 1.08] = 30.0
    shell = (r >= 1.0) & (r < 1.075)
    hu[shell] = 1200.0
    hu[(r >= 1.02) & (r < 1.055)] = 400.0
    hu += np.random.default_rng(0).normal(0, 15, shape)
    affine = np.array([[0, 0, mm[2], 0], [0, mm[1], 0, 0], [mm[0], 0, 0, 0], [0, 0, 0, 1]], float)
    seg = segment_vertebrae(CTVolume(np.rint(hu).astype(np.int16), affine))
    assert not seg.levels and not seg.labels.any()
    assert any("no spine" in w for w in seg.warnings), seg.warnings
