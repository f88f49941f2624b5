"""Session fixtures of the hostile corpus: the base scans and a previous result."""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

from . import inputs as I
from .cases import Bases


@pytest.fixture(scope="session")
def bases(tmp_path_factory, lumbar_scan) -> Bases:
    root = tmp_path_factory.mktemp("bases")
    I.write_dicom(I.body_hu(), I.BODY_AFFINE, root / "body")
    hu, affine = I.small_phantom(lumbar_scan)
    I.write_dicom(hu, affine, root / "small" / "scan", seed=3)
    centre = (
        affine[:3, :3] @ (0.5 * (hu.shape[0] - 1), 0.5 * (hu.shape[1] - 1), 0.5 * (hu.shape[2] - 1)) + affine[:3, 3]
    )
    plan, guide = I.plan_and_guide(root, centre)
    return Bases(body=root / "body", small=root / "small" / "scan", plan=plan, guide=guide)


@pytest.fixture(scope="session")
def computed(bases, computed_once):
    """Segmentation and vertebra models of the reduced phantom, computed once."""
    from pipeline.exchange.scan import load_scan
    from pipeline.jobs.bone import measure
    from pipeline.mesh import vertebra_models
    from pipeline.segment import segment_vertebrae

    def compute():
        volume = load_scan(bases.small)[0]
        seg = segment_vertebrae(volume)
        return seg, vertebra_models(seg), measure(volume, seg)

    return computed_once("hostile_small_phantom", compute)


@contextmanager
def replayed(computed):
    """The model job with its segmentation, meshing and bone measurement replayed
    from ``computed``."""
    import pipeline.jobs.bone as bone_job
    import pipeline.jobs.common as common_job
    import pipeline.jobs.model as model_job

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(common_job, "segment_vertebrae", lambda *a, **k: computed[0])
        mp.setattr(model_job, "vertebra_models", lambda *a, **k: computed[1])
        mp.setattr(bone_job, "measure", lambda *a, **k: computed[2])
        yield


@pytest.fixture(scope="session")
def previous_result(bases, computed, tmp_path_factory) -> Path:
    """A result of ``model`` on the reduced phantom: the corpus's output folders start
    as copies of it, and a failed job must leave them byte for byte as they were."""
    from pipeline.cli import main

    out = tmp_path_factory.mktemp("previous") / "out"
    with replayed(computed):
        assert main(["model", str(bases.small), "-o", str(out), "-q"]) == 0
    return out


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below ``folder`` (symlinks not followed)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else "dir"
    return out


def copy_result(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, copy_function=os.link)


@pytest.fixture
def log_dir(tmp_path_factory, monkeypatch) -> Path:
    """Crash logs go here; a handled case must leave it empty."""
    folder = tmp_path_factory.mktemp("crash-logs")
    monkeypatch.setenv("OSTEOPRINT_LOG_DIR", str(folder))
    return folder
