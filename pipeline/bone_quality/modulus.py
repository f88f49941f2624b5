"""An estimate of this patient's trabecular bone stiffness from its CT attenuation.

The chain, every step named with its source, so a scaffold's stiffness can be put
beside the bone it goes into:

1. **HU -> mineral density** (hydroxyapatite-equivalent, mg/cm³). Routine CT carries
   no calibration phantom, so this step is an *assumption*: 1 mg/cm³ per HU above
   water (``DensityCalibration``'s default). Real scanner calibrations differ by tens
   of per cent and with the tube voltage; give the scanner's phantom calibration
   (slope, intercept) when it is known. Without it the result is an estimate of the
   order of magnitude, not a measurement.
2. **mineral -> apparent density**: ash density is 0.6 of the wet apparent density
   (ratio 0.598, Schileo E et al., J Biomech 2008;41:2483-2491), and CT mineral
   density is taken as ash density.
3. **apparent density -> modulus**: vertebral trabecular bone, on-axis,
   ``E = 4730 rho_app^1.56`` MPa with ``rho_app`` in g/cm³ (Morgan EF, Bayraktar HH,
   Keaveny TM. Trabecular bone modulus-density relationships depend on anatomic
   site. J Biomech 2003;36:897-904).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..volume import lps_to_index, voxel_sizes

#: Morgan, Bayraktar & Keaveny 2003, vertebra: E [MPa] = A * rho_app[g/cm3] ** B.
MORGAN_VERTEBRA_A_MPA = 4730.0
MORGAN_VERTEBRA_B = 1.56
SOURCE_MODULUS = (
    "Morgan EF, Bayraktar HH, Keaveny TM. Trabecular bone modulus-density relationships "
    "depend on anatomic site. J Biomech 2003;36:897-904 (vertebra: E = 4730 rho_app^1.56 MPa)"
)
#: Schileo et al. 2008: ash density / apparent density.
ASH_TO_APPARENT = 0.6
SOURCE_ASH = "Schileo E et al. J Biomech 2008;41:2483-2491 (ash/apparent density 0.598)"
#: Wet apparent density of vertebral trabecular bone reported in the literature, g/cm³.
APPARENT_RANGE_G_CM3 = (0.09, 0.35)
SOURCE_RANGE = (
    "Ohman-Magi C et al. Density and mechanical properties of vertebral trabecular bone - "
    "a review. JOR Spine 2021;4:e1176 (wet apparent density 0.09-0.35 g/cm3)"
)


@dataclass(frozen=True)
class DensityCalibration:
    """HU -> hydroxyapatite-equivalent density: ``rho = slope * HU + intercept`` (mg/cm³).

    The default is the uncalibrated assumption of the module docstring.
    """

    slope_mg_cm3_per_hu: float = 1.0
    intercept_mg_cm3: float = 0.0
    source: str = (
        "assumed, no calibration phantom: 1 mg/cm3 hydroxyapatite per HU above water; "
        "scanner calibrations differ by tens of per cent and with kVp"
    )

    @property
    def calibrated(self) -> bool:
        return not self.source.startswith("assumed")

    def to_dict(self) -> dict:
        return {**asdict(self), "calibrated": self.calibrated}


@dataclass(frozen=True)
class ModulusEstimate:
    """Estimated apparent elastic modulus of trabecular bone from its attenuation.

    Attributes
    ----------
    hu : float
        Mean trabecular attenuation the estimate starts from, HU.
    mineral_density_mg_cm3 : float
        Hydroxyapatite-equivalent density, mg/cm³.
    apparent_density_g_cm3 : float
        Wet apparent density, g/cm³.
    modulus_mpa : float
        On-axis apparent Young's modulus, MPa (0 when the density is not positive).
    calibration : DensityCalibration
    warnings : tuple of str
    """

    hu: float
    mineral_density_mg_cm3: float
    apparent_density_g_cm3: float
    modulus_mpa: float
    calibration: DensityCalibration
    warnings: tuple = ()

    def to_dict(self) -> dict:
        return {
            "from_hu": round(self.hu, 1),
            "mineral_density_mg_cm3": round(self.mineral_density_mg_cm3, 1),
            "apparent_density_g_cm3": round(self.apparent_density_g_cm3, 4),
            "modulus_mpa": round(self.modulus_mpa, 1),
            "estimate": True,
            "calibration": self.calibration.to_dict(),
            "chain": [
                f"rho_HA = {self.calibration.slope_mg_cm3_per_hu:g} mg/cm3/HU * HU + "
                f"{self.calibration.intercept_mg_cm3:g} mg/cm3 ({self.calibration.source})",
                f"rho_app = rho_HA / {ASH_TO_APPARENT:g} ({SOURCE_ASH})",
                f"E = {MORGAN_VERTEBRA_A_MPA:g} * rho_app^{MORGAN_VERTEBRA_B:g} MPa ({SOURCE_MODULUS})",
            ],
            "warnings": list(self.warnings),
        }


def trabecular_modulus(hu: float, calibration: DensityCalibration = DensityCalibration()) -> ModulusEstimate:
    """Estimate vertebral trabecular bone's apparent modulus from its mean attenuation.

    Parameters
    ----------
    hu : float
        Mean trabecular attenuation, HU.
    calibration : DensityCalibration
        HU -> mineral density; the default is an assumption (see the module docstring).

    Returns
    -------
    ModulusEstimate
    """
    mineral = calibration.slope_mg_cm3_per_hu * float(hu) + calibration.intercept_mg_cm3
    apparent = mineral / 1000.0 / ASH_TO_APPARENT
    warnings = []
    if not calibration.calibrated:
        warnings.append("uncalibrated HU: the density and modulus are order-of-magnitude estimates")
    lo, hi = APPARENT_RANGE_G_CM3
    if not lo <= apparent <= hi:
        warnings.append(
            f"apparent density {apparent:.3f} g/cm3 is outside the {lo:g}-{hi:g} g/cm3 reported "
            f"for vertebral trabecular bone ({SOURCE_RANGE}): the relation is extrapolated"
        )
    modulus = MORGAN_VERTEBRA_A_MPA * apparent**MORGAN_VERTEBRA_B if apparent > 0 else 0.0
    return ModulusEstimate(
        hu=float(hu),
        mineral_density_mg_cm3=mineral,
        apparent_density_g_cm3=apparent,
        modulus_mpa=float(modulus),
        calibration=calibration,
        warnings=tuple(warnings),
    )


def compare_with_bone(
    scaffold_modulus_gpa: float,
    level: str,
    trabecular_hu: float | None,
    calibration: DensityCalibration = DensityCalibration(),
    note: str = "",
) -> dict:
    """A scaffold's estimated stiffness beside this patient's trabecular bone (JSON-ready).

    Parameters
    ----------
    scaffold_modulus_gpa : float
        The scaffold's apparent modulus estimate (Gibson-Ashby), GPa.
    level : str
        Vertebra whose trabecular bone the scaffold meets.
    trabecular_hu : float or None
        That vertebra's mean trabecular attenuation, HU (None: not measured).
    calibration : DensityCalibration
    note : str
        Where the level's value comes from, when not the scaffold's own level.

    Returns
    -------
    dict
        ``level``, ``bone`` (the :class:`ModulusEstimate` record), ``scaffold_modulus_mpa``,
        ``ratio_scaffold_to_bone`` and a ``statement``.
    """
    scaffold_mpa = float(scaffold_modulus_gpa) * 1000.0
    if trabecular_hu is None:
        return {
            "level": level,
            "bone": None,
            "scaffold_modulus_mpa": round(scaffold_mpa, 1),
            "ratio_scaffold_to_bone": None,
            "note": note,
            "statement": f"{level}: no trabecular density measured, no patient-specific comparison",
        }
    bone = trabecular_modulus(trabecular_hu, calibration)
    ratio = scaffold_mpa / bone.modulus_mpa if bone.modulus_mpa > 0 else None
    if ratio is None:
        statement = "the bone estimate is not positive; no ratio"
    else:
        word = "stiffer" if ratio >= 1 else "more compliant"
        factor = ratio if ratio >= 1 else 1.0 / ratio
        statement = (
            f"scaffold estimate {scaffold_mpa:.0f} MPa is {factor:.1f} times {word} than the "
            f"estimate for this patient's {level} trabecular bone ({bone.modulus_mpa:.0f} MPa from "
            f"{trabecular_hu:.0f} HU); both are estimates"
            + ("" if bone.calibration.calibrated else ", the bone's from uncalibrated HU")
        )
    return {
        "level": level,
        "bone": bone.to_dict(),
        "scaffold_modulus_mpa": round(scaffold_mpa, 1),
        "ratio_scaffold_to_bone": None if ratio is None else round(ratio, 2),
        "note": note,
        "statement": statement,
    }


def scaffold_beside_bone(bone_quality, segmentation, level: str | None, point_lps, scaffold_modulus_gpa: float) -> dict:
    """A scaffold's stiffness beside the trabecular bone of the vertebra it meets.

    Parameters
    ----------
    bone_quality : BoneQuality
    segmentation : VertebraSegmentation
    level : str or None
        The defect's level when known (a compression fracture's).
    point_lps : array_like (3,)
        A point deep in the scaffold's region, LPS mm: without ``level``, the
        vertebra nearest it is taken.
    scaffold_modulus_gpa : float
        The scaffold's apparent modulus estimate, GPa.

    Returns
    -------
    dict
        :func:`compare_with_bone`'s record; when that vertebra has no measured
        density, the screening level's is used and ``note`` says so.
    """
    level = level or level_near(segmentation, point_lps)
    record = bone_quality.level(level) if level else None
    note = ""
    if record is None or record.mean_hu is None:
        fallback = bone_quality.screening.level
        note = f"{level or 'no vertebra near the region'}: no trabecular density measured" + (
            f"; {fallback} used" if fallback else ""
        )
        level, record = fallback, bone_quality.level(fallback) if fallback else None
    return compare_with_bone(
        scaffold_modulus_gpa,
        level or "none",
        None if record is None else record.mean_hu,
        bone_quality.calibration,
        note,
    )


def level_near(segmentation, point_lps, radius_mm: float = 15.0) -> str | None:
    """The vertebra most present within ``radius_mm`` of an LPS point (None if none).

    Used to find which vertebra's bone a scaffold region meets: a fracture defect
    lies outside the label it belongs to, next to it.
    """
    labels = np.asarray(segmentation.labels)
    spacing = np.asarray(voxel_sizes(segmentation.affine))
    centre = lps_to_index(segmentation.affine, np.asarray(point_lps, float))
    reach = np.ceil(radius_mm / spacing).astype(int)
    lo = np.maximum(np.floor(centre).astype(int) - reach, 0)
    hi = np.minimum(np.ceil(centre).astype(int) + reach + 1, labels.shape)
    if np.any(hi <= lo):
        return None
    box = labels[tuple(slice(a, b) for a, b in zip(lo, hi))]
    idx = np.indices(box.shape).reshape(3, -1).T + lo
    near = np.linalg.norm((idx - centre) * spacing, axis=1) <= radius_mm
    values = box.reshape(-1)[near]
    values = values[values > 0]
    if values.size == 0:
        return None
    value = int(np.bincount(values).argmax())
    return segmentation.levels.get(value)
