"""Checks of the jobs' options, made when the options are built, before any work.

Each check raises :class:`~pipeline.errors.OptionError` naming the command-line
option (the API argument behind it has the same meaning) and the value given. The
stages' own parsers (lattices, gradings, primitives, materials) are reused, so an
option is accepted here exactly when the stage would accept it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from ..errors import OptionError, OsteoprintError

#: Names a vertebra can have: C1-C7, T1-T13, L1-L6, S1, or V1..Vn when unnamed.
LEVEL_NAME = re.compile(r"C[1-7]|T(1[0-3]|[1-9])|L[1-6]|S1|V[1-9][0-9]{0,2}")
#: Bone thresholds below this count soft tissue (up to ~100 HU) as bone.
LOWEST_BONE_HU = 100.0
HIGHEST_HU = 40_000.0


def number(
    option: str,
    value,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
) -> float:
    """``value`` as a finite float within [lo, hi] (open ends where asked)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OptionError(option, value, "is not a number") from None
    value = f"{value:g}" if isinstance(value, float) else value
    unit = f" {unit}" if unit else ""
    if not math.isfinite(v):
        raise OptionError(option, value, "is not a finite number")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise OptionError(
            option,
            value,
            f"must be {'above' if lo_open else 'at least'} {lo:g}{unit}"
            + (f" and {'below' if hi_open else 'at most'} {hi:g}{unit}" if hi is not None else ""),
        )
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise OptionError(
            option,
            value,
            f"must be {'below' if hi_open else 'at most'} {hi:g}{unit}"
            + (f" and {'above' if lo_open else 'at least'} {lo:g}{unit}" if lo is not None else ""),
        )
    return v


def levels(option: str, value) -> tuple[str, ...] | None:
    """A comma-separated list (or sequence) of vertebra names, upper-cased."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(str(s).strip().upper() for s in items)
    if not names or any(not n for n in names):
        raise OptionError(option, _shown(value), "give vertebra names separated by commas, e.g. L1,L2")
    bad = [n for n in names if not LEVEL_NAME.fullmatch(n)]
    if bad:
        raise OptionError(
            option,
            _shown(value),
            f"{bad[0]} is not a vertebra name (C1-C7, T1-T13, L1-L6, S1, or V1, V2... for unnamed vertebrae)",
        )
    return tuple(dict.fromkeys(names))


def level(option: str, value) -> str | None:
    if value is None:
        return None
    names = levels(option, str(value))
    if len(names) != 1:
        raise OptionError(option, value, "give one vertebra, e.g. L1")
    return names[0]


def choice(option: str, value, allowed) -> str:
    if value not in allowed:
        raise OptionError(option, value, f"choose one of {', '.join(sorted(allowed))}")
    return value


def parsed(option: str, value, parse: Callable):
    """``parse(value)``, its one-line error reported against ``option``."""
    try:
        return parse(value)
    except OsteoprintError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise OptionError(option, value, problem) from None


def hu_thresholds(preset: str, low, high) -> None:
    """Bone thresholds: finite, above soft tissue, and low below high."""
    from ..segment import PRESETS

    choice("--preset", preset, PRESETS)
    p_lo, p_hi, _ = PRESETS[preset]
    lo = p_lo if low is None else number("--hu-min", low, LOWEST_BONE_HU, HIGHEST_HU, unit="HU")
    hi = p_hi if high is None else number("--hu-max", high, LOWEST_BONE_HU, HIGHEST_HU, unit="HU")
    if not lo < hi:
        if low is not None and high is not None:
            raise OptionError("--hu-min", f"{low:g}", f"is not below --hu-max {high:g}")
        if low is not None:
            raise OptionError(
                "--hu-min",
                f"{low:g}",
                f"is not below the '{preset}' preset's upper limit {p_hi:g} HU; give --hu-max too",
            )
        raise OptionError(
            "--hu-max", f"{high:g}", f"is not above the '{preset}' preset's lower limit {p_lo:g} HU; give --hu-min too"
        )


def _shown(value) -> str:
    return value if isinstance(value, str) else ",".join(str(v) for v in value)
