"""Files of the ``check-guide`` job: the input files' digests and the JSON report."""

from __future__ import annotations

import json
import os

from .atomic import write_bytes_atomic


def write_check_report(path: str | os.PathLike, report: dict) -> None:
    """Write a JSON-ready report atomically (indented; NaN refused)."""
    write_bytes_atomic(path, (json.dumps(report, indent=2, allow_nan=False) + "\n").encode())
