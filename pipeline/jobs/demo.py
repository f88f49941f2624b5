"""The bundled sample scan, wherever osteoprint is installed.

In a checkout it is ``sample_scans/lumbar_phantom/dicom``. ``pip install`` ships the
same files as data under ``<prefix>/share/osteoprint/``. If neither is there (an
installation without data files), the phantom generator writes the identical
series (it is deterministic) once into the user's cache folder.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from .. import __version__
from .common import Quiet

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RELATIVE = Path("sample_scans") / "lumbar_phantom" / "dicom"
#: Where ``pip install`` puts the sample, relative to the installation's data prefix.
SHARED_RELATIVE = Path("share") / "osteoprint" / SAMPLE_RELATIVE


def in_checkout() -> bool:
    """Whether osteoprint runs from a source checkout (not an installed copy)."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / SAMPLE_RELATIVE).is_dir()


def default_demo_output() -> Path:
    """``outputs/demo`` in a checkout, ``./osteoprint-demo`` elsewhere."""
    return REPO_ROOT / "outputs" / "demo" if in_checkout() else Path.cwd() / "osteoprint-demo"


def _installed_sample() -> Path | None:
    prefixes = {sys.prefix, sysconfig.get_path("data")}
    try:
        prefixes.add(sysconfig.get_path("data", f"{os.name}_user"))
    except KeyError:  # pragma: no cover - no user scheme
        pass
    for prefix in sorted(p for p in prefixes if p):
        folder = Path(prefix) / SHARED_RELATIVE
        if folder.is_dir() and any(folder.iterdir()):
            return folder
    return None


def _cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "osteoprint" / f"sample-{__version__}"


def sample_scan(progress=None) -> Path:
    """The sample DICOM folder: the checkout's, the installed copy, or generated once."""
    if in_checkout():
        return REPO_ROOT / SAMPLE_RELATIVE
    installed = _installed_sample()
    if installed is not None:
        return installed
    cached = _cache_folder()
    if not (cached / "dicom").is_dir():
        from .phantom import run_phantom

        progress = progress or Quiet()
        progress.stage(f"generating the sample scan once into {cached} (about a minute)")
        run_phantom(cached, transfer_syntax="jpegls_lossless", progress=progress)
    return cached / "dicom"
