"""Opportunistic osteoporosis screening from L1 trabecular attenuation: thresholds and sources.

A **screening flag, not a diagnosis**: DXA (or calibrated QCT) decides. The rule
(Pickhardt PJ, Pooler BD, Lauder T, Muñoz del Rio A, Bruce RJ, Binkley N.
Opportunistic screening for osteoporosis using abdominal computed tomography scans
obtained for other indications. Ann Intern Med 2013;158:588-595), on L1's
trabecular attenuation from an oval ROI at mid-body:

* <= 110 HU: more than 90 % specific for osteoporosis at DXA -> *likely osteoporosis*;
* 110-160 HU: *indeterminate*;
* > 160 HU: the <= 160 HU threshold is 90 % sensitive, so above it osteoporosis is
  unlikely -> *likely normal*.

When L1 is fractured, missing, cut by the scan's edge or unmeasurable, the
neighbouring L2 is used, else T12 (the same study measured T12-L5; values of
adjacent levels differ by a few HU), and the record says which.
"""

from __future__ import annotations

#: Upper limits (HU, inclusive) of the screening bands, lowest first.
OSTEOPOROSIS_MAX_HU = 110.0
INDETERMINATE_MAX_HU = 160.0

LIKELY_OSTEOPOROSIS = "likely_osteoporosis"
INDETERMINATE = "indeterminate"
LIKELY_NORMAL = "likely_normal"
NOT_ASSESSABLE = "not_assessable"

#: The category in words, for the CLI summary and reports.
WORDS = {
    LIKELY_OSTEOPOROSIS: "likely osteoporosis",
    INDETERMINATE: "indeterminate",
    LIKELY_NORMAL: "likely normal",
    NOT_ASSESSABLE: "not assessable",
}

SOURCE_THRESHOLDS = (
    "Pickhardt PJ et al. Opportunistic screening for osteoporosis using abdominal CT scans "
    "obtained for other indications. Ann Intern Med 2013;158:588-595 (L1 <= 160 HU 90 % "
    "sensitive, <= 110 HU > 90 % specific for DXA osteoporosis)"
)
SOURCE_NORMS = (
    "Jang S et al. Opportunistic osteoporosis screening at routine abdominal and thoracic CT: "
    "normative L1 trabecular attenuation values in more than 20 000 adults. Radiology "
    "2019;291:360-367 (L1 falls ~2.5 HU a year, 226 +- 44 HU under 30, 89 +- 38 HU at 90; "
    "120 kV; automated ROIs read ~21 HU higher than manual ones)"
)
SOURCE_CONTRAST = (
    "Pickhardt PJ et al. Effect of IV contrast on lumbar trabecular attenuation at routine "
    "abdominal CT. Osteoporos Int 2016;27:147-152 (portal-venous phase +11.2 +- 19.2 HU at L1; "
    "screening performance similar with and without contrast)"
)
DISCLAIMER = "screening flag from routine CT, not a diagnosis of osteoporosis: confirm with DXA or calibrated QCT"
#: Order in which levels stand in for L1.
LEVEL_ORDER = ("L1", "L2", "T12")
#: kVp the thresholds were derived at.
REFERENCE_KVP = 120.0


def classify(value_hu: float | None) -> str:
    """Screening band of an L1 trabecular attenuation (HU); NOT_ASSESSABLE for None."""
    if value_hu is None:
        return NOT_ASSESSABLE
    if value_hu <= OSTEOPOROSIS_MAX_HU:
        return LIKELY_OSTEOPOROSIS
    if value_hu <= INDETERMINATE_MAX_HU:
        return INDETERMINATE
    return LIKELY_NORMAL


def thresholds() -> dict:
    """The rule as data, with its sources (JSON-ready)."""
    return {
        "likely_osteoporosis": f"<= {OSTEOPOROSIS_MAX_HU:g} HU",
        "indeterminate": f"> {OSTEOPOROSIS_MAX_HU:g} and <= {INDETERMINATE_MAX_HU:g} HU",
        "likely_normal": f"> {INDETERMINATE_MAX_HU:g} HU",
        "level": "L1; L2, else T12, when L1 is fractured, missing or unmeasurable",
        "source": SOURCE_THRESHOLDS,
        "norms": SOURCE_NORMS,
    }


def choose_level(usable: dict, fractured: set, present: set) -> tuple[str | None, str]:
    """The level whose value is screened, and why.

    Parameters
    ----------
    usable : dict
        Level name -> value (HU) for levels whose value can be used.
    fractured : set of str
        Levels graded as compression fractures.
    present : set of str
        Levels in the segmentation.

    Returns
    -------
    level : str or None
    reason : str
    """
    why = []
    for level in LEVEL_ORDER:
        if level in usable and level not in fractured:
            if not why:
                return level, "L1 measured"
            return level, f"{'; '.join(why)}: {level} used instead"
        if level not in present:
            why.append(f"{level} not in the scan")
        elif level in fractured:
            why.append(f"{level} fractured")
        else:
            why.append(f"{level} not measurable")
    return None, "; ".join(why) + ": no level to screen"


def acquisition_notes(kvp: float | None, contrast_stated: bool | None, delay_s: float | None) -> list[str]:
    """What about the acquisition shifts trabecular HU, in words (for the record)."""
    notes = []
    if kvp is None:
        notes.append(f"tube voltage not recorded; the thresholds were derived at {REFERENCE_KVP:g} kVp")
    elif abs(kvp - REFERENCE_KVP) > 1.0:
        notes.append(
            f"scanned at {kvp:g} kVp; the thresholds were derived at {REFERENCE_KVP:g} kVp and bone "
            f"attenuation in HU rises as the tube voltage falls"
        )
    if contrast_stated:
        phase = contrast_phase(delay_s)
        notes.append(
            f"contrast agent named in the DICOM ({phase}): portal-venous contrast raises L1 by "
            f"about 11 HU on average (Pickhardt et al., Osteoporos Int 2016)"
        )
    return notes


def contrast_phase(delay_s: float | None) -> str:
    """Phase estimated from the bolus-to-acquisition delay (s).

    Trabecular attenuation rises steeply between ~17 and ~41 s after injection and
    then plateaus (Eur Radiol Exp 2022;6:8, vBMD after contrast), so a scan before
    45 s is counted as arterial, up to 180 s as portal venous, later as delayed.
    """
    if delay_s is None:
        return "phase unknown: no bolus timing"
    if delay_s < 45.0:
        return f"arterial phase, {delay_s:.0f} s after the bolus start"
    if delay_s <= 180.0:
        return f"portal-venous phase, {delay_s:.0f} s after the bolus start"
    return f"delayed phase, {delay_s:.0f} s after the bolus start"
