"""Every command on every hostile case: one line, the documented status, no traceback,
the output place untouched, no identifying text anywhere.

The runs are in-process calls of the CLI's ``main`` with captured output, as a new
user's shell would see them (progress lines included, not ``-q``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pipeline.cli import main

from . import inputs as I
from .conftest import copy_result, tree_digest
from .corpus import CASES, argv

# Every case once with its first command in the everyday suite; every other
# command on it under the ``slow`` marker (``make test-all``).
RUNS = [
    pytest.param(case, command, id=f"{case.name}-{command}", marks=() if i == 0 else pytest.mark.slow)
    for case in CASES
    for i, command in enumerate(case.commands)
]
PROGRESS = re.compile(r"^(\[ *[0-9.]+ s\] | {9})")


def run_cli(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, out: str, *, before_work: bool) -> str:
    """The error is one line, last, after progress lines only; returns it."""
    lines = err.splitlines()
    assert lines, "no message at all"
    *progress, last = lines
    assert last.startswith("osteoprint: error: "), last
    assert all(PROGRESS.match(line) for line in progress), progress
    if before_work:
        assert not progress, f"work started before the check: {progress}"
    assert "Traceback" not in err and "Warning" not in err
    assert out == ""
    return last


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in I.SECRETS:
            assert secret not in text, f"identifying text {secret!r} leaked"


def files_text(folder: Path) -> str:
    """Every file's bytes below ``folder`` (and the names), as text to grep."""
    parts = []
    for root, dirs, files in os.walk(folder):
        parts.extend(dirs + files)
        for name in files:
            p = Path(root) / name
            if p.is_file() and p.stat().st_size < 50_000_000:
                parts.append(p.read_bytes().decode("latin-1"))
    return "\n".join(parts)


@pytest.mark.parametrize("case,command", RUNS)
def test_hostile_case(case, command, bases, previous_result, tmp_path, capsys, log_dir):
    inp = case.build(tmp_path, bases)
    out = tmp_path / "out"
    if inp.out is None:
        copy_result(previous_result, out)
    before = tree_digest(tmp_path)
    watched = [Path(inp.out)] if inp.out and os.path.isabs(inp.out) else []
    outside = {
        p.parent: tree_digest(p.parent)
        for p in watched
        if p.parent != tmp_path and p.parent.is_dir() and not str(p.parent).startswith("/proc")
    }

    code, stdout, err = run_cli(argv(command, inp, tmp_path, bases), capsys)

    last = assert_one_error_line(err, stdout, before_work=case.before_work)
    assert code == case.code, last
    assert case.expect in last, last
    # Nothing written, nothing left behind: the case folder (input, previous result,
    # output place, any staging folder) is exactly as it was.
    assert tree_digest(tmp_path) == before
    for parent, digest in outside.items():
        assert tree_digest(parent) == digest
    assert list(log_dir.iterdir()) == [], "an internal error was logged"
    assert_no_secret(err, last)


def test_the_previous_result_is_free_of_identity(previous_result):
    """The corpus's identity (name, IDs, dates, UIDs, series description) reaches
    no file of a real result."""
    text = files_text(previous_result)
    assert_no_secret(text)
    assert "manifest.json" in text


def test_every_class_is_covered():
    classes = {c.cls for c in CASES}
    assert {"intensities", "nothing to print", "resources", "geometry/format", "output place", "options"} <= classes
    assert len(CASES) >= 69 and len(RUNS) >= 250
    assert len({c.name for c in CASES}) == len(CASES)


def test_resource_attacks_stay_small_in_memory(bases, tmp_path):
    """A few KB of input declaring gigabytes is refused before anything is allocated:
    every resource case, every command, in one child process, peaks far below 1.5 GB."""
    from .resources import run_in_child

    runs = [(c.name, cmd) for c in CASES if c.cls == "resources" for cmd in c.commands]
    results, peak = run_in_child(runs, bases, tmp_path)
    assert [r[2] for r in results] == [2] * len(runs), results
    for _name, _command, _code, err in results:
        assert_one_error_line(err, "", before_work=False)
    print(f"peak RSS over {len(runs)} resource-attack runs: {peak / 1e6:.0f} MB")
    assert peak < 1.5e9


def test_json_error_summary_carries_the_documented_status(bases, tmp_path, capsys, log_dir):
    """With --json a failure is also one JSON document on stdout, with its status."""
    import json

    for case_name, code in (("no-bone", 3), ("slope-zero", 2)):
        case = next(c for c in CASES if c.name == case_name)
        inp = case.build(tmp_path / case_name, bases) if (tmp_path / case_name).mkdir() is None else None
        status, out, err = run_cli(["model", inp.scan, "-o", str(tmp_path / case_name / "out"), "--json"], capsys)
        summary = json.loads(out)
        assert status == code and summary["exit_code"] == code and summary["status"] == "error"
        assert summary["error"] in err.splitlines()[-1]
