"""``osteoprint batch``: many scans, one failing, on local processes and on a Dask
scheduler and worker started here on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time

import pytest

from pipeline.cli import main
from pipeline.jobs.batch import case_names


def test_case_names_are_safe_and_unique():
    assert case_names(["/a/scan", "/b/scan/", "/c/CT 1.nii.gz", "/d/../x y", "/e/ct1.NII"]) == [
        "scan",
        "scan-2",
        "CT_1",
        "x_y",
        "ct1",
    ]


@pytest.fixture
def three_scans(small_spine_scan, tmp_path):
    """Two usable scans (the small spine twice) and one junk folder."""
    second = tmp_path / "second"
    shutil.copytree(small_spine_scan, second)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a scan")
    return [small_spine_scan, second, junk]


def _check(out, scans, code):
    summary = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert code == 1, "any failed scan makes the exit status non-zero"
    cases = summary["cases"]
    assert [c["scan"] for c in cases] == [str(s) for s in scans]
    assert [c["status"] for c in cases] == ["ok", "ok", "failed"]
    assert (summary["succeeded"], summary["failed"]) == (2, 1)
    for case in cases[:2]:
        manifest = json.loads((out / case["case"] / "manifest.json").read_text(encoding="utf-8"))
        assert case["prints"] == len(manifest["prints"]) >= 2
        for p in manifest["prints"]:
            assert (out / case["case"] / p["file"]).is_file()
        assert (out / case["case"] / "report.html").is_file() and (out / case["case"] / "prints.3mf").is_file()
    assert str(scans[2]) in cases[2]["reason"] and "no DICOM images" in cases[2]["reason"]
    assert "\n" not in cases[2]["reason"]
    assert cases[2]["output"] is None and not (out / cases[2]["case"]).exists()
    return summary


def test_local_worker_processes_record_each_failure(tmp_path, capsys):
    scans = [tmp_path / "missing", tmp_path / "empty"]
    scans[1].mkdir()
    out = tmp_path / "out"
    code = main(["batch", *map(str, scans), "-o", str(out), "--workers", "2", "--json", "-q"])
    summary = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert code == 1
    assert json.loads(capsys.readouterr().out)["cases"] == summary["cases"]
    assert summary["runner"] == "local" and summary["workers"] == 2
    assert [c["status"] for c in summary["cases"]] == ["failed", "failed"]
    assert "no such file or folder" in summary["cases"][0]["reason"]
    assert "folder is empty" in summary["cases"][1]["reason"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """A Dask scheduler and one worker (own processes) on 127.0.0.1; yields the address."""
    distributed = pytest.importorskip("distributed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    common = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
            "--no-show",
        ],
        **common,
    )
    worker = None
    try:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dask",
                "worker",
                address,
                "--nworkers",
                "1",
                "--nthreads",
                "2",
                "--memory-limit",
                "0",
                "--no-dashboard",
                "--death-timeout",
                "60",
            ],
            **common,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with distributed.Client(address, timeout="5s") as client:
                    client.wait_for_workers(1, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
        with distributed.Client(address, timeout="5s") as client:
            client.shutdown()  # scheduler and workers close at once
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
        for proc in (worker, scheduler):
            if proc is not None:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.mark.slow
def test_dask_cluster_on_localhost(three_scans, dask_cluster, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["batch", *map(str, three_scans), "-o", str(out), "--scheduler", dask_cluster, "--json", "-q"])
    summary = _check(out, three_scans, code)
    assert summary["runner"] == "dask" and summary["workers"] == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "failed" and printed["failed"] == 1


def test_unreachable_scheduler_is_a_user_error(tmp_path):
    pytest.importorskip("distributed")
    from pipeline.errors import OsteoprintError
    from pipeline.jobs.batch import run_batch

    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(OsteoprintError, match=f"--scheduler {address}: cannot connect"):
        run_batch([str(tmp_path)], tmp_path / "out", scheduler=address, connect_timeout_s=1.0)
