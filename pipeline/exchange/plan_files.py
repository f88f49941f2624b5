"""Screw plans as JSON files (see docs/plan-format.md), validated against
``pipeline/schemas/plan.schema.json`` (draft 2020-12).

A bad plan never gets past :func:`read_plan`: the error names the file and, in one
line, the screw and the field that is wrong. Plans travel as their JSON documents
(plain dicts): :class:`pipeline.guide.plan.Plan` converts with ``Plan.from_dict``
and ``plan.as_dict()``, so this file-format layer needs nothing from the guide stage.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib import resources

import numpy as np

from ..errors import InputError
from .atomic import write_bytes_atomic


@lru_cache(maxsize=1)
def plan_schema() -> dict:
    """The plan's JSON Schema (draft 2020-12)."""
    return json.loads(resources.files("pipeline").joinpath("schemas/plan.schema.json").read_text())


def _where(error) -> str:
    path = list(error.absolute_path)
    if len(path) >= 2 and path[0] == "screws":
        rest = ".".join(str(p) for p in path[2:])
        return f"screw {int(path[1]) + 1}" + (f" field '{rest}'" if rest else "")
    return "/".join(str(p) for p in path) or "top level"


def plan_problems(data) -> list[str]:
    """Everything wrong with a plan document (schema and geometry), in words."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(plan_schema())
    problems = [
        f"{_where(e)}: {e.message}" for e in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        return problems
    seen = {}
    for i, s in enumerate(data["screws"], start=1):
        e, t = np.asarray(s["entry_lps"], float), np.asarray(s["target_lps"], float)
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(t))):
            problems.append(f"screw {i}: entry and target must be finite numbers")
        elif np.linalg.norm(t - e) < 1.0:
            problems.append(f"screw {i}: entry and target are less than 1 mm apart, the axis is undefined")
        key = s.get("id") or f"{s['level']}-{s['side']}"
        if key in seen:
            problems.append(f"screw {i}: id {key!r} repeats screw {seen[key]} (give each screw its own id)")
        seen.setdefault(key, i)
    return problems


def valid_plan(data, path=None) -> dict:
    """``data`` itself once it is a valid plan document; :class:`InputError` if not."""
    problems = plan_problems(data)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(path or "plan", f"invalid screw plan: {problems[0]}{more}")
    return data


def read_plan(path: str | os.PathLike) -> dict:
    """Read and validate a plan file; return its document (``Plan.from_dict`` takes it).

    Raises
    ------
    InputError
        Missing file, not JSON, or not a valid plan (message names the file, the
        screw and the field).
    """
    if not os.path.isfile(path):
        raise InputError(path, "no such file")
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a JSON file ({exc.__class__.__name__}: {exc})".replace("\n", " ")) from None
    return valid_plan(data, path)


def plan_json(data: dict) -> str:
    """A plan document (``plan.as_dict()``) as validated, pretty-printed JSON text."""
    problems = plan_problems(data)
    if problems:
        raise ValueError(f"refusing to write an invalid plan: {problems[0]}")
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def write_plan(path: str | os.PathLike, data: dict) -> str:
    """Write a plan document atomically; return the file's SHA-256 hex digest."""
    data = plan_json(data).encode("utf-8")
    write_bytes_atomic(path, data)
    return hashlib.sha256(data).hexdigest()
