"""The README's Python API section runs as written, from the top of the checkout."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def api_block() -> str:
    """The python code block of the README's "Python API" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section holds one python block"
    return blocks[0]


def test_the_api_block_uses_the_flat_namespace():
    import pipeline

    code = api_block()
    used = set(re.findall(r"\bop\.([A-Za-z_]+)", code))
    assert used and used <= set(pipeline.__all__), used - set(pipeline.__all__)


@pytest.mark.slow  # the whole API walk on the sample, ~45 s: make test-all
def test_the_python_api_section_runs_as_written(tmp_path, capsys):
    # Run as from the checkout's top, in a folder linking to the bundled scan, so
    # that the block's outputs land there and the checkout stays clean.
    (tmp_path / "sample_scans").symlink_to(REPO / "sample_scans")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(api_block(), "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out.splitlines()
    # What the block prints, against what was asked of it: a printable L1 model, a
    # scaffold at the porosity asked for, a plan that passes its checks on the
    # phantom's intact L3, and the one model asked of run_model, on disk.
    assert "watertight=True" in out[0] and "self_intersections=0" in out[0]
    assert abs(ast.literal_eval(out[1])["porosity"] - 0.7) <= 0.02
    assert out[2] == "True"
    assert out[3].startswith("bone density screening:")
    assert out[-1] == "['vertebrae/L1.stl']"
    stl = tmp_path / "outputs" / "api-demo" / "vertebrae" / "L1.stl"
    assert stl.read_bytes()[:80].rstrip().endswith(b"SPACE=LPS")
