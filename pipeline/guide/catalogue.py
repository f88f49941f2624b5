"""Screw sizes and the sizing rules of the planner, with where each rule comes from.

Every threshold the planner or the checks use lives here, next to its source, so
the report of a check can cite it and a surgeon can change it in one place.
"""

from __future__ import annotations

import numpy as np

#: Catalogue of pedicle screw diameters (mm): 4.5-7.5 in 0.5 mm steps.
DIAMETERS_MM = tuple(float(d) for d in np.arange(4.5, 7.51, 0.5))
#: Catalogue of screw lengths (mm): 30-55 in 5 mm steps.
LENGTHS_MM = tuple(float(v) for v in range(30, 56, 5))

#: Largest screw diameter as a fraction of the isthmus' outer width.
MAX_DIAMETER_TO_WIDTH = 0.8
SOURCE_DIAMETER_TO_WIDTH = (
    "Misenhimer GR et al., Spine 14(4):367-372, 1989: screws above ~80% of the outer "
    "pedicle diameter expand or fracture the pedicle"
)
#: Smallest difference isthmus width - diameter (mm): ~1 mm of cortex on each side.
MIN_WIDTH_MINUS_DIAMETER_MM = 2.0
SOURCE_WIDTH_MINUS_DIAMETER = "osteoprint sizing rule (issue 4): diameter <= isthmus width - 2 mm"
#: Thinnest bone wall wanted around the screw (mm).
MIN_WALL_MM = 1.0
SOURCE_WALL = "osteoprint planning rule (issue 4): >= 1 mm of bone around the screw at the isthmus"
#: Smallest distance from the tip to the anterior cortex along the axis (mm).
MIN_TIP_TO_ANTERIOR_MM = 4.0
SOURCE_TIP = (
    "osteoprint planning rule (issue 4): tip >= 4 mm behind the anterior cortex; "
    "anterior perforation endangers the aorta, vena cava and iliac vessels"
)
#: Deepest tip position as a fraction of the body depth along the axis.
MAX_BODY_DEPTH_FRACTION = 0.85
PLANNED_BODY_DEPTH_FRACTION = 0.80
SOURCE_DEPTH = (
    "Krag MH et al., J Spinal Disord 1(4):287-294, 1988 (insertion to 80% of the body "
    "depth); osteoprint accepts up to 85%"
)
#: Smallest clearance between two screws (mm).
MIN_SCREW_CLEARANCE_MM = 1.0
SOURCE_SCREW_CLEARANCE = "osteoprint planning rule (issue 4): screws >= 1 mm apart, never intersecting"
#: Smallest distance from the screw (and its head) to the vertebra above (mm).
MIN_FACET_CLEARANCE_MM = 1.0
#: Length of the screw head (tulip) modelled behind the entry point, mm, and its radius.
HEAD_LENGTH_MM = 6.0
SOURCE_FACET = (
    "superior facet-joint violation: Moshirfar A et al., Spine 31(22):2624-2629, 2006; "
    "osteoprint requires >= 1 mm between screw shaft/head and the cranial vertebra"
)
SOURCE_BREACH = (
    "Gertzbein SD, Robbins SE, Spine 15(1):11-14, 1990: grade A 0 mm, B < 2 mm, "
    "C < 4 mm, D < 6 mm, E >= 6 mm outside the cortex; a plan should be grade A"
)
#: Length past the cortical entry ignored by breach grading (mm): the entry itself
#: sits on the cortex by definition.
ENTRY_SKIP_MM = 3.0
#: Largest distance along the axis between a plan's entry point and the cortex (mm).
MAX_ENTRY_TO_CORTEX_MM = 2.0
SOURCE_ENTRY = (
    "osteoprint plan rule (issue 4): the entry point lies on the posterior cortex; a screw "
    "whose shank starts > 2 mm in front of or behind it is planned too deep or standing proud"
)

#: Typical transverse (medial) pedicle angle per level (deg) and the range accepted
#: for a screw: mean +- 10 deg. Sagittal (cranial) screw angle accepted within
#: -15 .. +10 deg of the vertebra's axial plane (straight-forward trajectory, parallel
#: to the superior endplate, to the anatomic trajectory angled caudally).
MEDIAL_ANGLE_MEAN_DEG = {"T11": 4.0, "T12": 5.0, "L1": 11.0, "L2": 12.0, "L3": 14.0, "L4": 18.0, "L5": 30.0}
MEDIAL_ANGLE_TOLERANCE_DEG = 10.0
CRANIAL_ANGLE_RANGE_DEG = (-15.0, 10.0)
SOURCE_ANGLES = (
    "pedicle transverse angles: Zindrick MR et al., Spine 12(2):160-166, 1987 "
    "(~11 deg at L1 to ~30 deg at L5); Panjabi MM et al., Spine 17(3):299-306, 1992; "
    "sagittal trajectories: Lehman RA et al., Spine 28(6):542-547, 2003"
)


def choose_diameter(width_mm: float, max_radius_mm: float | None = None) -> float | None:
    """Largest catalogue diameter fitting an isthmus of ``width_mm`` (mm).

    ``max_radius_mm`` additionally bounds the radius (e.g. the measured clearance
    along the trajectory minus the wanted wall). None when no size fits.
    """
    ok = [
        d
        for d in DIAMETERS_MM
        if d <= MAX_DIAMETER_TO_WIDTH * width_mm + 1e-9
        and d <= width_mm - MIN_WIDTH_MINUS_DIAMETER_MM + 1e-9
        and (max_radius_mm is None or d / 2 <= max_radius_mm + 1e-9)
    ]
    return max(ok) if ok else None


def choose_length(max_length_mm: float) -> float | None:
    """Longest catalogue length not exceeding ``max_length_mm`` (mm); None if none."""
    ok = [v for v in LENGTHS_MM if v <= max_length_mm + 1e-9]
    return max(ok) if ok else None


def medial_range(level: str) -> tuple[float, float] | None:
    """Accepted medial angle range (deg) for a level, None when the level has no entry."""
    m = MEDIAL_ANGLE_MEAN_DEG.get(level)
    return None if m is None else (m - MEDIAL_ANGLE_TOLERANCE_DEG, m + MEDIAL_ANGLE_TOLERANCE_DEG)
