"""The README's Python API section runs as written, from the top of the checkout."""

from __future__ import annotations

import os
import re
import sys
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


@pytest.mark.slow
def test_the_python_api_section_runs_as_written(tmp_path, capsys):
    # Run where the README says (the checkout's top), with the output folder it names
    # redirected by a symlink so that the checkout stays clean.
    (tmp_path / "sample_scans").symlink_to(REPO / "sample_scans")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(api_block(), "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out.splitlines()
    # What the block prints, against what the sample scan is (its truth, not the code's).
    assert "printable=True" in out[0] or "watertight=True" in out[0]
    assert out[-1] == "['vertebrae/L1.stl']"
    assert (tmp_path / "outputs" / "api-demo" / "vertebrae" / "L1.stl").is_file()
    assert sys.modules.get("pipeline.exchange.stl") is not None
