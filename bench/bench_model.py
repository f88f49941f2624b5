"""Benchmark the ``model`` job on a full-size CT series, stage by stage, and dicom2stl.

Prints wall time and peak resident memory (RSS) per stage of osteoprint (read,
segment, mesh, export), the whole ``osteoprint model`` command in a fresh process,
and, where it is installed, ``dicom2stl --type bone --disable shrink`` on the same
series (its full-resolution mode).

Usage::

    python bench/bench_model.py                      # generates a 512x512x400 phantom once
    python bench/bench_model.py --series DIR         # any DICOM series
    python bench/bench_model.py --dicom2stl /path/to/dicom2stl

The phantom series is cached in ``bench/cache/`` (git-ignored). dicom2stl is looked up
on PATH and in ``bench/.venv-dicom2stl`` (create it with
``python3 -m venv bench/.venv-dicom2stl && bench/.venv-dicom2stl/bin/pip install dicom2stl``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


class PeakRSS:
    """Samples this process's resident memory every 10 ms while active."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.01)

    def __enter__(self):
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def stage(name, fn, rows):
    t0 = time.perf_counter()
    with PeakRSS() as mem:
        out = fn()
    rows.append((name, time.perf_counter() - t0, mem.peak / 2**30))
    return out


def run_child(cmd) -> tuple[float, float, int]:
    """Wall time (s), peak RSS (GiB) and exit status of a command, via wait4."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 2**20, proc.returncode


def ensure_phantom(cache: Path) -> Path:
    series = cache / "phantom512" / "dicom"
    if series.is_dir() and len(list(series.iterdir())) == 400:
        return series
    from pipeline.exchange.phantom_files import write_phantom
    from pipeline.phantom import make_phantom

    print("generating the 512x512x400 phantom (a few minutes, once)...", flush=True)
    ph = make_phantom(matrix=(512, 512), pixel_mm=0.78125, n_slices=400, slice_mm=0.625)
    write_phantom(ph, cache / "phantom512", transfer_syntax="explicit_le")
    return series


def find_dicom2stl(given: str | None) -> str | None:
    for cand in (given, shutil.which("dicom2stl"), str(HERE / ".venv-dicom2stl" / "bin" / "dicom2stl")):
        if cand and Path(cand).is_file():
            return cand
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", help="DICOM series folder (default: the cached 512x512x400 phantom)")
    ap.add_argument("--dicom2stl", help="path to the dicom2stl executable")
    args = ap.parse_args()
    series = Path(args.series) if args.series else ensure_phantom(HERE / "cache")

    from pipeline.exchange.atomic import staged_output
    from pipeline.exchange.nifti import write_nifti
    from pipeline.exchange.stl import write_stl
    from pipeline.jobs.common import read_volume
    from pipeline.mesh import vertebra_models
    from pipeline.segment import segment_vertebrae

    rows = []
    volume = stage("read", lambda: read_volume(series), rows)
    seg = stage("segment", lambda: segment_vertebrae(volume), rows)
    models = stage("mesh + checks", lambda: vertebra_models(seg), rows)
    with tempfile.TemporaryDirectory() as tmp:

        def export():
            with staged_output(tmp) as st:
                for m in models:
                    write_stl(st.path(f"vertebrae/{m.level}.stl"), m.mesh, f"{m.level} vertebra model")
                write_nifti(st.path("segmentation.nii.gz"), seg.labels, seg.affine)

        stage("export", export, rows)
    print(f"series: {series}  shape {volume.shape}  spacing {tuple(round(s, 4) for s in volume.spacing)} mm")
    print(f"{'osteoprint stage':<22}{'wall s':>9}{'peak RSS GiB':>14}")
    for name, wall, peak in rows:
        print(f"{name:<22}{wall:>9.2f}{peak:>14.2f}")
    print(f"{'sum of stages':<22}{sum(r[1] for r in rows):>9.2f}")
    print(f"levels: {', '.join(m.level for m in models)}; all watertight: {all(m.quality.watertight for m in models)}")

    with tempfile.TemporaryDirectory() as tmp:
        wall, rss, code = run_child([sys.executable, "-m", "pipeline.cli", "model", str(series), "-o", tmp, "-q"])
        print(f"{'osteoprint model (CLI)':<22}{wall:>9.2f}{rss:>14.2f}   exit {code}")

    exe = find_dicom2stl(args.dicom2stl)
    if exe is None:
        print("dicom2stl: not installed (see this script's docstring to install it)")
        return 0
    import trimesh

    with tempfile.TemporaryDirectory() as tmp:
        # dicom2stl finds no files without a .dcm extension: give it links that have one.
        linked = Path(tmp) / "series"
        linked.mkdir()
        for i, f in enumerate(sorted(p for p in series.iterdir() if p.is_file())):
            (linked / f"{i:05d}.dcm").symlink_to(f.resolve())
        out = Path(tmp) / "bone.stl"
        wall, rss, code = run_child([exe, "--type", "bone", "--disable", "shrink", "-o", str(out), str(linked)])
        watertight = None
        if out.is_file():
            mesh = trimesh.load_mesh(out)
            watertight = bool(mesh.is_watertight)
        print(f"{'dicom2stl (bone, full)':<22}{wall:>9.2f}{rss:>14.2f}   exit {code}, watertight: {watertight}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
