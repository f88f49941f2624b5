"""Manifest records for prints: the measured figures a lab checks before printing."""

from __future__ import annotations

import numpy as np
import trimesh

from .mesh.checks import MeshQuality
from .printing import recommend_process


def print_record(
    mesh: trimesh.Trimesh,
    *,
    file: str,
    kind: str,
    label: str,
    sha256: str,
    quality: MeshQuality,
    purpose: str,
    smallest_feature_mm: float,
    smallest_pore_mm: float | None = None,
    extra: dict | None = None,
) -> dict:
    """Manifest entry for one exported print.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        The exported mesh, vertices in LPS mm.
    file : str
        Path of the STL relative to the manifest's folder.
    kind : str
        ``"anatomical_model"``, ``"scaffold"`` or ``"guide"``.
    label : str
        What the print is, e.g. ``"L1"`` or ``"L1 defect scaffold"``.
    sha256 : str
        SHA-256 of the STL bytes.
    quality : MeshQuality
        From :func:`pipeline.mesh.check_mesh`.
    purpose : str
        Intended use or material, the key of the process rules.
    smallest_feature_mm, smallest_pore_mm : float
        Measured, mm; decide which processes can print it.
    extra : dict, optional
        Kind-specific measured figures merged into the record.
    """
    lo, hi = np.asarray(mesh.bounds, dtype=float)
    record = {
        "file": file,
        "kind": kind,
        "label": label,
        "units": "mm",
        "coordinate_system": "LPS",
        "sha256": sha256,
        "triangles": int(len(mesh.faces)),
        "volume_mm3": round(float(mesh.volume), 3),
        "surface_area_mm2": round(float(mesh.area), 3),
        "bbox_mm": {"min": [round(float(v), 4) for v in lo], "max": [round(float(v), 4) for v in hi]},
        "watertight": bool(quality.watertight),
        "quality": quality.as_dict(),
        "smallest_feature_mm": round(float(smallest_feature_mm), 3),
        "purpose": purpose,
        "recommended_process": recommend_process(
            kind, purpose, smallest_feature_mm=smallest_feature_mm, smallest_pore_mm=smallest_pore_mm
        ),
    }
    if extra:
        record.update(extra)
    return record
