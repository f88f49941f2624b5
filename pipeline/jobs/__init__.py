"""Whole jobs as the command line runs them: read -> segment -> mesh -> scaffold/guide -> export.

Each job is a function a notebook can call too. Jobs are the only place where
stages meet files, and they touch files only through :mod:`pipeline.exchange`,
staging every output so that an error or interrupt leaves nothing half-written.
"""

from .common import Quiet, read_scan
from .model import ModelOptions, run_model

__all__ = ["ModelOptions", "Quiet", "read_scan", "run_model"]
