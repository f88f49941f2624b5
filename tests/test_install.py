"""``pip install .`` (not editable) in a fresh virtual environment, then
``osteoprint demo`` from a folder outside the checkout: every print its manifest
lists exists, matches its SHA-256 and is watertight."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_fresh_install_runs_the_demo_anywhere(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed package, not this checkout: nothing from the repository on the path.
    where = subprocess.run(
        [str(python), "-c", "import pipeline; print(pipeline.__file__)"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        check=True,
    ).stdout.strip()
    assert str(venv) in where and str(REPO) not in where
    demo = subprocess.run(
        [str(venv / "bin" / "osteoprint"), "demo", "--json", "-q"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        timeout=1200,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    summary = json.loads(demo.stdout)
    out = elsewhere / "osteoprint-demo"
    assert summary["status"] == "ok" and Path(summary["output"]) == out
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    kinds = {p["kind"] for p in manifest["prints"]}
    assert kinds == {"anatomical_model", "scaffold", "guide"}
    for p in manifest["prints"]:
        path = out / p["file"]
        assert path.is_file(), p["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == p["sha256"], p["file"]
        mesh = trimesh.load(path, file_type="stl", process=True)
        assert mesh.is_watertight, p["file"]
    for name in ("report.html", "prints.3mf", "labels.png"):
        assert (out / name).is_file(), name
