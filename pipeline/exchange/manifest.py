"""The JSON manifest that travels with the STL files.

A manifest is built as plain dicts by the stages' callers, validated against the
JSON Schema shipped in ``pipeline/schemas/manifest.schema.json`` and written
atomically. Commands that add prints to an existing output folder (scaffold, guide)
merge into the manifest already there instead of replacing it.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputError
from ..volume import CTVolume, axis_codes, voxel_sizes
from .atomic import write_bytes_atomic

SCHEMA_VERSION = "1.0"


@lru_cache(maxsize=1)
def manifest_schema() -> dict:
    """The manifest's JSON Schema (draft 2020-12)."""
    text = resources.files("pipeline").joinpath("schemas/manifest.schema.json").read_text()
    return json.loads(text)


def new_manifest(volume: CTVolume) -> dict:
    """An empty manifest describing ``volume``'s provenance (no patient identifiers)."""
    info = volume.info
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "osteoprint", "version": __version__},
        "units": "mm",
        "coordinate_system": "LPS",
        "input": {
            "series_hash": info.series_hash,
            "modality": info.modality,
            "source_format": info.source_format,
            "transfer_syntax": info.transfer_syntax,
            "n_files": int(info.n_files),
            "description": info.description,
            "shape": [int(n) for n in volume.shape],
            "spacing_mm": [round(float(s), 6) for s in voxel_sizes(volume.affine)],
            "orientation": axis_codes(volume.affine),
            "affine_lps": np.round(volume.affine, 6).tolist(),
            "warnings": list(info.warnings),
        },
        "parameters": {},
        "prints": [],
        "warnings": [],
    }


def merge_prints(manifest: dict, prints: list[dict]) -> dict:
    """Add ``prints`` to ``manifest``, replacing entries for the same file."""
    files = {p["file"] for p in prints}
    kept = [p for p in manifest["prints"] if p["file"] not in files]
    out = dict(manifest)
    out["prints"] = sorted(kept + list(prints), key=lambda p: (p["kind"], p["file"]))
    return out


def validate_manifest(manifest: dict) -> None:
    """Raise ``ValueError`` naming the first schema violation (a bug, not user error)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(manifest_schema())
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        raise ValueError(f"manifest invalid at {where}: {err.message}")


def manifest_bytes(manifest: dict) -> bytes:
    validate_manifest(manifest)
    return (json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()


def write_manifest(path: str | os.PathLike, manifest: dict) -> None:
    """Validate and write ``manifest`` atomically as pretty-printed JSON."""
    write_bytes_atomic(path, manifest_bytes(manifest))


def is_result_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a result of osteoprint's (a manifest it wrote)."""
    path = Path(folder) / "manifest.json"
    try:
        if not path.is_file() or path.stat().st_size > 64 * 1024 * 1024:
            return False
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("tool"), dict) and data["tool"].get("name") == "osteoprint"


def read_manifest(path: str | os.PathLike) -> dict:
    """Read and validate a manifest written by osteoprint."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    try:
        validate_manifest(manifest)
    except ValueError as exc:
        raise InputError(path, f"not an osteoprint manifest ({exc})") from None
    return manifest


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes, read a megabyte at a time (the manifest
    and the reports name files by content)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
