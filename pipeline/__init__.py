"""osteoprint: CT to printable spinal implants (vertebra models, scaffolds, guides).

The Python API mirrors the command line, one function per pipeline stage; see
README.md for the stage-by-stage walk-through. The names below are imported on
first use, so ``import pipeline`` stays cheap::

    import pipeline as op
    volume, report = op.load_scan("path/to/dicom")
    seg = op.segment_vertebrae(volume)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it (one per pipeline stage).
_API = {
    "load_scan": "pipeline.exchange.scan",
    "CTVolume": "pipeline.volume",
    "segment_vertebrae": "pipeline.segment",
    "VertebraSegmentation": "pipeline.segment",
    "mesh_vertebra": "pipeline.mesh",
    "vertebra_models": "pipeline.mesh",
    "check_mesh": "pipeline.mesh",
    "find_compression_fractures": "pipeline.defect",
    "measure_vertebral_bodies": "pipeline.defect",
    "measure_bone_quality": "pipeline.bone_quality",
    "Region": "pipeline.scaffold",
    "build_scaffold": "pipeline.scaffold",
    "deviation_bound": "pipeline.printing",
    "plan_screws": "pipeline.guide",
    "check_plan": "pipeline.guide",
    "run_model": "pipeline.jobs",
    "run_scaffold": "pipeline.jobs",
    "run_guide": "pipeline.jobs",
    "run_bone": "pipeline.jobs",
    "run_all": "pipeline.jobs",
    "run_batch": "pipeline.jobs",
    "run_check_guide": "pipeline.jobs",
    "run_phantom": "pipeline.jobs",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__():
    return __all__
