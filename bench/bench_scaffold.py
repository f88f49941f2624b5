"""Benchmark the scaffold stage: build, measure and the written STL, per case.

Each case runs in its own subprocess so its peak resident memory (``ru_maxrss``, which
counts numpy's allocations, unlike tracemalloc) and its caches are its own, as in a
fresh ``osteoprint`` run. Per case it prints the build and measure times, the
triangles, the STL's size, the porosity target against the porosity measured on the
written file (its enclosed volume against the region's), whether that file is
watertight and consistently wound, and the peak memory. ``*_cpu_s`` is the process's
CPU time (all threads): on a shared machine it tells load from work.

Usage::

    python bench/bench_scaffold.py                 # 30 mm sphere, gyroid sheet 70 %, 0.1 and 0.05 mm
    python bench/bench_scaffold.py --voxels 0.1    # just one voxel size
    python bench/bench_scaffold.py --large         # also a 40 mm sphere at the automatic voxel
    python bench/bench_scaffold.py --demo          # only the demo's L1 defect gyroid, as the job builds it
    python bench/bench_scaffold.py --demo --before /work/main   # and the same with another checkout's code

The demo case finds the L1 fracture defect of the sample scan once (reading and
segmenting take about half a minute) and keeps its mask in the temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_scans" / "lumbar_phantom" / "dicom"
DEMO_MASK = Path(tempfile.gettempdir()) / "osteoprint-bench-l1-defect.npz"


def save_demo_region(path: Path) -> None:
    """Find the sample's L1 fracture defect as ``osteoprint demo`` does and keep its mask."""
    import numpy as np

    from pipeline.defect import find_compression_fractures
    from pipeline.exchange.scan import load_scan
    from pipeline.segment import segment_vertebrae

    volume, _ = load_scan(SAMPLE)
    seg = segment_vertebrae(volume)
    (l1,) = [f for f in find_compression_fractures(seg, volume) if f.level == "L1"]
    np.savez_compressed(path, mask=np.asarray(l1.defect_mask, bool), affine=seg.affine)


def _region(spec):
    import numpy as np

    from pipeline.scaffold import Region

    if spec == "demo":
        d = np.load(DEMO_MASK)
        return Region.from_mask(d["mask"], d["affine"], clearance_mm=0.0)
    return spec


def run_case(
    region: str,
    voxel_mm: float | None,
    lattice: str,
    porosity: float,
    cell_mm: float,
    measure: bool,
    material: str = "ti6al4v",
    printer: bool = False,
) -> dict:
    from pipeline.exchange.stl import read_stl, write_stl
    from pipeline.scaffold import build_scaffold

    kwargs = {}
    try:
        from pipeline.printing import deviation_bound
    except ImportError:  # a checkout from before the printer-sized meshes
        deviation_bound = None
    if printer and deviation_bound is not None:
        kwargs["deviation_mm"] = deviation_bound(material).bound_mm
    reg = _region(region)
    t0, c0 = time.perf_counter(), time.process_time()
    s = build_scaffold(reg, lattice, cell_mm=cell_mm, porosity=porosity, voxel_mm=voxel_mm, **kwargs)
    t_build, c_build = time.perf_counter() - t0, time.process_time() - c0
    out = {
        "case": f"{region}, {lattice} {porosity:.0%}, cell {cell_mm:g} mm",
        "voxel_mm": round(s.grid.voxel_mm, 4),
        "voxels_M": round(s.grid.n_voxels / 1e6, 1),
        "build_s": round(t_build, 1),
        "build_cpu_s": round(c_build, 1),
    }
    if measure:
        t0, c0 = time.perf_counter(), time.process_time()
        m = s.measure(material=material)
        out["measure_s"] = round(time.perf_counter() - t0, 1)
        out["measure_cpu_s"] = round(time.process_time() - c0, 1)
        m = m if isinstance(m, dict) else m.to_dict()
        out["wall_p50_mm"] = round(m["wall_thickness_mm"]["p50"], 3)
        out["pore_d50_mm"] = round(m["pore_diameter_mm"]["d50"], 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "scaffold.stl")
        write_stl(path, s.mesh, "bench scaffold")
        size = os.path.getsize(path)
        back = read_stl(path)
    out.update(
        {
            "triangles": int(len(s.mesh.faces)),
            "stl_MB": round(size / 1e6, 1),
            "porosity_target": round(s.porosity_target, 4),
            "porosity_file": round(1.0 - float(back.volume) / s.region_volume_mm3, 4),
            "watertight_file": bool(back.is_watertight and back.is_winding_consistent),
        }
    )
    res = getattr(s, "resolution", None)
    if res:
        out["deviation_bound_mm"] = res["deviation_bound_mm"]
        out["deviation_p999_mm"] = round(res["deviation_p999_mm"], 4)
    out["peak_rss_MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    return out


def _child(case: dict, pythonpath: str | None) -> dict | None:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(case)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        print(f"FAILED {case}: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voxels", type=float, nargs="*", default=[0.1, 0.05])
    ap.add_argument("--diameter", type=float, default=30.0)
    ap.add_argument("--lattice", default="gyroid-sheet")
    ap.add_argument("--porosity", type=float, default=0.7)
    ap.add_argument("--cell", type=float, default=2.0)
    ap.add_argument("--large", action="store_true", help="add a 40 mm sphere at the automatic voxel")
    ap.add_argument("--measure", action="store_true")
    ap.add_argument(
        "--demo",
        action="store_true",
        help="only the demo's L1 defect scaffold (gyroid 70 %%, 2 mm, Ti-6Al-4V), built and measured as the job does",
    )
    ap.add_argument(
        "--before",
        metavar="CHECKOUT",
        help="with --demo: also run the case with this checkout's code (e.g. main), first",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--save-demo-region", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(**json.loads(args.child))))
        return 0
    if args.save_demo_region:
        save_demo_region(Path(args.save_demo_region))
        return 0
    runs = []  # (label, PYTHONPATH or None, case)
    if args.demo:
        if not DEMO_MASK.is_file():
            print("finding the sample's L1 defect once ...", flush=True)
            subprocess.run([sys.executable, __file__, "--save-demo-region", str(DEMO_MASK)], check=True)
        # the job's options: ScaffoldOptions() defaults
        case = dict(
            region="demo",
            voxel_mm=None,
            lattice="gyroid",
            porosity=0.7,
            cell_mm=2.0,
            measure=True,
            material="ti6al4v",
            printer=True,
        )
        if args.before:
            runs.append(("before", os.path.abspath(args.before), case))
        runs.append(("after" if args.before else "demo", str(ROOT), case))
    else:
        for v in args.voxels:
            runs.append(
                (
                    "",
                    None,
                    dict(
                        region=f"sphere:0,0,0,{args.diameter / 2}",
                        voxel_mm=v,
                        lattice=args.lattice,
                        porosity=args.porosity,
                        cell_mm=args.cell,
                        measure=args.measure,
                    ),
                )
            )
        if args.large:
            runs.append(
                (
                    "",
                    None,
                    dict(
                        region="sphere:0,0,0,20",
                        voxel_mm=None,
                        lattice=args.lattice,
                        porosity=args.porosity,
                        cell_mm=args.cell,
                        measure=False,
                    ),
                )
            )
    for label, path, case in runs:
        res = _child(case, path)
        if res is not None:
            print("  ".join([label] * bool(label) + [f"{k}={v}" for k, v in res.items()]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
