"""Vertebra models: the anatomical prints made from a segmentation (stages 3-4, pure)."""

from __future__ import annotations

from dataclasses import dataclass

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import trimesh
from scipy import ndimage

from .mesh import MeshQuality, check_mesh, mesh_vertebra, smallest_feature_mm
from .segment import VertebraSegmentation
from .volume import crop_affine, reorient


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
    boxes = ndimage.find_objects(labels)
    jobs = []
    for value, level in segmentation.levels.items():
        if levels is not None and level not in levels:
            continue
        box = boxes[value - 1] if value - 1 < len(boxes) else None
        if box is None:
            continue
        mask = labels[box] == value
        jobs.append((level, int(value), mask, crop_affine(affine, [s.start for s in box])))

    def one(job):
        level, value, mask, box_affine = job
        if on_level is not None:
            on_level(level)
        mesh = mesh_vertebra(mask, box_affine, decimate=decimate, taubin_iterations=taubin_iterations)
        quality = check_mesh(mesh)
        if decimate > 0 and not quality.printable:
            # Decimation can, rarely, fold a triangle through a neighbour; the full
            # mesh never does.
            mesh = mesh_vertebra(mask, box_affine, decimate=0.0, taubin_iterations=taubin_iterations)
            quality = check_mesh(mesh)
        return VertebraModel(
            level=level,
            label_value=value,
            mesh=mesh,
            quality=quality,
            smallest_feature_mm=smallest_feature_mm(mask, box_affine),
            mask_volume_mm3=float(mask.sum()) * voxel_mm3,
            cut_by_scan_edge=level in segmentation.cut_by_scan_edge,
        )

    # Vertebrae are independent; numpy, marching cubes and the decimator release the
    # GIL for most of their work, so two threads use both cores of a lab PC.
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1, 4))) as pool:
        return list(pool.map(one, jobs))
