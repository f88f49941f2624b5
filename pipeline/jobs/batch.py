"""``osteoprint batch``: one job over many scans, on this machine or a Dask cluster.

Each scan is a case with its own output folder ``OUT/<case>/``, written by the job
exactly as a single command would. A case that fails (bad input, nothing found, a
crash) is recorded with a one-line reason and never stops the others.
``OUT/batch.json`` lists every case; it is rewritten as cases finish, so an
interrupted batch still says what was done.

Local runs use worker processes (one per two cores, as each job already meshes in
parallel, and at most one per :data:`MEMORY_PER_CASE_GIB` of available memory).
With a scheduler address the cases go to an existing Dask distributed cluster;
its workers must have osteoprint installed and see the scans and ``OUT`` at the
same paths (a shared file system).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import OsteoprintError
from ..exchange.atomic import write_bytes_atomic
from ..parallel import workers as cpu_cores
from .common import Quiet

JOBS = ("model", "scaffold", "guide", "bone", "run")
#: Peak memory of one case on a 512 x 512 x 400 scan (the ``run`` job), GiB.
MEMORY_PER_CASE_GIB = 3.0
BATCH_FILE = "batch.json"


@dataclass(frozen=True)
class BatchCase:
    """One scan of a batch: where it is, where its outputs go, what to run."""

    case: str
    scan: str
    output: str
    job: str = "model"
    model: object = None  # ModelOptions (model and run jobs)
    dicom: bool = False
    extra: dict = field(default_factory=dict)


def case_names(scans: list[str]) -> list[str]:
    """Folder names for the cases: each scan's file or folder name (without
    ``.nii``/``.nii.gz``), made safe for a file name and unique (``-2``, ``-3``...)."""
    names, seen = [], {}
    for scan in scans:
        base = Path(str(scan).rstrip("/\\")).name or "scan"
        base = re.sub(r"\.nii(\.gz)?$", "", base, flags=re.IGNORECASE)
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "scan"
        n = seen.get(base, 0) + 1
        seen[base] = n
        names.append(base if n == 1 else f"{base}-{n}")
    return names


def run_case(case: BatchCase) -> dict:
    """Run one case's job; never raises. Returns its line of ``batch.json``."""
    start = time.perf_counter()
    record = {
        "case": case.case,
        "scan": case.scan,
        "output": case.output,
        "status": "failed",
        "reason": "",
        "prints": 0,
        "series_hash": None,
        "seconds": 0.0,
    }
    try:
        manifest = _run_job(case)
        record["series_hash"] = manifest["input"]["series_hash"]
        record["prints"] = len(manifest["prints"])
        if record["prints"] == 0 and case.job != "bone":  # the bone job measures, it prints nothing
            record["reason"] = "no print was made"
        else:
            record["status"] = "ok"
    except OsteoprintError as exc:
        record["reason"] = _one_line(str(exc))
    except MemoryError:
        record["reason"] = "out of memory"
    except Exception as exc:  # a bug: recorded, so that the other cases still run
        record["reason"] = _one_line(f"internal error ({type(exc).__name__}: {exc})")
    record["seconds"] = round(time.perf_counter() - start, 1)
    if record["status"] == "failed" and not Path(case.output).exists():
        record["output"] = None  # nothing written
    return record


def _run_job(case: BatchCase) -> dict:
    from dataclasses import replace

    from .guide import GuideOptions, run_guide
    from .model import ModelOptions, run_model
    from .run import run_all
    from .scaffold import ScaffoldOptions, run_scaffold

    model = replace(case.model or ModelOptions(), dicom=case.dicom)
    if case.job == "model":
        return run_model(case.scan, case.output, model)
    if case.job == "scaffold":
        return run_scaffold(case.scan, case.output, ScaffoldOptions(dicom=case.dicom))
    if case.job == "guide":
        return run_guide(case.scan, case.output, GuideOptions(dicom=case.dicom))
    if case.job == "bone":
        from .bone import BoneOptions, run_bone

        return run_bone(case.scan, case.output, BoneOptions(dicom=case.dicom))
    if case.job == "run":
        return run_all(case.scan, case.output, model, ScaffoldOptions(dicom=case.dicom), GuideOptions(dicom=case.dicom))
    raise OsteoprintError(f"unknown job {case.job!r} (known: {', '.join(JOBS)})")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]


def default_workers(n_cases: int) -> int:
    """Local worker processes: one per two cores, one per MEMORY_PER_CASE_GIB of
    available memory, no more than there are cases, at least one."""
    by_cores = max(1, cpu_cores() // 2)
    by_memory = max(1, int(_available_gib() // MEMORY_PER_CASE_GIB))
    return max(1, min(n_cases, by_cores, by_memory))


def _available_gib() -> float:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return MEMORY_PER_CASE_GIB


def run_batch(
    scans: list[str],
    out_dir: str | os.PathLike,
    *,
    job: str = "model",
    model=None,
    dicom: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    connect_timeout_s: float = 15.0,
    progress=None,
) -> dict:
    """Run ``job`` over ``scans`` into ``out_dir/<case>/`` and write ``batch.json``.

    Parameters
    ----------
    scans : list of str
        Scan paths (DICOM folders or files, NIfTI files), as the single commands take.
    out_dir : path
        Created if missing; one folder per case and ``batch.json``.
    job : {"model", "scaffold", "guide", "bone", "run"}
    model : ModelOptions, optional
        Options of the model (``model`` and ``run`` jobs).
    dicom : bool
        Write DICOM Encapsulated STL prints in every case.
    workers : int, optional
        Local worker processes (default :func:`default_workers`); ignored with a
        scheduler.
    scheduler : str, optional
        Address of a Dask distributed scheduler, e.g. ``tcp://10.0.0.5:8786``.
    connect_timeout_s : float
        How long to try reaching the scheduler before giving up, s.

    Returns
    -------
    dict
        The content of ``batch.json``: ``cases`` (one record per scan, in the
        order given: case, scan, output, status "ok" or "failed", reason,
        prints, series_hash, seconds), ``succeeded``, ``failed``.
    """
    if job not in JOBS:
        raise OsteoprintError(f"unknown job {job!r} (known: {', '.join(JOBS)})")
    if not scans:
        raise OsteoprintError("no scan given")
    if workers is not None and workers < 1:
        raise OsteoprintError(f"--workers must be at least 1, got {workers}")
    progress = progress or Quiet()
    from ..exchange.atomic import check_output_folder

    # A new or empty folder, or an earlier batch's: checked before any case runs.
    out_dir = check_output_folder(out_dir, is_result=lambda folder: (folder / BATCH_FILE).is_file())
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = [
        BatchCase(name, os.path.abspath(scan), str(out_dir / name), job, model, dicom)
        for name, scan in zip(case_names([str(s) for s in scans]), scans)
    ]
    summary = {
        "tool": {"name": "osteoprint", "version": __version__},
        "job": job,
        "runner": scheduler and "dask" or "local",
        "workers": None,
        "cases": [],
        "succeeded": 0,
        "failed": 0,
    }
    done: dict[str, dict] = {}

    def finished(record: dict) -> None:
        done[record["case"]] = record
        ok = record["status"] == "ok"
        what = f"ok, {record['prints']} prints" if ok else f"FAILED: {record['reason']}"
        progress.note(f"[{len(done)}/{len(cases)}] {record['case']}: {what} ({record['seconds']:.0f} s)")
        _write_summary(out_dir, summary, cases, done)

    if scheduler:
        summary["workers"] = _run_dask(cases, scheduler, finished, progress, connect_timeout_s)
    else:
        summary["workers"] = workers or default_workers(len(cases))
        _run_local(cases, summary["workers"], finished, progress)
    return _write_summary(out_dir, summary, cases, done)


def _write_summary(out_dir: Path, summary: dict, cases: list[BatchCase], done: dict) -> dict:
    summary = dict(summary)
    summary["cases"] = [
        done.get(c.case, {"case": c.case, "scan": c.scan, "output": c.output, "status": "pending", "reason": ""})
        for c in cases
    ]
    summary["succeeded"] = sum(1 for r in done.values() if r["status"] == "ok")
    summary["failed"] = sum(1 for r in done.values() if r["status"] == "failed")
    write_bytes_atomic(out_dir / BATCH_FILE, (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def _run_local(cases: list[BatchCase], n_workers: int, finished, progress) -> None:
    progress.stage(f"running {len(cases)} scans on {n_workers} local worker process{'es' if n_workers != 1 else ''}")
    if n_workers == 1:
        for case in cases:
            finished(run_case(case))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # Fresh interpreters (spawn): a forked copy of a process with threads can hang.
    with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_case, case): case for case in cases}
        try:
            for future in as_completed(futures):
                case = futures[future]
                try:
                    finished(future.result())
                except Exception as exc:  # the worker process died (killed, out of memory)
                    finished(_lost(case, exc))
        except BaseException:
            # Interrupted: cases not started never start; each running case's job
            # is all-or-nothing on its own.
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_dask(cases: list[BatchCase], address: str, finished, progress, timeout_s: float) -> int:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise OsteoprintError("--scheduler needs Dask distributed: pip install 'osteoprint[cluster]'") from None
    try:
        client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except Exception as exc:
        raise OsteoprintError(
            f"--scheduler {address}: cannot connect ({_one_line(str(exc)) or type(exc).__name__})"
        ) from None
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        progress.stage(f"running {len(cases)} scans on the Dask cluster at {address} ({n_workers} workers)")
        futures = {
            client.submit(run_case, case, pure=False, key=f"osteoprint-{case.case}-{os.getpid()}-{i}"): case
            for i, case in enumerate(cases)
        }
        for future in as_completed(list(futures), loop=client.loop):
            case = futures[future]
            try:
                finished(future.result())
            except Exception as exc:  # the worker died or was lost
                finished(_lost(case, exc))
        return n_workers
    finally:
        client.close()


def _lost(case: BatchCase, exc: Exception) -> dict:
    return {
        "case": case.case,
        "scan": case.scan,
        "output": case.output if Path(case.output).exists() else None,
        "status": "failed",
        "reason": _one_line(f"worker lost ({type(exc).__name__}: {exc})"),
        "prints": 0,
        "series_hash": None,
        "seconds": 0.0,
    }
