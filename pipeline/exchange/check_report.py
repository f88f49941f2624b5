"""Files of the ``check-guide`` job: the input files' digests and the JSON report."""

from __future__ import annotations

import hashlib
import json
import os

from .atomic import write_bytes_atomic


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_check_report(path: str | os.PathLike, report: dict) -> None:
    """Write a JSON-ready report atomically (indented; NaN refused)."""
    write_bytes_atomic(path, (json.dumps(report, indent=2, allow_nan=False) + "\n").encode())
