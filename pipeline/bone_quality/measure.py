"""Bone quality of every vertebra from the same CT: the stage's entry point.

:func:`measure_bone_quality` takes any labelled segmentation on the CT's grid (a
:class:`~pipeline.segment.VertebraSegmentation`, or reference labels wrapped in
one) and returns, per vertebral body, the trabecular compartment's mean, median and
voxel count (:mod:`.compartment`), the radiologist-style oval ROI (:mod:`.roi`),
the screening band (:mod:`.screening`) and a stiffness estimate
(:mod:`.modulus`), plus the screening flag of the scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..defect.body import canonical_labels, find_body, is_sacrum
from ..defect.heights import canonical_ct
from ..errors import DesignError
from ..volume import reorient, voxel_sizes
from . import screening as scr
from .compartment import TrabecularRule, trabecular_compartment
from .modulus import DensityCalibration, trabecular_modulus
from .roi import OvalROI, oval_roi

#: A compartment smaller than this is not reported, mm³ (too little bone to
#: average the noise and the trabecular texture; e.g. a body mostly out of view).
MIN_COMPARTMENT_MM3 = 500.0

METHOD = (
    "automated: volumetric trabecular compartment of the body (margins in 'rule') and an "
    "automated oval ROI on the mid-body axial slice; the screening value is the oval ROI's mean "
    "(the method the thresholds were derived with), else the compartment's"
)


@dataclass(frozen=True)
class VertebraDensity:
    """Trabecular bone density of one vertebral body (HU, mm³).

    Attributes
    ----------
    level : str
    label_value : int
    mean_hu, median_hu, sd_hu : float or None
        Attenuation of the trabecular compartment; None when not measured.
    voxel_count : int
        Voxels in the compartment.
    volume_mm3 : float
    roi : OvalROI or None
        The mid-body oval ROI.
    fractured : bool
        Graded as a compression fracture (its defect and fracture zone excluded).
    cut_by_scan_edge : bool
        The body touches the scan's first or last slice.
    excluded_voxels : dict
        Body voxels left out per rule (see :mod:`.compartment`).
    note : str
        Why no value, or "" when measured.
    """

    level: str
    label_value: int
    mean_hu: float | None
    median_hu: float | None
    sd_hu: float | None
    voxel_count: int
    volume_mm3: float
    roi: OvalROI | None = None
    fractured: bool = False
    cut_by_scan_edge: bool = False
    excluded_voxels: dict = field(default_factory=dict)
    note: str = ""

    @property
    def value_hu(self) -> float | None:
        """The value compared with the thresholds: the oval ROI's mean, else the compartment's."""
        return self.roi.mean_hu if self.roi is not None else self.mean_hu

    @property
    def category(self) -> str:
        """Screening band of this level's value (thresholds derived at L1, see :mod:`.screening`)."""
        return scr.classify(self.value_hu)

    def to_dict(self, calibration: DensityCalibration = DensityCalibration()) -> dict:
        out = {
            "level": self.level,
            "label_value": int(self.label_value),
            "trabecular_mean_hu": _round(self.mean_hu),
            "trabecular_median_hu": _round(self.median_hu),
            "trabecular_sd_hu": _round(self.sd_hu),
            "voxel_count": int(self.voxel_count),
            "volume_mm3": round(float(self.volume_mm3), 1),
            "oval_roi": None if self.roi is None else self.roi.to_dict(),
            "value_hu": _round(self.value_hu),
            "category": self.category,
            "fractured": bool(self.fractured),
            "cut_by_scan_edge": bool(self.cut_by_scan_edge),
            "excluded_voxels": {k: int(v) for k, v in self.excluded_voxels.items()},
            "note": self.note,
        }
        if self.mean_hu is not None:
            est = trabecular_modulus(self.mean_hu, calibration)
            out["apparent_density_g_cm3_estimate"] = round(est.apparent_density_g_cm3, 4)
            out["modulus_mpa_estimate"] = round(est.modulus_mpa, 1)
        return out


@dataclass(frozen=True)
class Screening:
    """The scan's opportunistic osteoporosis screening flag (not a diagnosis)."""

    level: str | None
    value_hu: float | None
    category: str
    reason: str
    notes: tuple = ()

    @property
    def words(self) -> str:
        return scr.WORDS[self.category]

    def summary(self) -> str:
        """One line for the command line."""
        if self.level is None:
            return f"bone density screening: not assessable ({self.reason})"
        return (
            f"bone density screening: {self.words} ({self.level} {self.value_hu:.0f} HU; "
            f"<= {scr.OSTEOPOROSIS_MAX_HU:g} likely osteoporosis, > {scr.INDETERMINATE_MAX_HU:g} likely "
            f"normal; {self.reason}); a screening flag, not a diagnosis"
        )

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "value_hu": _round(self.value_hu),
            "category": self.category,
            "category_words": self.words,
            "level_choice": self.reason,
            "thresholds": scr.thresholds(),
            "statement": scr.DISCLAIMER,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class BoneQuality:
    """Bone quality of a scan: per-level trabecular density and the screening flag.

    Attributes
    ----------
    levels : tuple of VertebraDensity
        Superior first, every vertebra but the sacrum.
    screening : Screening
    acquisition : dict
        kVp and contrast facts from the scan (non-identifying).
    rule : TrabecularRule
    calibration : DensityCalibration
        HU -> density used for the stiffness estimates.
    warnings : tuple of str
    """

    levels: tuple
    screening: Screening
    acquisition: dict
    rule: TrabecularRule = TrabecularRule()
    calibration: DensityCalibration = DensityCalibration()
    warnings: tuple = ()

    def level(self, name: str) -> VertebraDensity | None:
        """The record of level ``name``, None if absent."""
        return next((v for v in self.levels if v.level == name), None)

    def to_dict(self) -> dict:
        """JSON-ready record (``bone.json`` and the manifest's ``bone_quality``)."""
        return {
            "screening": self.screening.to_dict(),
            "levels": [v.to_dict(self.calibration) for v in self.levels],
            "acquisition": dict(self.acquisition),
            "method": METHOD,
            "rule": {
                **self.rule.to_dict(),
                "min_compartment_mm3": MIN_COMPARTMENT_MM3,
                "roi_size_rule": "largest ellipse shaped like the eligible cross-section (see "
                "pipeline.bone_quality.roi) on the axial slice nearest the body centre",
            },
            "density_modulus": trabecular_modulus(0.0, self.calibration).to_dict()["chain"],
            "calibration": self.calibration.to_dict(),
            "contrast_source": scr.SOURCE_CONTRAST,
            "warnings": list(self.warnings),
        }


def _round(v, nd: int = 1):
    return None if v is None else round(float(v), nd)


def measure_bone_quality(
    segmentation,
    volume,
    *,
    fractures=None,
    rule: TrabecularRule = TrabecularRule(),
    calibration: DensityCalibration = DensityCalibration(),
) -> BoneQuality:
    """Trabecular density of every vertebral body and the scan's screening flag.

    Parameters
    ----------
    segmentation : VertebraSegmentation
        Labels on the CT's grid (``labels``, ``affine``, ``levels`` value -> name,
        optional ``cut_by_scan_edge`` and ``named``); any storage orientation.
    volume : CTVolume
        The CT, HU; ``volume.info`` gives kVp and contrast.
    fractures : list of Fracture, optional
        Graded compression fractures with defect masks on the same grid
        (:func:`pipeline.defect.find_compression_fractures`); found here when None,
        none when ``[]``.
    rule : TrabecularRule
        Compartment margins and limits (mm, HU).
    calibration : DensityCalibration
        HU -> mineral density for the stiffness estimates (default: assumed).

    Returns
    -------
    BoneQuality

    Raises
    ------
    InputError
        The CT and the segmentation are not on the same grid.
    """
    hu_c = canonical_ct(segmentation, volume)
    labels_c, affine_c, _ = canonical_labels(segmentation)
    boxes = ndimage.find_objects(labels_c)
    cut = set(getattr(segmentation, "cut_by_scan_edge", ()) or ())
    bodies = {}
    for value, name in segmentation.levels.items():
        value = int(value)
        box = boxes[value - 1] if 0 < value <= len(boxes) else None
        if is_sacrum(name, value) or box is None:
            continue
        try:
            bodies[name] = find_body(labels_c, affine_c, value, name, box)
        except DesignError as exc:
            bodies[name] = exc
    if fractures is None:
        from ..defect import find_compression_fractures

        # The fracture grading isolates the same bodies (levels cut by the scan's edge aside).
        whole = {n: b for n, b in bodies.items() if n not in cut and not isinstance(b, DesignError)}
        fractures = find_compression_fractures(segmentation, volume, bodies=whole)
    defects = {f.level: f.full_mask() for f in fractures if f.grade >= 1}
    voxel_mm3 = float(np.prod(voxel_sizes(affine_c)))
    out = []
    for value, name in segmentation.levels.items():
        if name in bodies:
            out.append(
                _level(
                    name,
                    int(value),
                    bodies[name],
                    hu_c,
                    defects.get(name),
                    segmentation,
                    rule,
                    voxel_mm3,
                    name in cut,
                    name in defects,
                )
            )
    info = volume.info
    acquisition = {
        "kvp": info.kvp,
        "contrast_agent_stated": info.contrast_stated,
        "contrast_delay_s": info.contrast_delay_s,
        "contrast_phase": (
            scr.contrast_phase(info.contrast_delay_s)
            if info.contrast_stated
            else "no contrast agent named"
            if info.contrast_stated is False
            else "unknown"
        ),
    }
    notes = scr.acquisition_notes(info.kvp, info.contrast_stated, info.contrast_delay_s)
    screening = _screen(out, segmentation, set(defects), notes)
    warnings = [f"{v.level}: {v.note}" for v in out if v.note]
    return BoneQuality(
        levels=tuple(out),
        screening=screening,
        acquisition=acquisition,
        rule=rule,
        calibration=calibration,
        warnings=tuple(warnings),
    )


def _level(name, value, body, hu_c, defect, segmentation, rule, voxel_mm3, cut, fractured):
    if isinstance(body, DesignError):
        return VertebraDensity(
            name,
            value,
            None,
            None,
            None,
            0,
            0.0,
            cut_by_scan_edge=cut,
            fractured=fractured,
            note=f"no vertebral body isolated ({body})",
        )
    sl = tuple(slice(a, a + n) for a, n in zip(body.start, body.mask.shape))
    hu = np.asarray(hu_c[sl], np.float32)
    defect_c = None
    if defect is not None:
        defect_c = np.ascontiguousarray(reorient(defect, segmentation.affine, "SPL")[0][sl])
    comp = trabecular_compartment(body, hu, defect_c, rule)
    n = int(comp.mask.sum())
    if n * voxel_mm3 < MIN_COMPARTMENT_MM3:
        return VertebraDensity(
            name,
            value,
            None,
            None,
            None,
            n,
            n * voxel_mm3,
            cut_by_scan_edge=cut,
            fractured=fractured,
            excluded_voxels=comp.excluded,
            note=f"trabecular compartment {n * voxel_mm3:.0f} mm3 is below "
            f"{MIN_COMPARTMENT_MM3:g} mm3 (body too small, collapsed or out of view)",
        )
    values = hu[comp.mask].astype(np.float64)
    return VertebraDensity(
        level=name,
        label_value=value,
        mean_hu=float(values.mean()),
        median_hu=float(np.median(values)),
        sd_hu=float(values.std()),
        voxel_count=n,
        volume_mm3=n * voxel_mm3,
        roi=oval_roi(body, hu, comp, rule),
        fractured=fractured,
        cut_by_scan_edge=cut,
        excluded_voxels=comp.excluded,
    )


def _screen(levels, segmentation, fractured: set, notes: list) -> Screening:
    if not getattr(segmentation, "named", True):
        return Screening(
            None,
            None,
            scr.NOT_ASSESSABLE,
            "the vertebrae are not named (no sacrum or lowest ribs in view), so L1 is unknown",
            tuple(notes),
        )
    usable = {v.level: v.value_hu for v in levels if v.value_hu is not None}
    level, reason = scr.choose_level(usable, fractured, set(segmentation.levels.values()))
    value = usable.get(level) if level else None
    return Screening(level, value, scr.classify(value), reason, tuple(notes))
