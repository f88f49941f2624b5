"""Segmentation and level naming on real CT, against the truth each series comes with.

* The shared GE full-spine CT (C7-coccyx, 2.5 mm): its README's body positions of
  T12 and L1-L5 (visual reading, +-10 mm), and the landmarks it states (first rib,
  last rib, sacrum, which agree).
* TotalSegmentator's 3 mm torso example (T11-S1) with that project's own vertebra
  labels (``totalseg_reference`` in conftest), and the scans users bring made from
  it: feet-first, a sagittal stack, a spine-targeted 105 mm field of view.
* The shared J2K slab (T11/T12) with TotalSegmentator's labels of it.
* No spine: the GE scan's thighs.

The references are a model's output (TotalSegmentator) or a visual reading, not
manual truth; the figures asserted are what this version measures (see
bench/bench_real_ct.py for all of them), and below the issue's targets where
stated.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.exchange.nifti import read_ct_nifti, read_nifti
from pipeline.exchange.scan import load_scan
from pipeline.segment import segment_vertebrae
from pipeline.volume import axis_codes, crop_affine, index_to_lps, reorient

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: TotalSegmentator class values of the vertebrae (v2 class map).
TS_LEVELS = {26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1", 32: "T12", 33: "T11"}
#: GE full-spine body z ranges (mm) from ../shared/data/README.md.
GE_BODIES = {
    "L5": (202, 233),
    "L4": (238, 268),
    "L3": (272, 300),
    "L2": (305, 333),
    "L1": (337, 364),
    "T12": (368, 394),
}


def _on_grid(labels, affine, volume):
    out, out_affine, _ = reorient(labels, affine, axis_codes(volume.affine))
    assert out.shape == volume.shape and np.allclose(out_affine, volume.affine, atol=1e-3)
    return np.ascontiguousarray(out).astype(np.int16)


def _dice(a, b):
    return 2.0 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


def _per_level_dice(seg, ref):
    """Reference level -> (our level name, Dice) for the best-overlapping label of ours."""
    out = {}
    for value, name in TS_LEVELS.items():
        r = ref == value
        if r.sum() < 1000:
            continue  # a sliver of a vertebra at the scan's edge
        hit = seg.labels[r]
        hit = hit[hit > 0]
        if hit.size == 0:
            out[name] = (None, 0.0)
            continue
        k = int(np.bincount(hit).argmax())
        out[name] = (seg.levels.get(k), _dice(seg.labels == k, r))
    return out


def _body_z(seg, name):
    """Median z (mm) of the front 30 % of a vertebra's voxels: its body."""
    value = next(v for v, n in seg.levels.items() if n == name)
    pts = index_to_lps(seg.affine, np.argwhere(seg.labels == value))
    front = pts[pts[:, 1] <= np.percentile(pts[:, 1], 30)]
    return float(np.median(front[:, 2]))


@pytest.fixture(scope="module")
def ge():
    folder = SHARED / "real_ct_ge_fullspine"
    if not folder.is_dir():
        pytest.skip(f"shared real CT not present at {folder}")
    volume, _ = load_scan(folder)
    return volume, segment_vertebrae(volume)


@pytest.fixture(scope="module")
def torso(totalseg_reference):
    volume = read_ct_nifti(totalseg_reference("example_ct.nii.gz"))
    labels, affine = read_nifti(totalseg_reference("spine_report/example_ct_report/totalseg.nii.gz"))
    return volume, _on_grid(labels, affine, volume), segment_vertebrae(volume)


def test_full_spine_named_from_sacrum_and_lowest_ribs_that_agree(ge):
    _, seg = ge
    names = list(seg.levels.values())
    expected = [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)] + ["S1"]
    assert names[-len(expected) :] == expected
    assert seg.named and seg.certain
    anchors = {v["anchor"]: v["level"] for v in seg.vertebrae if v["anchor"]}
    assert anchors.get("S1") == "S1" and anchors.get("T12") == "T12"


def test_full_spine_bodies_lie_where_the_readme_says(ge):
    _, seg = ge
    for level, (z0, z1) in GE_BODIES.items():
        z = _body_z(seg, level)
        assert z0 - 6 <= z <= z1 + 6, f"{level} body at z {z:.0f} mm, README {z0}-{z1}"


def test_full_spine_thighs_show_no_spine(ge):
    volume, _ = ge
    hu, affine, _ = reorient(volume.hu, volume.affine, "SPL")
    z = affine[2, 3] + np.arange(hu.shape[0]) * affine[2, 0]
    legs = np.flatnonzero(z < 60.0)
    thighs = replace(
        volume, hu=np.ascontiguousarray(hu[legs[0] : legs[-1] + 1]), affine=crop_affine(affine, [legs[0], 0, 0])
    )
    seg = segment_vertebrae(thighs)
    assert seg.levels == {} and not seg.labels.any()
    assert "no spine" in seg.warnings[0]


def test_torso_levels_named_right_and_vertebrae_overlap_the_reference(torso):
    volume, ref, seg = torso
    dice = _per_level_dice(seg, ref)
    assert all(got == want for want, (got, _) in dice.items()), dice
    assert seg.certain
    union = _dice(seg.labels > 0, np.isin(ref, list(TS_LEVELS)))
    mean = float(np.mean([d for _, d in dice.values()]))
    # Measured 0.877 and 0.832 (0.866, 0.820 before discs were cut column by column);
    # the targets (0.90, 0.85) are not reached yet.
    assert union >= 0.87 and mean >= 0.83, (union, mean, dice)


def test_torso_stored_feet_first_or_sagittally_gives_the_same_vertebrae(torso):
    volume, _, seg = torso
    hu, affine, _ = reorient(volume.hu, volume.affine, "SPL")
    base = reorient(seg.labels, seg.affine, "SPL")[0]
    stacks = {"IPL": None, "LIP": None}
    for codes in stacks:
        arr, aff, _ = reorient(hu, affine, codes)
        other = segment_vertebrae(replace(volume, hu=np.ascontiguousarray(arr), affine=aff))
        assert list(other.levels.values()) == list(seg.levels.values())
        assert np.array_equal(reorient(other.labels, other.affine, "SPL")[0], base), codes


def test_torso_in_a_105_mm_field_of_view_finds_the_vertebrae_but_names_none(torso):
    # A spine-targeted reconstruction: neither ribs nor ilia reach the reconstruction
    # circle, so nothing fixes a level; padding outside the circle at -2048 HU.
    volume, ref, full = torso
    hu, affine, undo = reorient(volume.hu, volume.affine, "SPL")
    lab = reorient(ref, volume.affine, "SPL")[0]
    spine = np.argwhere(np.isin(lab, list(TS_LEVELS)))
    cy, cx = spine.mean(axis=0)[1:].astype(int)
    sp = np.linalg.norm(affine[:3, :3], axis=0)
    r = [int(52.5 / sp[1]), int(52.5 / sp[2])]
    box = (slice(None), slice(cy - r[0], cy + r[0]), slice(cx - r[1], cx + r[1]))
    narrow = hu[box].astype(np.int16)
    yy, xx = np.mgrid[: narrow.shape[1], : narrow.shape[2]]
    narrow[:, ((yy - r[0]) * sp[1]) ** 2 + ((xx - r[1]) * sp[2]) ** 2 > 52.5**2] = -2048
    seg = segment_vertebrae(replace(volume, hu=narrow, affine=crop_affine(affine, [0, box[1].start, box[2].start])))
    assert len(seg.levels) == len(full.levels) and not seg.named
    assert _dice(seg.labels > 0, np.isin(lab[box], list(TS_LEVELS))) >= 0.8


def test_j2k_slab_vertebrae_overlap_the_reference(totalseg_reference):
    folder = SHARED / "real_ct_siemens_j2k"
    if not folder.is_dir():
        pytest.skip(f"shared real CT not present at {folder}")
    volume, _ = load_scan(folder)
    labels, affine = read_nifti(totalseg_reference("example_seg_dicom.nii.gz"))
    ref = _on_grid(labels, affine, volume)
    seg = segment_vertebrae(volume)
    # T11 (cut by the top slice) and T12: no sacrum, no whole rib-free neighbour.
    assert len(seg.levels) == 2 and not seg.named
    union = _dice(seg.labels > 0, np.isin(ref, list(TS_LEVELS)))
    # Measured 0.801 (0.794 before discs were cut column by column); the issue's
    # target (0.85) is not reached yet.
    assert union >= 0.80, union
