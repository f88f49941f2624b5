"""The vertebral body inside a vertebra's mask, and the first frame it gives.

The body is the thickest part of a vertebra: the voxels within ``r`` of the region
deeper than ``r`` (``r`` = :data:`CORE_FRACTION` of the largest inscribed radius;
a morphological opening by reconstruction) keep the body and drop the thin
pedicles, laminae and processes. The body's principal axis nearest the patient's
head-foot axis is its superior axis (a body is wider and deeper than tall); the
posterior axis points from the body's centroid to the centroid of the rest of the
vertebra; left = posterior x superior, so the frame is a proper rotation whatever
the scan array's orientation.

Screw planning (:mod:`pipeline.guide.anatomy`) and fracture grading
(:mod:`pipeline.defect.body`) both start here and refine the frame in their own
way (pedicles and posterior wall; endplates and posterior wall).
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage

from ..errors import DesignError
from ..frame import VertebraFrame
from ..volume import voxel_sizes
from .distance import depth_mm

#: Core threshold as a fraction of the vertebra's largest inscribed radius. 0.6
#: keeps the whole body of a wedge-fractured vertebra, whose thinnest part is
#: barely thicker than a pedicle is wide; the guide and fracture tests on the
#: phantom and the real series pass with it (0.7 was the guide's earlier value).
CORE_FRACTION = 0.6
#: Fewer voxels than this outside the (dilated) body: no posterior elements.
MIN_POSTERIOR_VOXELS = 20


@dataclass(frozen=True)
class BodyEstimate:
    """A vertebra's body and the frame its shape gives.

    Attributes
    ----------
    frame : VertebraFrame
        Origin at the body's centroid (LPS mm); axes left, posterior, superior.
    body : ndarray of bool
        The body, on the mask's grid.
    posterior_elements : bool
        Whether the mask had posterior elements to point the posterior axis at; if
        not, the patient's posterior direction (+y of LPS) was used.
    """

    frame: VertebraFrame
    body: np.ndarray
    posterior_elements: bool


def component_at(mask: np.ndarray, seed) -> np.ndarray:
    """The 26-connected piece of ``mask`` holding ``seed`` (else the largest piece)."""
    if not mask.any():
        raise DesignError("no vertebral body left in the label")
    comp = cc3d.connected_components(mask, connectivity=26)
    value = comp[tuple(int(s) for s in seed)]
    if value == 0:
        counts = np.bincount(comp.ravel())
        counts[0] = 0
        value = int(np.argmax(counts))
    return comp == value


def crude_body(mask: np.ndarray, spacing, core_fraction: float = CORE_FRACTION) -> np.ndarray:
    """The thick part of ``mask`` (the vertebral body), by opening by reconstruction.

    ``mask`` should be a crop with background all round: the array's border counts
    as outside, so a cut vertebra still has a finite depth.
    """
    mask = np.asarray(mask, bool)
    depth = depth_mm(mask, spacing, edge_is_outside=True)
    r = core_fraction * float(depth.max())
    seed = np.unravel_index(int(np.argmax(depth)), depth.shape)
    core = component_at(depth >= r, seed)
    return mask & (depth_mm(~core, spacing) <= r)


def lps_of(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """LPS mm ``(n, 3)`` of the voxels of ``mask`` on ``affine``'s grid."""
    idx = np.argwhere(mask).astype(float)
    return idx @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def orthonormal_frame(posterior_hint, superior) -> np.ndarray:
    """Axes (columns left, posterior, superior) with ``superior`` kept exactly and the
    posterior axis as close to ``posterior_hint`` as orthogonality allows."""
    z = np.asarray(superior, float)
    z = z / np.linalg.norm(z)
    y = np.asarray(posterior_hint, float)
    y = y - (y @ z) * z
    n = np.linalg.norm(y)
    if n < 1e-6:
        y = np.array([0.0, 1.0, 0.0]) - z[1] * z
        n = np.linalg.norm(y)
    y = y / n
    return np.column_stack([np.cross(y, z), y, z])


def body_frame(mask: np.ndarray, affine: np.ndarray, core_fraction: float = CORE_FRACTION) -> BodyEstimate:
    """The body of a vertebra's mask and the frame of its principal axes.

    Parameters
    ----------
    mask : ndarray of bool
        One vertebra, cropped with background all round.
    affine : ndarray (4, 4)
        Index of ``mask`` -> LPS mm.
    core_fraction : float
        See :data:`CORE_FRACTION`.

    Returns
    -------
    BodyEstimate
    """
    mask = np.asarray(mask, bool)
    body = crude_body(mask, voxel_sizes(affine), core_fraction)
    pts = lps_of(body, affine)
    centre = pts.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((pts - centre).T))
    z = vecs[:, int(np.argmax(np.abs(vecs[2])))]
    z = z if z[2] > 0 else -z
    rest = mask & ~ndimage.binary_dilation(body, iterations=2)
    posterior = int(rest.sum()) >= MIN_POSTERIOR_VOXELS
    back = lps_of(rest, affine).mean(axis=0) - centre if posterior else np.array([0.0, 1.0, 0.0])
    return BodyEstimate(VertebraFrame(centre, orthonormal_frame(back, z)), body, posterior)
