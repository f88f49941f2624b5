"""Run the hostile-input corpus (tests/hostile) case by case and print how each was handled.

Every case runs in its own child process (all the commands the case applies to), so
its peak resident memory (``wait4``'s ``ru_maxrss``) is its own. A run is handled as
expected when it exits with the case's documented status, prints exactly one
``osteoprint: error:`` line (after progress lines only), no traceback, and its error
names what the case expects. Output-place checks (nothing written, previous result
untouched) and the privacy grep are in the tests; this bench gives the table and the
memory figures.

Usage::

    python bench/bench_hostile.py            # every case, every command
    python bench/bench_hostile.py --class resources
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROGRESS = re.compile(r"^(\[ *[0-9.]+ s\] | {9})")


def make_bases(root: Path):
    from pipeline.exchange.scan import load_scan
    from tests.hostile import inputs as I
    from tests.hostile.cases import Bases

    I.write_dicom(I.body_hu(), I.BODY_AFFINE, root / "body")
    volume, _ = load_scan(REPO / "sample_scans" / "lumbar_phantom" / "dicom")
    hu, affine = I.small_phantom(volume)
    I.write_dicom(hu, affine, root / "small" / "scan", seed=3)
    centre = affine[:3, :3] @ ((hu.shape[0] - 1) / 2, (hu.shape[1] - 1) / 2, (hu.shape[2] - 1) / 2) + affine[:3, 3]
    plan, guide = I.plan_and_guide(root, centre)
    return Bases(body=root / "body", small=root / "small" / "scan", plan=plan, guide=guide)


def handled(case, code: int, err: str) -> bool:
    lines = err.splitlines()
    if not lines or "Traceback" in err:
        return False
    *progress, last = lines
    return (
        code == case.code
        and last.startswith("osteoprint: error: ")
        and case.expect in last
        and all(PROGRESS.match(line) for line in progress)
    )


def main() -> int:
    from tests.hostile.corpus import CASES
    from tests.hostile.resources import run_in_child

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--class", dest="cls", help="only this case class")
    args = ap.parse_args()
    cases = [c for c in CASES if args.cls is None or c.cls == args.cls]
    by_class = defaultdict(lambda: [0, 0, 0, 0.0])
    with tempfile.TemporaryDirectory() as tmp:
        bases = make_bases(Path(tmp) / "bases")
        print(f"{'case':28} {'class':17} {'runs':>4} {'ok':>3} {'peak MB':>8} {'s':>5}")
        for i, case in enumerate(cases):
            t0 = time.perf_counter()
            results, peak = run_in_child([(case.name, cmd) for cmd in case.commands], bases, Path(tmp) / f"c{i}")
            ok = sum(handled(case, code, err) for _, _, code, err in results)
            print(
                f"{case.name:28} {case.cls:17} {len(results):4d} {ok:3d} {peak / 1e6:8.0f} "
                f"{time.perf_counter() - t0:5.1f}",
                flush=True,
            )
            for _name, cmd, code, err in results:
                if not handled(case, code, err):
                    print(f"    NOT AS EXPECTED: {cmd}: exit {code}: {err.strip()[-300:]}")
            row = by_class[case.cls]
            row[0] += 1
            row[1] += len(results)
            row[2] += ok
            row[3] = max(row[3], peak)
    print(f"\n{'class':17} {'cases':>5} {'runs':>5} {'as expected':>12} {'peak MB':>8}")
    for cls, (n, runs, ok, peak) in by_class.items():
        print(f"{cls:17} {n:5d} {runs:5d} {ok:12d} {peak / 1e6:8.0f}")
    total = [sum(r[k] for r in by_class.values()) for k in range(3)]
    print(f"{'all':17} {total[0]:5d} {total[1]:5d} {total[2]:12d} {max(r[3] for r in by_class.values()) / 1e6:8.0f}")
    return 0 if total[1] == total[2] else 1


if __name__ == "__main__":
    sys.exit(main())
