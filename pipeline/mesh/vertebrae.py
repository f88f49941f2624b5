"""Vertebra models: each labelled vertebra meshed and measured, the anatomical prints (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage

from ..parallel import map_processes
from ..segment import VertebraSegmentation, largest_piece
from ..volume import crop_affine, reorient
from .checks import MeshQuality, check_mesh
from .surface import mesh_vertebra, smallest_feature_mm


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
        Called with each level name as its model is finished (progress display).

    Vertebrae are meshed in parallel worker processes (see :mod:`pipeline.parallel`).
    """
    voxel_mm3 = float(abs(np.linalg.det(segmentation.affine[:3, :3])))
    # Mesh in the canonical orientation: marching cubes and decimation depend on the
    # array's axis order, and the same anatomy must give the same print whether the
    # scan was stored head-first, feet-first or mirrored.
    labels, affine, _ = reorient(segmentation.labels, segmentation.affine, "SPL")
    # The reoriented array is a strided view: copy just the labelled box before
    # find_objects, which is several times slower on a view than on a compact array.
    spans = [np.flatnonzero(labels.any(axis=tuple(j for j in range(3) if j != i))) for i in range(3)]
    if any(len(sp) == 0 for sp in spans):
        return []
    origin = [int(sp[0]) for sp in spans]
    labels = np.ascontiguousarray(labels[tuple(slice(int(sp[0]), int(sp[-1]) + 1) for sp in spans)])
    affine = crop_affine(affine, origin)
    boxes = ndimage.find_objects(labels)
    jobs = []
    for value, level in segmentation.levels.items():
        if levels is not None and level not in levels:
            continue
        box = boxes[value - 1] if value - 1 < len(boxes) else None
        if box is None:
            continue
        mask = labels[box] == value
        box_affine = crop_affine(affine, [s.start for s in box])
        cut = level in segmentation.cut_by_scan_edge
        jobs.append((level, int(value), mask, box_affine, decimate, taubin_iterations, voxel_mm3, cut))

    done = (lambda model: on_level(model.level)) if on_level is not None else None
    # Largest first, so that the sacrum does not run alone at the end.
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][2].size)
    built = map_processes(_model, [jobs[i] for i in order], on_result=done)
    models: list[VertebraModel] = [None] * len(jobs)  # type: ignore[list-item]
    for i, model in zip(order, built):
        models[i] = model
    return models


def _model(job) -> VertebraModel:
    """Mesh, check and measure one vertebra (runs in a worker process)."""
    level, value, mask, box_affine, decimate, taubin_iterations, voxel_mm3, cut = job
    mesh = mesh_vertebra(mask, box_affine, decimate=decimate, taubin_iterations=taubin_iterations)
    quality = check_mesh(mesh)
    if decimate > 0 and not quality.printable:
        # Decimation can, rarely, fold a triangle through a neighbour.
        mesh = mesh_vertebra(mask, box_affine, decimate=0.0, taubin_iterations=taubin_iterations)
        quality = check_mesh(mesh)
    if not quality.printable:
        # Smoothing can fold a sheet of bone one voxel thin (a cut endplate's rim)
        # through itself: such sheets are below the scan's resolution; without them
        # the surface is sound.
        opened = ndimage.binary_opening(mask, ndimage.generate_binary_structure(3, 1)) & mask
        if opened.any():
            mask = largest_piece(opened)
            mesh = mesh_vertebra(mask, box_affine, decimate=decimate, taubin_iterations=taubin_iterations)
            quality = check_mesh(mesh)
    return VertebraModel(
        level=level,
        label_value=value,
        # Without trimesh's cache (adjacency, normals...): ten times less to send
        # back from the worker; whatever is needed again is recomputed on demand.
        mesh=trimesh.Trimesh(mesh.vertices, mesh.faces, process=False),
        quality=quality,
        smallest_feature_mm=smallest_feature_mm(mask, box_affine),
        mask_volume_mm3=float(mask.sum()) * voxel_mm3,
        cut_by_scan_edge=cut,
    )
