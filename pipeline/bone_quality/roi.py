"""The oval region of interest at mid-body height, as radiologists draw it.

The published thresholds for opportunistic screening (Pickhardt et al., Ann Intern
Med 2013;158:588-595) were derived from a manual oval ROI on the axial image at the
middle of L1, as large as the trabecular bone allows, away from the cortex and the
posterior venous plexus. This module draws that ROI automatically so the value
compared with those thresholds is measured the same way:

* the image is the scan's own axial slice nearest the body's centre (no
  reformatting; the canonical grid's axis 0 is head-foot);
* the *eligible* pixels are the body's, at least the cortex margin in-plane from
  its outline (2-D distance), outside the basivertebral zone, the fracture zone and
  sclerotic bone (the same rules as the volumetric compartment, see
  :mod:`.compartment`), and at least the endplate margin from either endplate;
* **size rule**: the ellipse's axes follow the vertebra's left-right and
  antero-posterior directions projected on the slice, its axis ratio is that of the
  eligible area's extents along them, its centre lies on the eligible area's
  left-right centre line (where along the antero-posterior line is searched in
  0.5 mm steps), and it is the largest such ellipse that contains eligible pixels
  only (a pixel is inside when its centre is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..defect.body import VertebralBody
from ..geometry.distance import depth_mm
from ..volume import index_to_lps, voxel_sizes
from .compartment import Compartment, TrabecularRule, basivertebral_zone

#: An ROI smaller than this is not reported, mm²: it would average too few pixels.
MIN_ROI_AREA_MM2 = 50.0


@dataclass(frozen=True)
class OvalROI:
    """An automated oval ROI on one axial slice (HU, mm, LPS).

    Attributes
    ----------
    mean_hu, median_hu, sd_hu : float
        Attenuation of the pixels inside, HU.
    pixel_count : int
    area_mm2 : float
        Pixel count times the pixel area, mm².
    centre_lps : ndarray (3,)
        Centre of the ellipse, LPS mm.
    semi_axes_mm : tuple of float
        Half-lengths along the vertebra's left-right and antero-posterior
        directions in the slice, mm.
    slice_z_mm : float
        Head-foot (LPS z) position of the slice's centre, mm.
    """

    mean_hu: float
    median_hu: float
    sd_hu: float
    pixel_count: int
    area_mm2: float
    centre_lps: np.ndarray
    semi_axes_mm: tuple
    slice_z_mm: float

    def to_dict(self) -> dict:
        return {
            "mean_hu": round(self.mean_hu, 1),
            "median_hu": round(self.median_hu, 1),
            "sd_hu": round(self.sd_hu, 1),
            "pixel_count": int(self.pixel_count),
            "area_mm2": round(self.area_mm2, 1),
            "centre_lps": [round(float(v), 2) for v in self.centre_lps],
            "semi_axes_mm": [round(float(v), 2) for v in self.semi_axes_mm],
            "slice_z_mm": round(self.slice_z_mm, 2),
        }


def oval_roi(
    body: VertebralBody, hu: np.ndarray, compartment: Compartment, rule: TrabecularRule = TrabecularRule()
) -> OvalROI | None:
    """The oval ROI of ``body`` on its mid-height axial slice (see the module docstring).

    Parameters
    ----------
    body : VertebralBody
        Body on a crop of the canonical ``SPL`` grid (axis 0 head-foot).
    hu : ndarray
        CT on the same crop, HU.
    compartment : Compartment
        The body's trabecular compartment (its frame coordinates, endplate
        distances, fracture zone and sclerotic voxels are reused).
    rule : TrabecularRule
        The margins the compartment was made with.

    Returns
    -------
    OvalROI or None
        None when no ellipse of at least :data:`MIN_ROI_AREA_MM2` fits.
    """
    spacing = voxel_sizes(body.affine)
    centre = np.linalg.solve(body.affine[:3, :3], body.frame.origin - body.affine[:3, 3])
    k = int(np.clip(np.rint(centre[0]), 0, body.mask.shape[0] - 1))
    section = body.mask[k]
    if not section.any():
        return None
    depth = depth_mm(section, spacing[1:], edge_is_outside=True) - 0.5 * max(spacing[1:])
    local = compartment.local[k]
    eligible = (
        section
        & (depth >= rule.cortex_margin_mm)
        & (compartment.endplate_distance[k] >= rule.endplate_margin_mm)
        & ~basivertebral_zone(body, local, rule)
        & ~compartment.sclerotic[k]
    )
    if compartment.fracture_zone is not None:
        eligible &= ~compartment.fracture_zone[k]
    pixel_mm2 = float(spacing[1] * spacing[2])
    if eligible.sum() * pixel_mm2 < MIN_ROI_AREA_MM2:
        return None
    # In-plane axes: the vertebra's left and posterior directions projected on the
    # slice, in (row mm, column mm) coordinates.
    step = body.affine[:3, 1:3]
    u = _in_plane(body.frame.axes[:, 0], step)
    v = np.array([-u[1], u[0]])
    if _in_plane(body.frame.axes[:, 1], step) @ v < 0:
        v = -v
    rows, cols = np.indices(section.shape, dtype=np.float64)
    coords = np.stack([rows * spacing[1], cols * spacing[2]], -1)
    pu, pv = coords @ u, coords @ v
    a0 = max(0.5 * float(np.ptp(pu[eligible])), spacing[1])
    b0 = max(0.5 * float(np.ptp(pv[eligible])), spacing[1])
    cu = float(pu[eligible].mean())
    best = (0.0, 0.0, 0.0)
    # The centre slides along the antero-posterior axis (the basivertebral zone
    # notches the eligible area from behind); the largest ellipse wins.
    for cv in np.arange(pv[eligible].min(), pv[eligible].max() + 1e-9, 0.5):
        r = np.hypot((pu - cu) / a0, (pv - cv) / b0)
        s = float(r[~eligible].min()) if (~eligible).any() else 1.0
        if s > best[0]:
            best = (s, cu, float(cv))
    s, cu, cv = best
    inside = np.hypot((pu - cu) / a0, (pv - cv) / b0) < s
    if inside.sum() * pixel_mm2 < MIN_ROI_AREA_MM2:
        return None
    values = np.asarray(hu[k], np.float64)[inside]
    rc = np.array([cu * u[0] + cv * v[0], cu * u[1] + cv * v[1]]) / np.asarray(spacing[1:])
    centre_lps = index_to_lps(body.affine, np.array([k, rc[0], rc[1]]))
    return OvalROI(
        mean_hu=float(values.mean()),
        median_hu=float(np.median(values)),
        sd_hu=float(values.std()),
        pixel_count=int(inside.sum()),
        area_mm2=float(inside.sum()) * pixel_mm2,
        centre_lps=centre_lps,
        semi_axes_mm=(s * a0, s * b0),
        slice_z_mm=float(centre_lps[2]),
    )


def _in_plane(direction: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Unit 2-vector, in (row mm, column mm) coordinates, of ``direction`` projected on the slice."""
    unit = step / np.linalg.norm(step, axis=0)
    w = unit.T @ direction
    n = np.linalg.norm(w)
    return w / n if n > 1e-9 else np.array([0.0, 1.0])
