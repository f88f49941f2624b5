"""All or nothing: a job's result lands whole and replaces the previous one whole, or
the previous result stays as it was; signals, failures in the middle of the commit
and internal errors leave no trace, and two runs of one input give the same bytes.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.exchange import atomic

from .conftest import copy_result, replayed, tree_digest
from .test_corpus import assert_no_secret, files_text, run_cli

REPO = Path(__file__).resolve().parents[2]


def _model(bases, out, *extra):
    return ["model", str(bases.small), "-o", str(out), *extra]


def _sphere(bases, radius=3.0):
    """A small sphere in the reduced phantom's middle, as a --defect primitive."""
    from pipeline.exchange.scan import load_scan

    volume, _ = load_scan(bases.small)
    c = volume.affine[:3, :3] @ (np.array(volume.shape) / 2.0) + volume.affine[:3, 3]
    return "sphere:" + ",".join(f"{v:.2f}" for v in (*c, radius))


def _leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if "osteoprint" in n or n.endswith(".part"))


@pytest.fixture
def prepared(previous_result, tmp_path):
    """An output folder holding the previous result, and its digest."""
    out = tmp_path / "out"
    copy_result(previous_result, out)
    return out, tree_digest(out)


@pytest.fixture
def fast_model(computed):
    """The model job with its computation replayed: these tests are about writing."""
    with replayed(computed):
        yield


def _untouched(out: Path, digest) -> None:
    assert tree_digest(out) == digest
    assert _leftovers(out.parent) == []


@pytest.mark.slow
def test_two_runs_of_one_input_give_identical_bytes(bases, previous_result, tmp_path, capsys):
    # The previous result was made from the same scan and options (its segmentation,
    # meshing and bone measurement computed apart); this run does everything itself.
    code, _, err = run_cli(_model(bases, tmp_path / "again", "-q"), capsys)
    assert code == 0, err
    assert tree_digest(tmp_path / "again") == tree_digest(previous_result)
    assert_no_secret(files_text(tmp_path))


@pytest.mark.slow
def test_a_second_job_extends_the_result_whole_and_keeps_the_lab_s_files(bases, previous_result, tmp_path, capsys):
    """``scaffold`` into a copy of a model result, twice: the same bytes both times;
    the models and label map taken over as they were, the lab's file kept."""
    spec = _sphere(bases)
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name / "out"
        copy_result(previous_result, out)
        (out / "notes.txt").write_text("printed on the Form 3, 2 Dec\n")
        (out / "vertebrae" / "L9.stl").write_bytes(b"not named by the manifest")
        before = tree_digest(out)
        code, _, err = run_cli(
            ["scaffold", str(bases.small), "-o", str(out), "--defect", spec, "--voxel", "0.15", "-q"], capsys
        )
        assert code == 0, err
        outs.append(tree_digest(out))
        assert _leftovers(out.parent) == []
    assert outs[0] == outs[1]
    after = outs[0]
    for rel, digest in before.items():
        # The folder-wide documents are made again for the new set of prints.
        if rel not in ("manifest.json", "bone.json", "report.html", "prints.3mf", "labels.png", "vertebrae/L9.stl"):
            assert after[rel] == digest, rel
    assert "scaffolds/sphere-gyroid-skeletal.stl" in after and "notes.txt" in after
    assert "vertebrae/L9.stl" not in after
    assert_no_secret(files_text(tmp_path))


def test_sigterm_while_writing_leaves_the_previous_result(bases, prepared, capsys, monkeypatch, log_dir, fast_model):
    out, digest = prepared
    import pipeline.jobs.common as common_job

    real = common_job.write_label_map

    def interrupted(path, *args):
        assert any(Path(path).parent.glob("vertebrae/*.stl"))  # the STLs are staged already
        signal.raise_signal(signal.SIGTERM)
        return real(path, *args)

    monkeypatch.setattr(common_job, "write_label_map", interrupted)
    code, _, err = run_cli(_model(bases, out, "--decimate", "0.3"), capsys)
    assert code == 143 and err.splitlines()[-1] == "osteoprint: interrupted by SIGTERM; no output was written"
    _untouched(out, digest)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_sigint_during_the_swap_rolls_it_back(bases, prepared, capsys, monkeypatch, exchange, fast_model):
    out, digest = prepared
    real_exchange, real_rename = atomic._exchange, os.rename

    def exchange_then_signal(a, b):
        done = real_exchange(a, b)
        signal.raise_signal(signal.SIGINT)
        return done

    def rename_then_signal(a, b):
        real_rename(a, b)
        if Path(b) == out:
            signal.raise_signal(signal.SIGINT)

    if exchange:
        monkeypatch.setattr(atomic, "_exchange", exchange_then_signal)
    else:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
        monkeypatch.setattr(atomic.os, "rename", rename_then_signal)
    code, _, err = run_cli(_model(bases, out, "--decimate", "0.3"), capsys)
    assert code == 130, err
    assert err.splitlines()[-1] == "osteoprint: interrupted by SIGINT; no output was written"
    monkeypatch.undo()
    _untouched(out, digest)


@pytest.mark.parametrize("where", ["staging", "swap", "second-rename"])
def test_a_failure_in_the_middle_of_the_commit_leaves_the_previous_result(
    where, bases, prepared, capsys, monkeypatch, log_dir, fast_model
):
    out, digest = prepared
    import pipeline.jobs.common as common_job

    if where == "staging":

        def full(*args):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(common_job, "write_label_map", full)
    elif where == "swap":

        def broken(a, b):
            raise OSError(errno.EIO, "Input/output error", str(b))

        monkeypatch.setattr(atomic, "_exchange", broken)
    else:
        real_rename = os.rename

        def rename(a, b):
            if Path(b) == out and ".osteoprint-new-" in str(a):
                raise OSError(errno.EIO, "Input/output error", str(b))
            real_rename(a, b)

        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
        monkeypatch.setattr(atomic.os, "rename", rename)
    code, _, err = run_cli(_model(bases, out, "--decimate", "0.3", "-q"), capsys)
    monkeypatch.undo()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "cannot write the result" in err and "nothing was written" in err
    _untouched(out, digest)
    assert list(log_dir.iterdir()) == []


@pytest.mark.parametrize("error", [RuntimeError("boom\nsecond line"), MemoryError()], ids=["bug", "memory"])
def test_an_internal_error_is_one_line_naming_the_logged_traceback(
    error, bases, prepared, capsys, monkeypatch, log_dir
):
    out, digest = prepared
    import pipeline.jobs.common as common_job

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(common_job, "segment_vertebrae", fails)
    code, _, err = run_cli(_model(bases, out, "-q"), capsys)
    assert code == 70 and len(err.splitlines()) == 1, err
    (log,) = list(log_dir.iterdir())
    assert f"full traceback in {log}" in err and "Traceback" not in err
    assert "Traceback (most recent call last)" in log.read_text()
    assert (
        "out of memory"
        if isinstance(error, MemoryError)
        else "internal error (a bug): RuntimeError: boom\\nsecond line"
    ) in err
    assert_no_secret(log.read_text(), log.name)
    _untouched(out, digest)


def test_stale_staging_of_killed_runs_is_removed_and_a_set_aside_result_restored(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.osteoprint-new-{dead.pid}-x1y2"
    (stale / "vertebrae").mkdir(parents=True)
    (stale / "vertebrae" / "L1.stl").write_bytes(b"partial")
    part = tmp_path / f".report.json.osteoprint-{dead.pid}-abc.part"
    part.write_bytes(b"{")
    aside = tmp_path / f".kept.osteoprint-old-{dead.pid}-q"
    aside.mkdir()
    (aside / "manifest.json").write_text("{}")
    mine = tmp_path / f".busy.osteoprint-new-{os.getpid()}-z"  # a live run's: left alone
    mine.mkdir()
    atomic.remove_stale(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(["kept", mine.name])
    assert (tmp_path / "kept" / "manifest.json").read_text() == "{}"


def _popen(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _kill_at(proc, stage: str, sig) -> tuple[int, str]:
    """Send ``sig`` when the progress line ``stage`` appears; return (status, stderr)."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if stage in line:
            proc.send_signal(sig)
            break
    _, rest = proc.communicate()
    return proc.wait(), "".join(seen) + (rest or "")


@pytest.mark.parametrize(
    "sig,stage",
    [
        # Everyday: the signal as the job starts segmenting (the cheapest of the three to reach).
        pytest.param(signal.SIGTERM, "meshing vertebrae", id="sigterm-meshing", marks=pytest.mark.slow),
        pytest.param(signal.SIGINT, "segmenting", id="sigint-segmenting"),
        pytest.param(signal.SIGKILL, "writing prints", id="sigkill-writing", marks=pytest.mark.slow),
    ],
)
def test_a_real_signal_leaves_no_trace(sig, stage, bases, prepared, tmp_path):
    out, digest = prepared
    status, err = _kill_at(_popen(_model(bases, out, "--decimate", "0.3")), stage, sig)
    assert "Traceback" not in err
    if sig == signal.SIGKILL:
        # A killed run may leave its staging folder; the next run removes it. The
        # folder holds the previous result or, if the kill came after the swap, the
        # complete new one: never a mixture.
        atomic.remove_stale(out.parent)
        assert _leftovers(out.parent) == []
        after = tree_digest(out)
        if after != digest:
            from pipeline.exchange.manifest import read_manifest

            manifest = read_manifest(out / "manifest.json")
            assert manifest["parameters"]["model"]["decimate_fraction"] == 0.3
            assert {p["file"] for p in manifest["prints"]} | {"manifest.json", "segmentation.nii.gz"} == {
                rel for rel, d in after.items() if d != "dir"
            }
        return
    assert status == 128 + sig, err
    assert err.splitlines()[-1] == f"osteoprint: interrupted by {signal.Signals(sig).name}; no output was written"
    _untouched(out, digest)


def test_a_tampered_manifest_cannot_make_a_job_reach_outside_its_folder(bases, prepared, capsys, fast_model):
    import json

    out, _ = prepared
    manifest = json.loads((out / "manifest.json").read_text())
    stray = dict(manifest["prints"][0], kind="scaffold", file="../../outside.stl")
    manifest["prints"].append(stray)
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out.parent.parent / "outside.stl").write_bytes(b"the lab's file")
    before = sorted(os.listdir(out.parent.parent))
    code, _, err = run_cli(_model(bases, out, "-q"), capsys)
    assert code == 0, err
    written = json.loads((out / "manifest.json").read_text())
    assert all(".." not in p["file"] for p in written["prints"])
    assert sorted(os.listdir(out.parent.parent)) == before
    assert (out.parent.parent / "outside.stl").read_bytes() == b"the lab's file"
