"""One measured check, JSON-ready: value, unit, threshold, where the threshold comes from, pass."""

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

    def as_dict(self) -> dict:
        return _clean({
            "name": self.name, "subject": self.subject, "value": self.value, "unit": self.unit,
            "threshold": self.threshold, "comparison": self.comparison, "source": self.source,
            "passed": self.passed, "details": self.details,
        })


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
    return Check(name, value, unit, threshold, comparison, source, compare(value, threshold, comparison),
                 subject, details)


def overall(checks) -> bool:
    """True when no check failed and at least one passed (unmeasured ones don't fail)."""
    vals = [c.passed for c in checks]
    return all(v is not False for v in vals) and any(v is True for v in vals)
