"""Benchmark the scaffold stage: wall time and peak memory per case.

Each case runs in its own subprocess so its peak resident memory (``ru_maxrss``, which
counts numpy's allocations, unlike tracemalloc) is its own.

Usage::

    python bench/bench_scaffold.py                 # 30 mm sphere, gyroid sheet 70 %, 0.1 and 0.05 mm
    python bench/bench_scaffold.py --voxels 0.1    # just one voxel size
    python bench/bench_scaffold.py --large         # also a 40 mm sphere at the automatic voxel
    python bench/bench_scaffold.py --measure       # also time measure_scaffold
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_case(diameter_mm: float, voxel_mm: float | None, lattice: str, porosity: float,
             cell_mm: float, measure: bool) -> dict:
    from pipeline.scaffold import build_scaffold

    r = diameter_mm / 2.0
    t0 = time.perf_counter()
    s = build_scaffold(f"sphere:0,0,0,{r}", lattice, cell_mm=cell_mm, porosity=porosity,
                       voxel_mm=voxel_mm)
    t_build = time.perf_counter() - t0
    out = {
        "case": f"{diameter_mm:g} mm sphere, {lattice} {porosity:.0%}, cell {cell_mm:g} mm",
        "voxel_mm": round(s.grid.voxel_mm, 4),
        "grid": "x".join(map(str, s.grid.shape)),
        "voxels_M": round(s.grid.n_voxels / 1e6, 1),
        "triangles_M": round(len(s.mesh.faces) / 1e6, 2),
        "porosity_mesh": round(s.porosity_mesh, 4),
        "porosity_voxel": round(s.porosity_voxel, 4),
        "fragments_dropped": s.fragments_dropped,
        "build_s": round(t_build, 1),
    }
    if measure:
        t0 = time.perf_counter()
        s.measure()
        out["measure_s"] = round(time.perf_counter() - t0, 1)
    out["peak_rss_MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voxels", type=float, nargs="*", default=[0.1, 0.05])
    ap.add_argument("--diameter", type=float, default=30.0)
    ap.add_argument("--lattice", default="gyroid-sheet")
    ap.add_argument("--porosity", type=float, default=0.7)
    ap.add_argument("--cell", type=float, default=2.0)
    ap.add_argument("--large", action="store_true", help="add a 40 mm sphere at the automatic voxel")
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(**json.loads(args.child))))
        return 0
    cases = [dict(diameter_mm=args.diameter, voxel_mm=v, lattice=args.lattice,
                  porosity=args.porosity, cell_mm=args.cell, measure=args.measure)
             for v in args.voxels]
    if args.large:
        cases.append(dict(diameter_mm=40.0, voxel_mm=None, lattice=args.lattice,
                          porosity=args.porosity, cell_mm=args.cell, measure=False))
    for case in cases:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"FAILED {case}: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["wall_s"] = round(wall, 1)
        print("  ".join(f"{k}={v}" for k, v in res.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
