"""Patient-specific drill guide for the screws of one vertebra: a base seated on the
posterior elements, sleeves along the planned trajectories, bores for the drill.

Construction (all in the vertebra's frame, whose +y is the placement direction:
the guide is put on and lifted off straight posteriorly):

* The base covers a band across the laminae between the two entry points, plus a
  disc around each entry. Seen along the placement direction the posterior bone
  is a height field; the base's roof follows it at the wanted thickness.
* The bone's *shadow* is everything anterior of bone or of its clearance offset
  (``bone ⊕ c``) along the placement direction. Subtracting it from the guide
  gives an underside that is the offset of the posterior surface and leaves no
  undercut by construction: no point of the guide has bone behind it. Every bone
  in the segmentation casts the shadow (neighbouring laminae too).
* Contact only where wanted: the offset is ``c`` (0.1-0.3 mm) under a few pads
  (each lamina, the spinous process, the rim of each sleeve) and ``c + relief``
  elsewhere, so the guide rests on separate, well-spread patches.
* Under the pads the bone's distance is the exact distance to the vertebra's
  surface mesh (:mod:`.bone`), not the grid's (good to only ~0.25 mm), so the
  offset ``c`` is what :func:`~.guide_checks.check_guide` measures against the same
  mesh. What remains is the marching cubes on the 0.4 mm grid cutting the corners
  where the offset surface has a crease (a sleeve's rim between the entry's bony
  ridges): on L1-L5 of the bundled scan the thinnest gap is 0.21-0.26 mm for
  c = 0.3 mm (0.265-0.27 mm with ``grid_mm=0.25``, at twice the time).
* Sleeves are manifold3d cylinders along each screw axis; bores (drill or K-wire
  diameter plus a sliding clearance) are subtracted through the whole guide.

Booleans are exact (manifold3d); the base and the shadow are marching-cubes
surfaces of fields sampled on a 0.4 mm grid.

The default clearance is 0.3 mm: a resin guide prints to about +-0.1 mm and the
segmented surface itself is only good to ~0.3 mm (90th percentile of its distance
to the phantom's exact surface), so 0.3 mm keeps the fit snug without pressing on
bone that the scan shows a little too small.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy import ndimage

from ..errors import DesignError
from .anatomy import VertebraAnatomy
from .bone import Bone, levels_near, segmentation_surfaces, union_closest
from .frames import SIDES, BoneField, LocalGrid, resample_mask
from .solids import cylinder, float32_mesh, grid_surface, to_manifold


@dataclass(frozen=True)
class GuideDesign:
    """Guide parameters (mm).

    Attributes
    ----------
    clearance_mm : float
        Gap between the guide's contact pads and the bone surface (0.1-0.3; see the
        module notes for the default).
    relief_mm : float
        Extra gap elsewhere, so contact happens only at the pads.
    base_thickness_mm : float
        Thickness of the base above the bone (>= 3-4).
    sleeve_length_mm : float
        Length of each sleeve along its axis above the entry (10-20).
    sleeve_wall_mm : float
        Radial wall of the sleeves (>= 2-3).
    drill_diameter_mm : float
        Drill or K-wire the sleeves guide (e.g. 2.5 mm drill, 2.0 mm K-wire).
    bore_clearance_mm : float
        Bore diameter minus drill diameter (0.1-0.3): sliding fit.
    pad_radius_mm : float
        Radius of the lamina and spinous contact pads.
    grid_mm : float
        Sampling of the base and the bone's shadow.
    """

    clearance_mm: float = 0.3
    relief_mm: float = 1.0
    base_thickness_mm: float = 4.0
    sleeve_length_mm: float = 15.0
    sleeve_wall_mm: float = 3.0
    drill_diameter_mm: float = 2.5
    bore_clearance_mm: float = 0.2
    pad_radius_mm: float = 3.0
    grid_mm: float = 0.4

    @property
    def bore_diameter_mm(self) -> float:
        return self.drill_diameter_mm + self.bore_clearance_mm

    @property
    def sleeve_outer_diameter_mm(self) -> float:
        return self.bore_diameter_mm + 2 * self.sleeve_wall_mm

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["bore_diameter_mm"] = self.bore_diameter_mm
        d["sleeve_outer_diameter_mm"] = self.sleeve_outer_diameter_mm
        return d


@dataclass(frozen=True)
class Sleeve:
    """One sleeve: its axis runs from ``top`` to ``entry`` (LPS mm)."""

    screw_id: str
    entry: np.ndarray
    direction: np.ndarray  # into the bone
    top: np.ndarray
    bore_diameter_mm: float
    outer_diameter_mm: float
    length_mm: float


@dataclass
class Guide:
    """A drill guide and what it was built from.

    Attributes
    ----------
    mesh : trimesh.Trimesh
        Watertight guide in LPS mm.
    level : str
    placement_direction : ndarray (3,)
        Unit LPS vector along which the guide is lifted off (posterior).
    sleeves : list of Sleeve
    pads : list of ndarray
        LPS centres of the designed contact pads (on the bone surface).
    design : GuideDesign
    bone : Bone
        Signed distance of all bone around the guide (mm, negative inside): the
        guide's grid, exact against the surface meshes near the surface.
    warnings : list of str
    quality : MeshQuality
        :func:`pipeline.mesh.check_mesh` of ``mesh`` (as the STL file holds it).
    """

    mesh: trimesh.Trimesh
    level: str
    placement_direction: np.ndarray
    sleeves: list
    pads: list
    design: GuideDesign
    bone: Bone = None
    warnings: list = field(default_factory=list)
    quality: object = None


def _grid_box(grid: LocalGrid):
    """LPS bounding box of a local grid's corners."""
    ends = [[0, n - 1] for n in grid.shape]
    corners = np.array(np.meshgrid(*ends, indexing="ij")).reshape(3, -1).T
    lps = grid.index_to_lps(corners)
    return lps.min(axis=0), lps.max(axis=0)


def _exact_under(
    bone: Bone, c_eff: np.ndarray, columns: np.ndarray, y_from: np.ndarray, band: float = 0.8
) -> np.ndarray:
    """The grid's signed distance with exact values where the contact surface is made.

    In the (x, z) ``columns`` every grid point from ``y_from`` (local mm, per column:
    the deepest the base can reach) posteriorly whose distance is within ``band`` of
    the column's offset ``c_eff`` gets the exact distance to the surface meshes, so
    every marching-cubes cell that can hold the contact surface interpolates exact
    values.
    """
    sdf = bone.coarse.sdf.copy()
    if not bone.surfaces:
        return sdf
    grid = bone.coarse.grid
    ys = grid.axes()[1]
    sel = columns[:, None, :] & (ys[None, :, None] >= y_from[:, None, :]) & (np.abs(c_eff[:, None, :] - sdf) < band)
    idx = np.argwhere(sel)
    if len(idx):
        sdf[tuple(idx.T)] = union_closest(bone.surfaces, grid.index_to_lps(idx.astype(float)))[1]
    return sdf


def _disc(shape2, centre_idx, radius_vox):
    ii, kk = np.meshgrid(np.arange(shape2[0]), np.arange(shape2[1]), indexing="ij")
    return (ii - centre_idx[0]) ** 2 + (kk - centre_idx[1]) ** 2 <= radius_vox**2


def build_guide(
    screws: list,
    anatomy: VertebraAnatomy,
    segmentation,
    design: GuideDesign = GuideDesign(),
    *,
    surfaces: dict | None = None,
) -> Guide:
    """Build the drill guide for the screws of one vertebra.

    Parameters
    ----------
    screws : list of Screw
        The vertebra's screws (one or two), LPS mm.
    anatomy : VertebraAnatomy
        The vertebra (its frame gives the placement direction).
    segmentation : VertebraSegmentation
        Every labelled bone casts its shadow; the guide touches only this vertebra.
    design : GuideDesign
    surfaces : dict, optional
        ``{level: SurfaceDistance}`` cache of vertebra surface meshes; levels near
        the guide that are missing are meshed and added.

    Returns
    -------
    Guide

    Raises
    ------
    DesignError
        When the parts do not make one closed solid.
    """
    if not screws:
        raise DesignError(f"no screws planned for {anatomy.level}: no guide")
    frame = anatomy.frame
    h = design.grid_mm
    R_out = design.sleeve_outer_diameter_mm / 2
    L_s = design.sleeve_length_mm
    entries = np.array([s.entry for s in screws])
    tops = np.array([s.entry - L_s * s.direction for s in screws])
    le, lt = frame.to_local(entries), frame.to_local(tops)
    x_lo = min(le[:, 0].min(), lt[:, 0].min()) - R_out - 4.0
    x_hi = max(le[:, 0].max(), lt[:, 0].max()) + R_out + 4.0
    if len(screws) == 1:  # reach across to the spinous process for a third support
        x_lo, x_hi = min(x_lo, -6.0), max(x_hi, 6.0)
    z_lo = min(le[:, 2].min(), lt[:, 2].min()) - 16.0
    z_hi = max(le[:, 2].max(), lt[:, 2].max()) + R_out + 3.0
    y_lo = le[:, 1].min() - 8.0
    # Room for the roof over the most posterior bone (the spinous tip) and a margin
    # in which the bone field is still exact when the guide is moved for checks.
    y_hi = (
        max(
            lt[:, 1].max() + R_out,
            anatomy.field.grid.lo[1]
            + h * anatomy.field.grid.shape[1]
            + design.base_thickness_mm
            + design.relief_mm
            + design.clearance_mm,
        )
        + 8.0
    )
    grid = LocalGrid.covering(frame, (x_lo, y_lo, z_lo), (x_hi, y_hi, z_hi), h)
    own = resample_mask(segmentation.mask(anatomy.level), segmentation.affine, grid)
    others = resample_mask((segmentation.labels > 0) & ~segmentation.mask(anatomy.level), segmentation.affine, grid)
    field = BoneField.from_mask(grid, own | others)
    lo_lps, hi_lps = _grid_box(grid)
    near = levels_near(segmentation, lo_lps, hi_lps)
    surfaces = {} if surfaces is None else surfaces
    surfaces.update(segmentation_surfaces(segmentation, [lv for lv in near if lv not in surfaces]))
    bone = Bone(field, [surfaces[lv] for lv in near])
    xs, ys, zs = grid.axes()
    # Height field along +y: the most posterior bone of each (x, z) column.
    any_bone = (own | others).any(axis=1)
    top_idx = np.where(any_bone, grid.shape[1] - 1 - np.argmax((own | others)[:, ::-1, :], axis=1), -1)
    top_y = np.where(any_bone, ys[np.clip(top_idx, 0, None)], -np.inf)
    top_own = np.zeros_like(any_bone)
    ii, kk = np.nonzero(any_bone)
    top_own[ii, kk] = own[ii, top_idx[ii, kk], kk]
    # Footprint: band across the laminae between the entries, discs around entries.
    X, Z = np.meshgrid(xs, zs, indexing="ij")
    ze = le[:, 2]
    if len(screws) > 1:
        band = (X >= le[:, 0].min()) & (X <= le[:, 0].max())
    else:
        band = (X >= x_lo) & (X <= x_hi)
    band &= (Z >= ze.min() - 12.0) & (Z <= ze.max() + 3.0)
    pads_mask = np.zeros_like(band)
    sleeve_cols = np.zeros_like(band)
    for e in le:
        disc = (X - e[0]) ** 2 + (Z - e[2]) ** 2 <= (R_out + 2.0) ** 2
        band |= disc
        sleeve_cols |= (X - e[0]) ** 2 + (Z - e[2]) ** 2 <= (R_out + 0.5) ** 2
    pads = []
    # Lamina pads (one per side with a screw or both) and a spinous pad: columns
    # whose most posterior bone is this vertebra, in the middle of their region.
    regions = []
    for side, s in SIDES.items():
        xe = [e[0] for e, sc in zip(le, screws) if sc.side == side]
        reach = abs(xe[0]) * 0.6 if xe else 10.0
        regions.append((s * X >= 3.0) & (s * X <= max(reach, 5.0)) & (Z >= ze.min() - 12.0) & (Z <= ze.min() - 2.0))
    regions.append((np.abs(X) <= 2.5) & (Z >= ze.min() - 12.0) & (Z <= ze.max() + 3.0))
    for reg in regions:
        cand = reg & band & top_own
        if cand.sum() < 4:
            continue
        ci, ck = np.nonzero(cand)
        if reg is regions[-1]:
            j = int(np.argmax(top_y[ci, ck]))  # the spinous ridge
        else:
            c = np.array([ci.mean(), ck.mean()])
            j = int(np.argmin((ci - c[0]) ** 2 + (ck - c[1]) ** 2))
        centre = (ci[j], ck[j])
        disc = _disc(band.shape, centre, design.pad_radius_mm / h) & top_own
        pads_mask |= disc
        pads.append(grid.index_to_lps((centre[0], top_idx[centre], centre[1])))
    contact_cols = pads_mask | sleeve_cols
    c_eff = np.where(contact_cols, design.clearance_mm, design.clearance_mm + design.relief_mm)
    # Shadow of the offset bone along -y (anterior): a reverse running max along y.
    deepest = np.where(any_bone, top_y - 3.0, np.inf)
    exact = _exact_under(bone, c_eff, ndimage.binary_dilation(contact_cols, iterations=2), deepest)
    offset = c_eff[:, None, :] - exact
    shadow = np.maximum.accumulate(offset[:, ::-1, :], axis=1)[:, ::-1, :]
    # Base: from inside the shadow (it is carved off) up to a roof at the wanted
    # thickness over the local height field.
    H = np.where(any_bone, top_y + c_eff, -np.inf)
    rad = int(np.ceil(3.0 / h))
    foot = _disc((2 * rad + 1, 2 * rad + 1), (rad, rad), rad)
    Hmax = ndimage.maximum_filter(np.where(np.isfinite(H), H, -1e6), footprint=foot, mode="nearest")
    roof = Hmax + design.base_thickness_mm + design.relief_mm
    floor = np.where(np.isfinite(H), H - 2.0, roof - design.base_thickness_mm - design.relief_mm)
    Y = ys[None, :, None]
    base = band[:, None, :] & (Y >= floor[:, None, :]) & (Y <= roof[:, None, :])
    if not base.any():
        raise DesignError(f"{anatomy.level}: no posterior bone under the guide's footprint")
    base_f = ndimage.gaussian_filter(base.astype(np.float32), 0.7)
    solid = to_manifold(grid_surface(base_f, 0.5, grid))
    sleeves = []
    for s in screws:
        a = s.entry + 3.0 * s.direction
        top = s.entry - L_s * s.direction
        solid = solid + cylinder(a, top, R_out)
        sleeves.append(
            Sleeve(s.id, s.entry, s.direction, top, design.bore_diameter_mm, design.sleeve_outer_diameter_mm, L_s)
        )
    solid = solid - to_manifold(grid_surface(shadow, 0.0, grid))
    for s in screws:
        solid = solid - cylinder(
            s.entry + 8.0 * s.direction, s.entry - (L_s + 5.0) * s.direction, design.bore_diameter_mm / 2
        )
    parts = solid.decompose()
    warnings = []
    if len(parts) > 1:
        vols = [p.volume() for p in parts]
        keep = int(np.argmax(vols))
        lost = sum(vols) - vols[keep]
        if lost >= 1.0:  # specks the booleans leave between the cuts are not worth a word
            warnings.append(f"{len(parts) - 1} loose piece(s) of {lost:.1f} mm³ dropped")
        solid = parts[keep]
    mesh, quality = float32_mesh(solid)
    return Guide(mesh, anatomy.level, frame.axes[:, 1].copy(), sleeves, pads, design, bone, warnings, quality)
