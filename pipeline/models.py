"""Vertebra models: the anatomical prints made from a segmentation (stages 3-4, pure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from .mesh import MeshQuality, check_mesh, mesh_vertebra, smallest_feature_mm
from .segment import VertebraSegmentation
from .volume import reorient


@dataclass(frozen=True)
class VertebraModel:
    """One vertebra, meshed and measured (mm, LPS)."""

    level: str
    label_value: int
    mesh: trimesh.Trimesh
    quality: MeshQuality
    smallest_feature_mm: float
    mask_volume_mm3: float
    cut_by_scan_edge: bool


def vertebra_models(
    segmentation: VertebraSegmentation,
    *,
    levels: list[str] | None = None,
    decimate: float = 0.5,
    taubin_iterations: int = 10,
    on_level=None,
) -> list[VertebraModel]:
    """Mesh and measure each labelled vertebra.

    Parameters
    ----------
    segmentation : VertebraSegmentation
    levels : list of str, optional
        Only these levels (default: all).
    decimate : float
        Fraction of triangles to remove where that keeps the surface within 0.1 mm
        and watertight.
    taubin_iterations : int
        Smoothing passes (see :func:`pipeline.mesh.mesh_mask`).
    on_level : callable, optional
        Called with each level name before it is meshed (progress display).
    """
    voxel_mm3 = float(abs(np.linalg.det(segmentation.affine[:3, :3])))
    # Mesh in the canonical orientation: marching cubes and decimation depend on the
    # array's axis order, and the same anatomy must give the same print whether the
    # scan was stored head-first, feet-first or mirrored.
    labels, affine, _ = reorient(segmentation.labels, segmentation.affine, "SPL")
    models = []
    for value, level in segmentation.levels.items():
        if levels is not None and level not in levels:
            continue
        if on_level is not None:
            on_level(level)
        mask = labels == value
        mesh = mesh_vertebra(mask, affine, decimate=decimate, taubin_iterations=taubin_iterations)
        models.append(
            VertebraModel(
                level=level,
                label_value=int(value),
                mesh=mesh,
                quality=check_mesh(mesh),
                smallest_feature_mm=smallest_feature_mm(mask, affine),
                mask_volume_mm3=float(mask.sum()) * voxel_mm3,
                cut_by_scan_edge=level in segmentation.cut_by_scan_edge,
            )
        )
    return models
