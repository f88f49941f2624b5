"""The trabecular compartment of one vertebral body: where its bone density is read.

Opportunistic CT densitometry reads the attenuation of the *trabecular* (cancellous)
bone of the body only. Everything else in a vertebra label would bias it: the
cortex and the endplates are compact bone (hundreds of HU more), the posterior
elements are mostly cortex, the basivertebral vein is a dark channel, a fracture
brings impacted (denser) trabeculae and a bone island is compact bone.

The compartment of a body isolated by :func:`pipeline.defect.body.find_body`
(posterior elements already cut off at the posterior wall) is every body voxel

* at least ``cortex_margin_mm`` from the outside of the label (3-D distance): the
  cortex, its partial volume and the scanner's blur stay out;
* at least ``endplate_margin_mm`` from the superior and inferior endplates, measured
  along the body's own axis (per 1-voxel column of the body's frame): the endplates
  and their subchondral bone are thicker and denser than the side walls, and
  through-plane blur is the coarsest on an axial series;
* outside the *basivertebral zone*: within ``vein_half_width_mm`` of the
  mid-sagittal plane and in the posterior ``vein_depth_fraction`` of the body depth,
  where the basivertebral vein enters through the posterior wall and runs forward
  (a geometric exclusion: in osteoporotic bone the vein's blood is not darker than
  the marrow, so its attenuation cannot find it);
* farther than ``defect_margin_mm`` from a fracture's defect region
  (:mod:`pipeline.defect`), which is the lost part of a collapsed body, so the
  impacted bone beneath the collapsed endplate is left out too;
* outside *sclerotic* bone: where the CT, smoothed over ``sclerotic_sigma_mm``, is
  above the smaller of ``sclerotic_hu`` and the candidate compartment's median plus
  ``sclerotic_excess_hu`` (bone islands, the condensed band under a fracture,
  endplate sclerosis), plus ``sclerotic_margin_mm`` around it.

All arrays are crops of the canonical (``SPL``) grid of :mod:`pipeline.defect.body`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..defect.body import VertebralBody
from ..geometry.distance import depth_mm, within_mm
from ..volume import voxel_sizes


@dataclass(frozen=True)
class TrabecularRule:
    """Margins and limits that define the trabecular compartment (mm, HU).

    Attributes
    ----------
    cortex_margin_mm : float
        Distance kept from the outside of the body label, mm.
    endplate_margin_mm : float
        Distance kept from either endplate along the body axis, mm.
    vein_half_width_mm : float
        Half-width of the basivertebral zone about the mid-sagittal plane, mm.
    vein_depth_fraction : float
        Depth of the basivertebral zone from the posterior wall, fraction of the
        body's antero-posterior depth.
    defect_margin_mm : float
        Distance kept from a fracture's defect region, mm.
    sclerotic_hu : float
        Smoothed attenuation above which bone is sclerotic whatever the rest, HU.
    sclerotic_excess_hu : float
        Smoothed attenuation this far above the compartment's median is sclerotic, HU.
    sclerotic_sigma_mm : float
        Gaussian smoothing before the sclerotic test, mm.
    sclerotic_margin_mm : float
        Distance kept from sclerotic bone, mm.
    """

    cortex_margin_mm: float = 3.0
    endplate_margin_mm: float = 5.0
    vein_half_width_mm: float = 6.0
    vein_depth_fraction: float = 0.35
    defect_margin_mm: float = 10.0
    sclerotic_hu: float = 500.0
    sclerotic_excess_hu: float = 150.0
    sclerotic_sigma_mm: float = 1.0
    sclerotic_margin_mm: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Compartment:
    """The trabecular compartment of one body on the body's crop grid.

    Attributes
    ----------
    mask : ndarray of bool
        Voxels read (crop of the canonical grid, see ``body.start``).
    candidate : ndarray of bool
        Voxels inside every margin before the sclerotic test.
    sclerotic : ndarray of bool
        Voxels excluded as sclerotic bone or within its margin.
    local : ndarray, shape (n0, n1, n2, 3)
        Each crop voxel's position in the body's frame, mm (x left, y posterior,
        z superior).
    endplate_distance : ndarray of float32
        Distance along the body axis to the nearer endplate, mm (``inf`` outside
        the body).
    fracture_zone : ndarray of bool or None
        Voxels within the fracture margin of a defect region (None without one).
    excluded : dict
        Body voxels left out by each rule (a voxel counts under the first rule
        that excludes it, in the order of the module docstring).
    sclerotic_threshold_hu : float
        The smoothed-HU threshold used.
    """

    mask: np.ndarray
    candidate: np.ndarray
    sclerotic: np.ndarray
    local: np.ndarray
    endplate_distance: np.ndarray
    fracture_zone: np.ndarray | None
    excluded: dict
    sclerotic_threshold_hu: float


def body_local(body: VertebralBody) -> np.ndarray:
    """Position of every voxel of the body's crop in the body's frame, mm, shape (..., 3)."""
    idx = np.indices(body.mask.shape, dtype=np.float64).reshape(3, -1).T
    lps = idx @ body.affine[:3, :3].T + body.affine[:3, 3]
    return body.frame.to_local(lps).reshape(body.mask.shape + (3,))


def endplate_distance(mask: np.ndarray, local: np.ndarray, cell_mm: float) -> np.ndarray:
    """Distance (mm) along the body axis from each voxel of ``mask`` to the nearer endplate.

    The body is cut into columns of ``cell_mm`` square along its own axis; in each
    column the endplates are the highest and lowest voxel (the collapsed surface of
    a fractured body counts as its endplate). ``inf`` outside ``mask``.
    """
    out = np.full(mask.shape, np.inf, dtype=np.float32)
    q = local[mask]
    if q.size == 0:
        return out
    cells = np.floor(q[:, :2] / cell_mm).astype(np.int64)
    _, column = np.unique(cells, axis=0, return_inverse=True)
    column = column.ravel()
    n = int(column.max()) + 1
    top = np.full(n, -np.inf)
    bottom = np.full(n, np.inf)
    np.maximum.at(top, column, q[:, 2])
    np.minimum.at(bottom, column, q[:, 2])
    out[mask] = np.minimum(top[column] - q[:, 2], q[:, 2] - bottom[column])
    return out


def basivertebral_zone(body: VertebralBody, local: np.ndarray, rule: TrabecularRule) -> np.ndarray:
    """Posterior-central voxels where the basivertebral vein runs (see the module docstring)."""
    back = body.posterior_y - rule.vein_depth_fraction * body.depth_mm
    return (np.abs(local[..., 0]) <= rule.vein_half_width_mm) & (local[..., 1] >= back)


def trabecular_compartment(
    body: VertebralBody, hu: np.ndarray, defect: np.ndarray | None = None, rule: TrabecularRule = TrabecularRule()
) -> Compartment:
    """The voxels of ``body`` whose attenuation is the trabecular bone's.

    Parameters
    ----------
    body : VertebralBody
        From :func:`pipeline.defect.body.find_body` (mask, frame and walls on a
        crop of the canonical grid).
    hu : ndarray
        The CT on the same crop, HU.
    defect : ndarray of bool, optional
        A fracture's defect region on the same crop.
    rule : TrabecularRule
        Margins and limits (mm, HU).

    Returns
    -------
    Compartment
    """
    spacing = voxel_sizes(body.affine)
    inside = body.mask
    local = body_local(body)
    # A boundary voxel's centre lies half a voxel inside the surface, one voxel from
    # the nearest outside centre: take off half the coarsest step.
    depth = depth_mm(inside, spacing, edge_is_outside=True) - 0.5 * max(spacing)
    plates = endplate_distance(inside, local, max(spacing))
    rules = [
        ("cortex", depth < rule.cortex_margin_mm),
        ("endplates", plates < rule.endplate_margin_mm),
        ("basivertebral_vein", basivertebral_zone(body, local, rule)),
    ]
    near = None
    if defect is not None and defect.any():
        near = depth_mm(~defect, spacing) < rule.defect_margin_mm
        rules.append(("fracture", near))
    candidate = inside.copy()
    excluded = {}
    for name, out in rules:
        drop = candidate & out
        excluded[name] = int(drop.sum())
        candidate &= ~out
    threshold = float(rule.sclerotic_hu)
    sclerotic = np.zeros_like(inside)
    if candidate.any():
        smooth = ndimage.gaussian_filter(np.asarray(hu, np.float32), rule.sclerotic_sigma_mm / np.asarray(spacing))
        threshold = min(rule.sclerotic_hu, float(np.median(hu[candidate])) + rule.sclerotic_excess_hu)
        dense = candidate & (smooth > threshold)
        if dense.any():
            sclerotic = inside & within_mm(dense, spacing, rule.sclerotic_margin_mm)
    mask = candidate & ~sclerotic
    excluded["sclerotic"] = int((candidate & sclerotic).sum())
    return Compartment(
        mask=mask,
        candidate=candidate,
        sclerotic=sclerotic,
        local=local,
        endplate_distance=plates,
        fracture_zone=near,
        excluded=excluded,
        sclerotic_threshold_hu=threshold,
    )
