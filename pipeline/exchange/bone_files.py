"""``bone.json``: the bone-quality record of a scan as a file of its own.

The document is the manifest's ``bone_quality`` block plus its format, version and
the scan's short hash, validated against ``#/$defs/bone_document`` of
``pipeline/schemas/manifest.schema.json``. It holds no patient identifiers.
"""

from __future__ import annotations

import json

from .manifest import manifest_schema

FORMAT = "osteoprint-bone-quality"
VERSION = 1


def bone_document(record: dict, series_hash: str) -> dict:
    """The ``bone.json`` document for a bone-quality record (``BoneQuality.to_dict()``)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "series_hash": series_hash,
        **{k: v for k, v in record.items() if k != "file"},
    }


def validate_bone_document(document: dict) -> None:
    """Raise ``ValueError`` naming the first schema violation (a bug, not user error)."""
    import jsonschema

    schema = manifest_schema()
    validator = jsonschema.Draft202012Validator({"$ref": "#/$defs/bone_document", "$defs": schema["$defs"]})
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top)"
        raise ValueError(f"bone.json invalid at {where}: {errors[0].message}")


def bone_json_bytes(record: dict, series_hash: str) -> bytes:
    """Validated, pretty-printed ``bone.json`` content."""
    document = bone_document(record, series_hash)
    validate_bone_document(document)
    return (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()
