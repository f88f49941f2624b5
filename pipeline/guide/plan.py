"""The screw plan: what a surgeon approves and a guide is built from (LPS mm).

A screw is given by its entry point (where its axis crosses the posterior
cortex), a target point on its axis (normally the planned tip), its diameter and
its length. The screw occupies the axis from the entry towards the target for
``length_mm``; the target only fixes the direction, so a plan from other software
whose target is not at the tip is still read correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SIDES = ("left", "right")


@dataclass(frozen=True)
class Screw:
    """One planned pedicle screw.

    Attributes
    ----------
    level : str
        Vertebra, e.g. "L3".
    side : str
        Patient's "left" or "right".
    entry : ndarray (3,)
        LPS mm, on the posterior cortex.
    target : ndarray (3,)
        LPS mm, a point on the axis inside the vertebra (normally the tip).
    diameter_mm, length_mm : float
    id : str
        Unique within the plan, default ``"<level>-<side>"``.
    """

    level: str
    side: str
    entry: np.ndarray
    target: np.ndarray
    diameter_mm: float
    length_mm: float
    id: str = ""

    def __post_init__(self):
        object.__setattr__(self, "entry", np.asarray(self.entry, float).reshape(3))
        object.__setattr__(self, "target", np.asarray(self.target, float).reshape(3))
        if not self.id:
            object.__setattr__(self, "id", f"{self.level}-{self.side}")

    @property
    def direction(self) -> np.ndarray:
        """Unit vector from entry towards target (into the bone)."""
        d = self.target - self.entry
        return d / np.linalg.norm(d)

    @property
    def tip(self) -> np.ndarray:
        """LPS mm of the screw's tip."""
        return self.entry + self.length_mm * self.direction

    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2

    def moved(self, entry=None, direction=None) -> Screw:
        """Copy with another entry and/or direction (target placed at the tip)."""
        e = self.entry if entry is None else np.asarray(entry, float)
        d = self.direction if direction is None else np.asarray(direction, float) / np.linalg.norm(direction)
        return Screw(self.level, self.side, e, e + self.length_mm * d, self.diameter_mm, self.length_mm, self.id)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "level": self.level,
            "side": self.side,
            "entry_lps": [round(float(v), 4) for v in self.entry],
            "target_lps": [round(float(v), 4) for v in self.target],
            "diameter_mm": float(self.diameter_mm),
            "length_mm": float(self.length_mm),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Screw:
        return cls(
            d["level"],
            d["side"],
            d["entry_lps"],
            d["target_lps"],
            float(d["diameter_mm"]),
            float(d["length_mm"]),
            d.get("id", ""),
        )


@dataclass(frozen=True)
class Plan:
    """A set of screws in one scan's patient coordinates.

    Attributes
    ----------
    screws : tuple of Screw
    series_hash : str
        Short hash of the scan the plan belongs to ("" if unknown); never a raw UID.
    source : str
        Who made it: "osteoprint" or the name of other software / "manual".
    planning : dict
        Per screw id, what the planner measured (JSON-ready); empty for imported plans.
    """

    screws: tuple
    series_hash: str = ""
    source: str = "osteoprint"
    planning: dict = field(default_factory=dict)

    def by_level(self, level: str) -> list:
        return [s for s in self.screws if s.level == level]

    def levels(self) -> list:
        out = []
        for s in self.screws:
            if s.level not in out:
                out.append(s.level)
        return out

    def screw(self, screw_id: str) -> Screw:
        for s in self.screws:
            if s.id == screw_id:
                return s
        raise KeyError(screw_id)

    def as_dict(self) -> dict:
        out = {
            "format": "osteoprint-screw-plan",
            "version": 1,
            "units": "mm",
            "coordinate_system": "LPS",
            "series_hash": self.series_hash,
            "source": self.source,
            "screws": [s.as_dict() for s in self.screws],
        }
        if self.planning:
            out["planning"] = self.planning
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(
            tuple(Screw.from_dict(s) for s in d["screws"]),
            d.get("series_hash", ""),
            d.get("source", "imported"),
            dict(d.get("planning", {})),
        )
