"""Whole jobs as the command line runs them: read -> segment -> bone density -> mesh -> scaffold/guide -> export.

Each job is a function a notebook can call too. Jobs are the only place where
stages meet files, and they touch files only through :mod:`pipeline.exchange`,
staging every output so that an error or interrupt leaves nothing half-written.
"""

from ..progress import Quiet
from .batch import run_batch
from .bone import BoneOptions, run_bone
from .common import read_volume
from .guide import GuideOptions, run_check_guide, run_guide
from .model import ModelOptions, run_model
from .phantom import run_phantom
from .run import run_all
from .scaffold import ScaffoldOptions, run_scaffold

__all__ = [
    "BoneOptions",
    "GuideOptions",
    "ModelOptions",
    "Quiet",
    "ScaffoldOptions",
    "read_volume",
    "run_all",
    "run_batch",
    "run_bone",
    "run_check_guide",
    "run_guide",
    "run_model",
    "run_phantom",
    "run_scaffold",
]
