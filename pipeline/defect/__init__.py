"""Stage 3a: vertebral compression fractures and the defect region to fill.

Measures every vertebral body's anterior, middle and posterior heights in its own
frame, grades compression fractures by Genant's semi-quantitative method (Genant
et al., J Bone Miner Res 1993;8:1137-48) and outlines the defect between a
collapsed body and its height-restored envelope, as a mask on the segmentation's
grid for :meth:`pipeline.scaffold.Region.from_mask`.

Severity is graded by shape alone. The neighbours' trabecular density
(:mod:`pipeline.bone_quality`) is not used to judge a fracture's age or severity:
no source we know supports that on single-energy CT.

Modules: :mod:`.body` (body isolation and frame), :mod:`.heights` (morphometry),
:mod:`.genant` (grading), :mod:`.envelope` (restored envelope and defect),
:mod:`.fractures` (the entry points).
"""

from .fractures import Fracture, FractureInfo, defect_region, find_compression_fractures, fractures_to_fill
from .genant import FractureGrading, genant_grade, grade_levels
from .heights import BodyHeights, measure_vertebral_bodies

__all__ = [
    "BodyHeights",
    "Fracture",
    "FractureGrading",
    "FractureInfo",
    "defect_region",
    "find_compression_fractures",
    "fractures_to_fill",
    "genant_grade",
    "grade_levels",
    "measure_vertebral_bodies",
]
