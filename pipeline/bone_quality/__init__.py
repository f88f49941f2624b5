"""Bone quality from the same CT: trabecular density per vertebra and an osteoporosis flag.

>>> from pipeline.bone_quality import measure_bone_quality       # doctest: +SKIP
>>> bq = measure_bone_quality(seg, volume)          # finds compression fractures itself
>>> bq.level("L2").mean_hu, bq.screening.summary()

Per vertebral body: the trabecular compartment (away from cortex and endplates,
without the basivertebral vein, a fracture's zone or sclerotic bone), its mean and
median HU and voxel count, and an automated oval ROI at mid-body as radiologists
draw it. The scan's flag applies the published L1 thresholds (Pickhardt et al.,
Ann Intern Med 2013) as a screening flag, not a diagnosis.

Modules: :mod:`.compartment` (the voxels read), :mod:`.roi` (the oval ROI),
:mod:`.screening` (thresholds, level choice, acquisition notes), :mod:`.modulus`
(HU -> density -> stiffness estimate), :mod:`.measure` (the entry point).
"""

from .compartment import TrabecularRule
from .measure import BoneQuality, Screening, VertebraDensity, measure_bone_quality
from .modulus import (
    DensityCalibration,
    ModulusEstimate,
    compare_with_bone,
    level_near,
    scaffold_beside_bone,
    trabecular_modulus,
)
from .roi import OvalROI
from .screening import classify

__all__ = [
    "BoneQuality",
    "DensityCalibration",
    "ModulusEstimate",
    "OvalROI",
    "Screening",
    "TrabecularRule",
    "VertebraDensity",
    "classify",
    "compare_with_bone",
    "level_near",
    "measure_bone_quality",
    "scaffold_beside_bone",
    "trabecular_modulus",
]
