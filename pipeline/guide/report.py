"""Results of the plan and guide checks, as frozen records with ``to_dict()``.

A :class:`Check` is one measured property against its threshold (value, unit,
threshold, where the threshold comes from, pass); a :class:`Failure` names a check
that failed, the same way for plans and guides. :class:`PlanReport` (from
:func:`~pipeline.guide.plan_checks.check_plan`) and :class:`GuideReport` (from
:func:`~pipeline.guide.guide_checks.check_guide`) hold the checks and what was
measured; their ``to_dict()`` is what ``plan.json``, the manifest's guide records
and the ``check-guide`` report carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _clean(v):
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else round(float(v), 4)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, np.ndarray):
        return [_clean(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    return v


@dataclass(frozen=True)
class Check:
    """A measured property against its threshold.

    ``passed`` is None when the check could not be measured (e.g. the vertebra
    above is not in the scan); ``comparison`` says how value and threshold relate
    for a pass ("<=", ">=", "==", "in").
    """

    name: str
    value: object
    unit: str
    threshold: object
    comparison: str
    source: str
    passed: bool | None
    subject: str = ""
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready: floats rounded to 4 decimals, non-finite ones None."""
        return _clean(
            {
                "name": self.name,
                "subject": self.subject,
                "value": self.value,
                "unit": self.unit,
                "threshold": self.threshold,
                "comparison": self.comparison,
                "source": self.source,
                "passed": self.passed,
                "details": self.details,
            }
        )


def compare(value, threshold, comparison: str) -> bool | None:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if comparison == "<=":
        return bool(value <= threshold + 1e-9)
    if comparison == ">=":
        return bool(value >= threshold - 1e-9)
    if comparison == "==":
        return bool(value == threshold)
    if comparison == "in":
        return bool(threshold[0] - 1e-9 <= value <= threshold[1] + 1e-9)
    raise ValueError(comparison)


def make_check(name, value, unit, threshold, comparison, source, subject="", **details) -> Check:
    return Check(
        name, value, unit, threshold, comparison, source, compare(value, threshold, comparison), subject, details
    )


def overall(checks) -> bool:
    """True when no check failed and at least one passed (unmeasured ones don't fail)."""
    vals = [c.passed for c in checks]
    return all(v is not False for v in vals) and any(v is True for v in vals)


def json_ready(value):
    """``value`` with numpy scalars and arrays as plain JSON values (floats to 4 decimals)."""
    return _clean(value)


@dataclass(frozen=True)
class Failure:
    """A check that failed.

    Attributes
    ----------
    check : str
        The check's name, e.g. ``"breach"``.
    subject : str
        What it was about: a screw id, two ids ``"a/b"``, or ``"guide"``.
    detail : str
        The measured value against its threshold, e.g. ``"2.31 mm, needs <= 0"``.
    """

    check: str
    subject: str
    detail: str

    @classmethod
    def of(cls, c: Check) -> Failure:
        value = c.value
        shown = f"{value:.3g}" if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) else value
        return cls(c.name, c.subject, f"{shown} {c.unit}, needs {c.comparison} {_clean(c.threshold)}".strip())

    def __str__(self) -> str:
        return self.check + (f" ({self.subject})" if self.subject else "")

    def to_dict(self) -> dict:
        return {"check": self.check, "subject": self.subject, "detail": self.detail}


def failures(checks) -> tuple[Failure, ...]:
    """The failed checks among ``checks`` (unmeasured ones have not failed)."""
    return tuple(Failure.of(c) for c in checks if c.passed is False)


def find(checks, name: str, subject: str | None = None) -> list[Check]:
    """The checks called ``name`` (about ``subject``, when given)."""
    return [c for c in checks if c.name == name and (subject is None or c.subject == subject)]


@dataclass(frozen=True)
class ScrewMeasurement:
    """What the plan checks measured of one screw (mm, degrees).

    Attributes
    ----------
    breach : Breach
        Gertzbein-Robbins breach (:func:`~pipeline.guide.breach.measure_breach`).
    isthmus_walls_mm : dict
        Bone left around the screw at the isthmus: medial, lateral, superior,
        inferior (negative: outside by that much).
    medial_angle_deg, cranial_angle_deg : float
        The screw's angles in the vertebra's frame.
    tip_to_anterior_cortex_mm : float
        Along the axis, from the tip to where it would leave the body.
    """

    breach: object
    isthmus_walls_mm: dict
    medial_angle_deg: float
    cranial_angle_deg: float
    tip_to_anterior_cortex_mm: float

    def to_dict(self) -> dict:
        return _clean(
            {
                "breach": self.breach.as_dict(),
                "isthmus_walls_mm": self.isthmus_walls_mm,
                "medial_angle_deg": self.medial_angle_deg,
                "cranial_angle_deg": self.cranial_angle_deg,
                "tip_to_anterior_cortex_mm": self.tip_to_anterior_cortex_mm,
            }
        )


@dataclass(frozen=True)
class ScrewReport:
    """The single-screw checks of one screw and what they measured."""

    id: str
    level: str
    side: str
    checks: tuple
    measured: ScrewMeasurement

    @property
    def passed(self) -> bool:
        return overall(self.checks)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "level": self.level,
            "side": self.side,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "measured": self.measured.to_dict(),
        }


@dataclass(frozen=True)
class PlanReport:
    """Every check of a screw plan: per screw, and between every pair of screws.

    Attributes
    ----------
    screws : tuple of ScrewReport
        In the plan's order.
    pairs : tuple of Check
        ``screw_clearance`` of each pair, subject ``"id_a/id_b"``.
    """

    screws: tuple
    pairs: tuple

    @property
    def checks(self) -> tuple:
        """Every check: each screw's, then the pairs'."""
        return tuple(c for s in self.screws for c in s.checks) + tuple(self.pairs)

    @property
    def passed(self) -> bool:
        return overall(self.checks)

    @property
    def failures(self) -> tuple:
        return failures(self.checks)

    def screw(self, screw_id: str) -> ScrewReport:
        return next(s for s in self.screws if s.id == screw_id)

    def find(self, name: str, subject: str | None = None) -> list:
        return find(self.checks, name, subject)

    def of_screws(self, ids) -> PlanReport:
        """The part of the report about the screws ``ids`` (their pairs included)."""
        ids = set(ids)
        return PlanReport(
            tuple(s for s in self.screws if s.id in ids),
            tuple(c for c in self.pairs if set(c.subject.split("/")) <= ids),
        )

    def to_dict(self) -> dict:
        """``{"passed", "screws": [{"id", "level", "side", "passed", "checks", "measured"}],
        "pairs": [check], "failed": ["name (subject)"]}``."""
        return {
            "passed": self.passed,
            "screws": [s.to_dict() for s in self.screws],
            "pairs": [c.to_dict() for c in self.pairs],
            "failed": [str(f) for f in self.failures],
        }


@dataclass(frozen=True)
class GuideFacts:
    """Measured figures of a guide for the print record and the process rule (mm, mm², mm³).

    ``thinnest_wall_mm`` and ``smallest_sleeve_wall_mm`` are None when the mesh is
    not a closed solid (not measured).
    """

    thinnest_wall_mm: float | None
    smallest_sleeve_wall_mm: float | None
    volume_mm3: float
    bore_diameter_mm: float
    clearance_mm: float
    contact_area_mm2: float
    contact_patches: int
    sterilisation: str = "steam (134 C) or H2O2 plasma"

    def to_dict(self) -> dict:
        return _clean(
            {
                "kind": "guide",
                "thinnest_wall_mm": self.thinnest_wall_mm,
                "smallest_sleeve_wall_mm": self.smallest_sleeve_wall_mm,
                "volume_mm3": self.volume_mm3,
                "bore_diameter_mm": self.bore_diameter_mm,
                "clearance_mm": self.clearance_mm,
                "contact_area_mm2": self.contact_area_mm2,
                "contact_patches": self.contact_patches,
                "sterilisation": self.sterilisation,
            }
        )


@dataclass(frozen=True)
class GuideReport:
    """Every check of one drill guide and its measured figures."""

    checks: tuple
    facts: GuideFacts

    @property
    def passed(self) -> bool:
        return overall(self.checks)

    @property
    def failures(self) -> tuple:
        return failures(self.checks)

    def find(self, name: str, subject: str | None = None) -> list:
        return find(self.checks, name, subject)

    def to_dict(self) -> dict:
        """``{"passed", "checks": [check], "failed": ["name (subject)"], "facts": {...}}``."""
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "failed": [str(f) for f in self.failures],
            "facts": self.facts.to_dict(),
        }


@dataclass(frozen=True)
class GuideCheckReport:
    """A plan and a drill guide from any tool, checked against a scan (``check-guide``).

    Attributes
    ----------
    plan : PlanReport
        Checks of the screws the guide serves.
    guide : GuideReport
    screws : tuple of dict
        Per screw: size, grade, breach, thinnest wall, angles
        (:func:`~pipeline.guide.plan_checks.screw_summaries`).
    levels : tuple of str
    series_hash : str
        The scan's.
    plan_sha256, guide_sha256 : str
        The files', by content only: their names are the user's free text.
    """

    plan: PlanReport
    guide: GuideReport
    screws: tuple
    levels: tuple
    series_hash: str
    plan_sha256: str
    guide_sha256: str

    @property
    def passed(self) -> bool:
        return bool(self.plan.passed and self.guide.passed)

    @property
    def failures(self) -> tuple:
        return self.plan.failures + self.guide.failures

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "scan": {"series_hash": self.series_hash},
            "plan": {"sha256": self.plan_sha256, "screws": [dict(s) for s in self.screws]},
            "guide": {"sha256": self.guide_sha256, "levels": list(self.levels)},
            "failed": [str(f) for f in self.failures],
            "plan_checks": [c.to_dict() for c in self.plan.checks],
            "guide_checks": [c.to_dict() for c in self.guide.checks],
            "measured": self.guide.facts.to_dict(),
        }
