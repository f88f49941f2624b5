"""The ``phantom`` job: generate the synthetic CT and write it with its ground truth."""

from __future__ import annotations

import os

from ..exchange.phantom_files import check_phantom_folder, write_phantom
from ..phantom import make_phantom
from ..progress import Quiet


def run_phantom(out_dir: str | os.PathLike, *, seed: int = 0, transfer_syntax: str = "rle", progress=None) -> dict:
    """Write the lumbar phantom's DICOM series and truth under ``out_dir``.

    The folder is checked before the (minute-long) generation, so a bad ``out_dir``
    fails at once; see :func:`pipeline.exchange.phantom_files.write_phantom` for the
    layout and the returned paths.
    """
    progress = progress or Quiet()
    check_phantom_folder(out_dir)
    progress.stage("generating phantom")
    phantom = make_phantom(seed=seed)
    progress.stage("writing DICOM series and truth")
    return write_phantom(phantom, out_dir, transfer_syntax=transfer_syntax)
