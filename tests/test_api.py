"""The flat public namespace: every name is the stage function itself, loaded lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pipeline


def test_every_public_name_is_the_stage_module_s_own_object():
    for name in pipeline.__all__:
        if name == "__version__":
            continue
        module = importlib.import_module(pipeline._API[name])
        assert getattr(pipeline, name) is getattr(module, name), name


def test_importing_the_package_loads_no_stage():
    code = "import sys, pipeline; print(sorted(m for m in sys.modules if m.startswith('pipeline.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
