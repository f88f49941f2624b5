"""What a finished command tells the user: short lines for people (standard error)
and the ``--json`` summary for scripts (standard output)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def print_lines(manifest: dict, out: Path, progress, kind: str | None = None) -> None:
    """One line per print (of ``kind``, or all), the bone-quality lines and where the
    report is."""
    for p in manifest["prints"]:
        if kind is not None and p["kind"] != kind:
            continue
        top = p["recommended_process"][0]
        best = (
            f"print by {top['category'].replace('_', ' ')}"
            if top["score"] > 0
            else "no process can print it as designed (see the manifest's reasons)"
        )
        progress.note(
            f"{p['file']}: {p['triangles']} triangles, {p['volume_mm3'] / 1000:.2f} cm³, "
            f"{'watertight' if p['watertight'] else 'NOT watertight'}; {best}"
        )
    from .bone_quality.report import summary_lines

    for line in summary_lines(manifest):
        progress.note(line)
    outputs = manifest.get("outputs") or {}
    if outputs.get("report"):
        progress.note(f"report: {out / outputs['report']}")
    progress.note(f"manifest: {out / 'manifest.json'}")


def job_summary(command: str, manifest: dict, out: Path) -> dict:
    """The ``--json`` summary of a job: output folder, prints, outputs, warnings (no identifiers)."""
    return {
        "status": "ok",
        "command": command,
        "output": str(out),
        "series_hash": manifest["input"]["series_hash"],
        "prints": [
            {
                "file": p["file"],
                "kind": p["kind"],
                "label": p["label"],
                "sha256": p["sha256"],
                "triangles": p["triangles"],
                "volume_mm3": p["volume_mm3"],
                "watertight": p["watertight"],
                "recommended_process": p["recommended_process"][0]["category"]
                if p["recommended_process"][0]["score"] > 0
                else None,
                "dicom": (p.get("dicom") or {}).get("file"),
            }
            for p in manifest["prints"]
        ],
        "outputs": {"manifest": "manifest.json", **(manifest.get("outputs") or {})},
        "warnings": list(manifest["input"].get("warnings", [])) + list(manifest.get("warnings", [])),
    }


def emit_json(summary: dict) -> None:
    """Write a summary to standard output as one JSON document."""
    sys.stdout.write(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def print_checks(report: dict) -> None:
    """The check-guide table on standard output."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="guide and plan checks", show_lines=False)
    for col in ("check", "subject", "value", "threshold", "result", "source"):
        table.add_column(col)
    for group in ("plan_checks", "guide_checks"):
        for c in flatten_checks(report.get(group)):
            value = c.get("value")
            shown = f"{value:.3g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
            unit = c.get("unit") or ""
            table.add_row(
                str(c.get("name", "")),
                str(c.get("subject", "")),
                f"{shown} {unit}".strip(),
                f"{c.get('comparison', '')} {c.get('threshold', '')}".strip(),
                "pass" if c.get("passed") else "FAIL",
                str(c.get("source", ""))[:48],
            )
    Console().print(table)
    print("all checks passed" if report["passed"] else f"{len(report.get('failed', []))} check(s) failed")


def flatten_checks(block):
    """Checks as a flat list, whatever nesting (per screw, per pair, per sleeve) the report uses."""
    if block is None:
        return []
    if isinstance(block, dict):
        if "name" in block and "passed" in block:
            return [block]
        out = []
        for value in block.values():
            out.extend(flatten_checks(value))
        return out
    if isinstance(block, list):
        out = []
        for value in block:
            out.extend(flatten_checks(value))
        return out
    return []
