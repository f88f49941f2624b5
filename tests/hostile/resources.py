"""Run hostile cases in a child process and measure its peak memory (``wait4``).

Used by the memory test and by ``bench/bench_hostile.py``. The child builds each
case's input and runs the CLI in-process, so the figure is the tool's own peak
resident memory (Python, numpy and the readers included), not a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_CHILD = r"""
import contextlib, io, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.hostile.corpus import CASES, Bases, argv
from pipeline.cli import main
spec = json.loads(sys.argv[2])
bases = Bases(**{k: Path(v) for k, v in spec["bases"].items()})
results = []
for name, command, folder in spec["runs"]:
    case = next(c for c in CASES if c.name == name)
    folder = Path(folder)
    folder.mkdir(parents=True)
    inp = case.build(folder, bases)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv(command, inp, folder, bases))
    results.append([name, command, code, err.getvalue()])
print(json.dumps(results))
"""


def run_in_child(runs, bases, folder: Path) -> tuple[list, float]:
    """Run ``[(case name, command), ...]`` in one child process.

    Returns the results ``[name, command, exit status, stderr]`` and the child's
    peak resident memory in bytes.
    """
    spec = {
        "bases": {k: str(v) for k, v in vars(bases).items()},
        "runs": [[name, command, str(folder / f"{i}-{name}-{command}")] for i, (name, command) in enumerate(runs)],
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(REPO), json.dumps(spec)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise AssertionError(f"child failed ({proc.returncode}): {err[-2000:]}")
    return json.loads(out), usage.ru_maxrss * 1024.0
