"""Per-vertebra Dice on the real J2K series against TotalSegmentator's labels for it.

The shared real series (``../shared/data/real_ct_siemens_j2k``) comes from the
TotalSegmentator project's test data, which also holds that project's own
segmentation of the same series (``tests/reference_files/example_seg_dicom.nii.gz``,
class map "total": T12 = 32, T11 = 33 ...). It is a model's output at 1.5 mm, not a
manual truth, but it is an independent, widely used reference on real anatomy.
This script fetches the project's source distribution from PyPI once (into
``bench/cache/``), segments the series with osteoprint, and prints, per reference
vertebra, the best-overlapping osteoprint label and its Dice, plus the Dice of all
vertebra voxels together (which does not depend on where the two split).

Usage::

    python bench/bench_real_ct.py [--series DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

VERSION = "2.18.0"
MEMBER = f"totalsegmentator-{VERSION}/tests/reference_files/example_seg_dicom.nii.gz"
#: TotalSegmentator "total" class values of the vertebrae.
TS_VERTEBRAE = {25: "sacrum", 26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1"}
TS_VERTEBRAE.update({32 + i: f"T{12 - i}" for i in range(12)})


def reference_labels(cache: Path) -> Path:
    out = cache / "example_seg_dicom.nii.gz"
    if out.is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"totalsegmentator-{VERSION}.tar.gz"
    if not sdist.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"totalsegmentator=={VERSION}", "--no-deps",
             "--no-binary", ":all:", "-d", str(cache)],
            check=True,
        )
    with tarfile.open(sdist) as tar:
        data = tar.extractfile(MEMBER).read()
    out.write_bytes(data)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", default=str(HERE.parents[1] / "shared" / "data" / "real_ct_siemens_j2k"))
    args = ap.parse_args()

    from pipeline.exchange.nifti import read_nifti
    from pipeline.jobs.common import read_scan
    from pipeline.segment import segment_vertebrae
    from pipeline.volume import reorient

    ref_path = reference_labels(HERE / "cache" / "totalsegmentator")
    volume = read_scan(args.series)
    t0 = time.perf_counter()
    seg = segment_vertebrae(volume)
    seconds = time.perf_counter() - t0
    ours, ours_affine, _ = reorient(seg.labels, seg.affine, "SPL")
    ref, ref_affine = read_nifti(ref_path)
    ref, ref_affine, _ = reorient(ref, ref_affine, "SPL")
    if ours.shape != ref.shape or not np.allclose(ours_affine, ref_affine, atol=1e-3):
        print("the reference labels are not on the series' grid", file=sys.stderr)
        return 1
    print(f"series {args.series}: {ours.shape}, segmented in {seconds:.1f} s")
    print(f"osteoprint levels: {', '.join(seg.levels.values()) or 'none'} ({seg.evidence})")
    print(f"{'reference':>10} {'voxels':>8} {'osteoprint':>10} {'voxels':>8} {'Dice':>6}")
    for value, name in TS_VERTEBRAE.items():
        r = ref == value
        if not r.any():
            continue
        hit = ours[r]
        hit = hit[hit > 0]
        if hit.size == 0:
            print(f"{name:>10} {int(r.sum()):>8} {'-':>10} {0:>8} {0.0:>6.3f}")
            continue
        k = int(np.bincount(hit).argmax())
        o = ours == k
        dice = 2 * np.count_nonzero(o & r) / (o.sum() + r.sum())
        print(f"{name:>10} {int(r.sum()):>8} {seg.levels[k]:>10} {int(o.sum()):>8} {dice:>6.3f}")
    a, b = ours > 0, np.isin(ref, list(TS_VERTEBRAE))
    print(f"all vertebrae together: Dice {2 * np.count_nonzero(a & b) / (a.sum() + b.sum()):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
