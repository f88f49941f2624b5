"""Dimensions of each spinal level and the lordotic chain that places them.

Numbers are adult means rounded to what a CT at 0.8 mm can show. Sources:

* Vertebral bodies (endplate width and depth, height), canal, spinous and transverse
  processes: Panjabi MM et al., *Human lumbar vertebrae: quantitative
  three-dimensional anatomy*, Spine 17(3):299-306, 1992; T12 from Panjabi MM et al.,
  *Thoracic human vertebrae*, Spine 16(8):888-901, 1991.
* Pedicles (isthmus width and height, transverse angle): Zindrick MR et al.,
  *Analysis of the morphometric characteristics of the thoracic and lumbar pedicles*,
  Spine 12(2):160-166, 1987.
* Facet orientation to the sagittal plane: Panjabi MM et al., *Articular facets of the
  human spine*, Spine 18(10):1298-1310, 1993; Masharawi Y et al., Spine 29(16), 2004.
* Segmental lordosis and thoracolumbar junction: Bernhardt M, Bridwell KH,
  Spine 14(7):717-721, 1989. Sacral slope: Legaye J et al., Eur Spine J 7:99-103,
  1998 (standing mean ~41 deg; a few degrees less supine).
* Disc heights: Frobin W et al., Clin Biomech 12(S1):S1-S63, 1997 (8-12 mm lumbar).
* Wedge fracture grading: Genant HK et al., J Bone Miner Res 8:1137-1148, 1993
  (25-40 % anterior height loss = moderate, grade 2).
* Trabecular attenuation: a per-level gradient rising caudally, T12 76 HU to L5
  174 HU (sacrum 140), so that the three screening bands of Pickhardt et al. (Ann
  Intern Med 2013;158:588-595: <= 110, 110-160, > 160 HU) are all present, every
  value lies >= 10 HU from a threshold, and neighbours differ by >= 12 HU (a level
  named wrongly reads another level's density). Elderly adults span this range
  (L1 89 +- 38 HU at 90, 226 +- 44 HU under 30: Jang S et al., Radiology
  2019;291:360-367).

Local vertebra frame (mm): origin at the centre of the vertebral body, +x patient
left, +y posterior, +z cranial along the body axis. World = LPS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shapes import Frame, rotation


@dataclass(frozen=True)
class LevelSpec:
    """Shape parameters of one vertebra (mm, degrees, HU)."""

    name: str
    label: int
    width: float  # endplate width (transverse)
    depth: float  # endplate depth (antero-posterior)
    height: float  # body height at mid-depth
    wedge: float  # endplate angle, + when the anterior is taller (lordotic)
    pedicle_width: float  # transverse isthmus width
    pedicle_height: float
    pedicle_medial: float  # transverse (medial convergence) angle
    pedicle_cranial: float  # sagittal angle, + when the anterior end is cranial
    canal_width: float
    canal_depth: float
    spinous_length: float
    spinous_thickness: float
    spinous_height: float
    spinous_tilt: float  # caudal inclination of the spinous process
    transverse_span: float  # tip-to-tip span of the transverse processes
    transverse_thickness: float
    transverse_height: float
    facet_angle: float  # superior facets vs the sagittal plane
    trabecular_hu: float  # cancellous bone HU (the gradient of the module docstring)
    coronal: float = 0.0  # small scoliotic tilt (deg, about the AP axis)
    axial: float = 0.0  # small axial rotation (deg)


LEVELS: tuple[LevelSpec, ...] = (
    LevelSpec(
        "T12",
        19,
        40.0,
        31.0,
        24.0,
        -2.0,
        7.5,
        16.0,
        6.0,
        4.0,
        19.0,
        17.0,
        27.0,
        7.0,
        17.0,
        12.0,
        56.0,
        6.0,
        10.0,
        70.0,
        76.0,
        1.0,
        2.0,
    ),
    LevelSpec(
        "L1",
        20,
        42.0,
        33.0,
        25.0,
        0.0,
        8.5,
        15.4,
        11.0,
        3.0,
        21.5,
        16.5,
        30.0,
        7.0,
        20.0,
        10.0,
        70.0,
        5.5,
        11.0,
        25.0,
        88.0,
        1.5,
        3.0,
    ),
    LevelSpec(
        "L2",
        21,
        44.0,
        34.0,
        26.0,
        0.0,
        9.0,
        15.0,
        12.0,
        2.0,
        22.0,
        16.0,
        30.0,
        7.0,
        22.0,
        8.0,
        80.0,
        5.5,
        12.0,
        28.0,
        100.0,
        1.0,
        2.0,
    ),
    LevelSpec(
        "L3",
        22,
        46.0,
        35.0,
        26.0,
        1.0,
        10.5,
        14.5,
        14.0,
        1.0,
        23.0,
        16.0,
        30.0,
        7.5,
        22.0,
        6.0,
        90.0,
        6.0,
        12.0,
        34.0,
        124.0,
        0.0,
        0.5,
    ),
    LevelSpec(
        "L4",
        23,
        48.0,
        35.5,
        26.0,
        2.0,
        13.0,
        14.0,
        18.0,
        0.0,
        23.5,
        16.0,
        29.0,
        8.0,
        21.0,
        6.0,
        85.0,
        6.5,
        13.0,
        40.0,
        142.0,
        -1.0,
        -1.0,
    ),
    LevelSpec(
        "L5",
        24,
        50.0,
        36.0,
        26.0,
        5.0,
        17.0,
        14.0,
        28.0,
        -2.0,
        25.0,
        16.0,
        24.0,
        8.0,
        18.0,
        4.0,
        88.0,
        9.0,
        15.0,
        46.0,
        174.0,
        -1.0,
        -1.5,
    ),
    # S1: the sacrum's first segment; only its body, canal and facet fields are used.
    LevelSpec(
        "S1",
        26,
        50.0,
        36.0,
        28.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        28.0,
        14.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        50.0,
        140.0,
        0.0,
        0.0,
    ),
)

#: Disc (upper, lower) -> (height at mid-depth, wedge angle); wedge + = anterior taller.
DISCS: dict[tuple[str, str], tuple[float, float]] = {
    ("T12", "L1"): (8.0, 0.0),
    ("L1", "L2"): (8.5, 3.0),
    ("L2", "L3"): (9.5, 6.0),
    ("L3", "L4"): (10.5, 8.0),
    ("L4", "L5"): (11.0, 10.0),
    ("L5", "S1"): (10.5, 12.0),
}

#: Sacral slope of the S1 endplate to the axial plane (supine), deg.
SACRAL_SLOPE = 36.0
#: Extra kyphosis at T12-L1 after the L1 wedge fracture, deg.
FRACTURE_KYPHOSIS = 4.0
#: Facet joint space (cartilage + synovium), mm.
FACET_GAP = 1.6
#: Minimum space kept between neighbouring vertebrae anywhere else, mm.
MIN_GAP = 1.0

LABELS = {s.name: s.label for s in LEVELS}


def spec(name: str) -> LevelSpec:
    for s in LEVELS:
        if s.name == name:
            return s
    raise KeyError(f"unknown level {name!r}; known: {', '.join(LABELS)}")


def _sagittal_normal(angle_deg: float) -> np.ndarray:
    """Unit vector tilted from +z towards anterior (-y) by ``angle_deg``."""
    a = np.radians(angle_deg)
    return np.array([0.0, -np.sin(a), np.cos(a)])


def _orientation(theta: float, coronal: float, axial: float) -> np.ndarray:
    return rotation("z", axial) @ rotation("y", coronal) @ rotation("x", theta)


def build_frames(s1_centre=(0.0, 0.0, 0.0)) -> dict[str, Frame]:
    """Place every vertebra along the lordotic curve, from S1 upwards.

    The sagittal angle ``theta`` of a frame is the tilt of its +z axis towards
    anterior. An endplate's upward normal has angle ``theta + wedge/2`` (inferior) or
    ``theta - wedge/2`` (superior); each disc turns the next level back by its wedge.

    Returns
    -------
    dict
        Level name -> :class:`Frame` (body centre and axes in model mm).
    """
    frames: dict[str, Frame] = {}
    s1 = spec("S1")
    theta = SACRAL_SLOPE + s1.wedge / 2
    frames["S1"] = Frame(_orientation(theta, s1.coronal, s1.axial), np.asarray(s1_centre, float))
    lower, lower_theta = s1, theta
    for upper in reversed(LEVELS[:-1]):
        h, wedge = DISCS[(upper.name, lower.name)]
        if upper.name == "T12":
            wedge -= FRACTURE_KYPHOSIS
        lf = frames[lower.name]
        alpha_sup = lower_theta - lower.wedge / 2
        top = lf.point((0.0, 0.0, lower.height / 2))
        mid = alpha_sup - wedge / 2
        coronal = 0.5 * (lower.coronal + upper.coronal)
        axial = 0.5 * (lower.axial + upper.axial)
        n_mid = _orientation(mid, coronal, axial) @ np.array([0.0, 0.0, 1.0])
        bottom = top + h * n_mid
        theta_u = alpha_sup - wedge - upper.wedge / 2
        R = _orientation(theta_u, upper.coronal, upper.axial)
        centre = bottom + R @ np.array([0.0, 0.0, upper.height / 2])
        frames[upper.name] = Frame(R, centre)
        lower, lower_theta = upper, theta_u
    return frames


def endplate_angle(frame: Frame, level: LevelSpec, which: str) -> float:
    """Sagittal angle (deg) of an endplate's cranial normal, + when facing anterior."""
    t = np.radians(level.wedge / 2)
    local = np.array([0.0, -np.sin(t), np.cos(t)]) if which == "inferior" else np.array([0.0, np.sin(t), np.cos(t)])
    n = frame.vector(local)
    return float(np.degrees(np.arctan2(-n[1], n[2])))
