"""The spine's solid bone at the scan's resolution, before it is split into vertebrae.

Thresholded bone plus the faint bone a routine scan shows (thin arches, osteoporotic
body rims), the marrow the spine's layout vouches for, cavities closed, the blurred
fringe peeled to the half-bone edge, and discs cut out again where their endplates'
fringes closed over them. Also the slice-by-slice marrow fill used per vertebra.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from .bone import fill_3d, partial_volume_edge
from .column import BoxCoordinates
from .discs import RING_HU
from .distance import depth_mm, within_mm
from .endplates import disc_sections
from .spine import SpineLayout

#: Bone this far left or right of the canal is never vertebra (ribs, ilium).
FAR_LATERAL_MM = 62.0
#: A hole within this distance (mm) of the canal's centre is the canal.
CANAL_RADIUS_MM = 5.0
#: Body marrow: brighter than fat and CSF (HU), in front of the canal and within
#: the widest body's half-width, mm.
MARROW_HU = 30.0
BODY_V = (8.0, 70.0)
BODY_U = 35.0
#: Necks narrower than twice this join a body to something else (a vessel, an
#: organ) in a cross-section, mm.
NECK_MM = 5.0
#: Cortex is at least this much brighter than the marrow it rings, HU.
WALL_ABOVE_MARROW_HU = 80.0
#: Share of the middle of a body's cross-section that must be ringed by cortex for
#: the section's own ring to outline the body.
RINGED_SECTION = 0.6
#: Faint bone considered for the edge: arches (behind ``v`` = ARCH_V mm) from
#: ARCH_HU, body rims from RIM_HU.
ARCH_HU = 100.0
RIM_HU = 150.0
ARCH_V = 6.0
#: In front of the canal, faint rim bone lies within this distance of a body's marrow, mm.
ENVELOPE_MM = 4.0
#: Bright tissue this deep inside a soft blob (up to BLOOD_MAX_HU) is blood with
#: contrast or an organ, not bone, mm.
THICK_SOFT_MM = 5.0
BLOOD_MAX_HU = 600.0
#: Within a disc, bone is at least this bright, HU; where a column shows no
#: endplate, the disc is its fitted slab and a blurred fringe DISC_FRINGE_MM beyond.
DISC_BONE_HU = 400.0
DISC_FRINGE_MM = 0.75


def spine_bone(
    hu: np.ndarray,
    spacing,
    frame: BoxCoordinates,
    layout: SpineLayout,
    low: float,
    high: float,
    discs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solid bone of the spine in ``hu`` (a box of the canonical grid; ``frame`` gives
    its voxels' spine coordinates), as ``(mask, index, kvu)``: the mask, its voxels
    (``np.argwhere`` order) and their spine coordinates.

    Thresholded bone plus fainter candidates (thin arches from ``ARCH_HU``, faint
    body rims from ``RIM_HU``: at 2-3 mm slices a lamina's blurred peak is 200-400
    HU and an osteoporotic cortex 150-250 HU), each edge voxel kept when it is at
    least half bone (:func:`partial_volume_edge`), plus the marrow the layout
    vouches for (:func:`body_interior_sections`), with cavities closed in 3-D only:
    filling holes slice by slice would fill the lumen of a calcified aorta and
    every disc an axial slice cuts obliquely (its endplate rim rings it). In front
    of the canal, bone must lie within ``ENVELOPE_MM`` of a body's marrow: a
    contrast-filled aorta against the body is as bright as bone. ``discs``
    (straightened, :func:`disc_columns`) marks each disc's extent column by column.
    """
    spacing = np.asarray(spacing, dtype=float)
    sections, prism = body_interior_sections(layout)
    marrow = _body_interior(hu, frame, layout, sections)
    cand = (hu >= min(ARCH_HU, RIM_HU)) & (hu <= high)
    idx = np.argwhere(cand)
    mask = np.zeros(hu.shape, dtype=bool)
    if len(idx):
        kvu = frame.at(idx)
        v, u = kvu[:, 1], np.abs(kvu[:, 2])
        h = hu[tuple(idx.T)]
        front = (v > ARCH_V) & (u <= BODY_U)
        rim = front & (h >= RIM_HU) & (h < low)
        if marrow.any():
            rim &= within_mm(marrow, spacing, ENVELOPE_MM)[tuple(idx.T)]
        keep = (h >= low) | rim | (~front & (h >= ARCH_HU) & (u <= FAR_LATERAL_MM))
        # Blood with contrast (aorta, heart) is as bright as bone but comes in
        # thick, even blobs: in front of the canal and outside every body's prism,
        # such a blob is not bone.
        vessel = _thick_blobs(hu, spacing)[tuple(idx.T)]
        keep &= ~(vessel & (v > ARCH_V) & (_lookup(prism, layout.straight, kvu) == 0))
        mask[tuple(idx[keep].T)] = True
    # Peel the blurred fringe of the solid (not of the cortex alone, which a peel
    # could break open before its marrow is filled).
    solid = fill_3d(partial_volume_edge(fill_3d(mask | marrow), hu, spacing, keep=marrow))
    # A disc is not bone: where the blurred fringes of its two endplates closed over
    # it and the fill took it in (a concave endplate's rim rings the disc's bulge, which
    # was taken for marrow), it is cut out again, column by column as far as each disc
    # reaches (bright bone in a disc, an osteophyte or a calcified annulus, stays).
    idx = np.argwhere(solid)
    kvu = frame.at(idx)
    # Only within the bodies' outline: an osteophyte grows out of it at the disc.
    disc = (_lookup(prism, layout.straight, kvu) == 2) & _lookup(discs, layout.straight, kvu)
    disc &= hu[tuple(idx.T)] < DISC_BONE_HU
    solid[tuple(idx[disc].T)] = False
    return solid, idx[~disc], kvu[~disc]


def body_interior_sections(layout: SpineLayout) -> tuple[np.ndarray, np.ndarray]:
    """Marrow of each vertebral body on the straightened cross-sections, and its prism.

    Returns ``(marrow, prism)`` (ns, nv, nu): marrow bool; prism 2 inside the convex
    outline of a body's marrow, 1 within ``ENVELOPE_MM`` of it (its cortex), between the
    mid-planes of its two discs: where that body's bone may lie.

    Inside a body every direction meets cortex within a few centimetres, however
    faint the marrow (see :mod:`.enclosure`): the ringed points of each body's
    stretch, in front of the canal, brighter than fat and CSF, and connected within
    their cross-section to the middle of the body.
    """
    st, ev = layout.straight, layout.evidence
    smooth = ndimage.gaussian_filter(st.hu, (0.0, 0.7, 0.7))
    region = (st.v[:, None] >= BODY_V[0]) & (np.abs(st.u)[None, :] <= BODY_U)
    middle = (st.v[:, None] >= 12.0) & (st.v[:, None] <= 28.0) & (np.abs(st.u)[None, :] <= 10.0)
    out = np.zeros(st.hu.shape, dtype=bool)
    prism = np.zeros(st.hu.shape, dtype=np.uint8)
    plane = ndimage.generate_binary_structure(2, 1)
    bright = smooth >= MARROW_HU
    grow = ndimage.iterate_structure(plane, max(int(round(ENVELOPE_MM / float(st.v[1] - st.v[0]))), 1))
    r = max(int(round(NECK_MM / float(st.v[1] - st.v[0]))), 1)
    neck = np.hypot(*np.mgrid[-r : r + 1, -r : r + 1]) <= r
    cortex = smooth >= RING_HU
    vv, uu = np.meshgrid(st.v, st.u, indexing="ij")
    for slot in layout.slots:
        lo, hi = slot.bounds(vv, uu)
        ks = np.arange(max(int(np.floor(lo.min())), 0), min(int(np.ceil(hi.max())), len(st.s) - 1) + 1)
        good = []
        for k in ks:
            if (ev.ringed[k] | cortex[k])[middle].mean() < RINGED_SECTION:
                continue
            # Marrow is what the cortex rings: pixels clearly brighter than this
            # body's marrow are walls, so a vessel beside the body (a calcified
            # aorta rings its lumen too) stays apart, while mottled marrow does not.
            wall = smooth[k] >= max(RING_HU, float(np.median(smooth[k][middle])) + WALL_ABOVE_MARROW_HU)
            cand = ev.ringed[k] & bright[k] & ~wall & region & (k > lo) & (k < hi)
            out[k] = _body_section(cand, middle, plane, neck) & region & (k > lo) & (k < hi)
            good.append(k)
        # Where the cortex is too faint to ring the marrow (the waist of an
        # osteoporotic body at 3 mm, the part of a body beyond the last ringed
        # section before the scan's end), the body is its footprint: where at least
        # half of its ringed sections have marrow.
        # No ringed section: nothing outlines the body, so its bone may lie anywhere
        # in front of the canal between its discs.
        core = outline = region
        if good:
            outline = ndimage.binary_dilation(convex_hull_image(out[good].any(axis=0)), grow)
            # The core is the outline of most sections: a rim osteophyte, present in
            # a few sections only, lies outside it.
            typical = out[good].mean(axis=0) >= 0.5
            core = convex_hull_image(typical) if typical.any() else convex_hull_image(out[good].any(axis=0))
        level = outline.astype(np.uint8) + core.astype(np.uint8)
        mid_lo = slot.low_plane.at(vv, uu) if slot.low_plane else np.full(vv.shape, float(slot.low))
        mid_hi = slot.high_plane.at(vv, uu) if slot.high_plane else np.full(vv.shape, float(slot.high))
        for k in range(max(int(np.floor(mid_lo.min())), 0), min(int(np.ceil(mid_hi.max())), len(st.s) - 1) + 1):
            np.maximum(prism[k], level * ((k >= mid_lo) & (k <= mid_hi)), out=prism[k])
        if not good:
            continue
        footprint = out[good].mean(axis=0) >= 0.5
        for k in ks:
            if k in good:
                continue
            if not (slot.low_plane or slot.high_plane):
                continue  # no disc bounds it: nothing says where the body ends
            out[k] = footprint & bright[k] & (k > lo) & (k < hi)
    return out, prism


def _body_section(cand: np.ndarray, middle: np.ndarray, plane: np.ndarray, neck: np.ndarray) -> np.ndarray:
    """The body in one cross-section: the pieces of ``cand`` (ringed marrow) that reach
    the ``middle`` of the body, with their holes, cut at necks narrower than ``neck``."""
    lab, _ = ndimage.label(cand, structure=plane)
    hit = np.unique(lab[middle & cand])
    body = np.isin(lab, hit[hit > 0])
    if not body.any():
        return body
    # Every step below stays within the body's box widened by the neck's radius:
    # work there, not on the whole section.
    r = neck.shape[0] // 2 + 1
    rows, cols = np.flatnonzero(body.any(axis=1)), np.flatnonzero(body.any(axis=0))
    box = (slice(max(rows[0] - r, 0), rows[-1] + r + 1), slice(max(cols[0] - r, 0), cols[-1] + r + 1))
    # Bright trabeculae and islands inside the marrow are body too.
    part = ndimage.binary_fill_holes(body[box])
    # A vessel or organ touching the body through a gap in a faint cortex joins it
    # by a neck: cut necks narrower than the smallest body.
    opened = ndimage.binary_opening(part, neck)
    lab2, _ = ndimage.label(opened, structure=plane)
    hit2 = np.unique(lab2[middle[box] & opened])
    core = np.isin(lab2, hit2[hit2 > 0])
    if core.any():
        part &= ndimage.binary_dilation(core, neck)
    out = np.zeros_like(body)
    out[box] = part
    return out


def disc_columns(layout: SpineLayout) -> np.ndarray:
    """Every disc's extent column by column in front of the canal (straightened bool,
    :func:`.endplates.disc_sections`), its bulge into concave endplates included."""
    st = layout.straight
    region = (st.v[:, None] >= BODY_V[0]) & (np.abs(st.u)[None, :] <= BODY_U)
    planes = [slot.high_plane for slot in layout.slots if slot.high_plane is not None]
    return disc_sections(st, planes, layout.step_mm, region, DISC_FRINGE_MM / layout.step_mm)


def in_sections(sections: np.ndarray, layout: SpineLayout, frame: BoxCoordinates, points: np.ndarray) -> np.ndarray:
    """Whether voxels ``points`` (indices into ``frame``'s box) lie in the straightened ``sections``."""
    if not len(points):
        return np.zeros(0, dtype=bool)
    return _lookup(sections, layout.straight, frame.at(points))


def _thick_blobs(hu: np.ndarray, spacing) -> np.ndarray:
    """Voxels of bright soft blobs (``RIM_HU``..``BLOOD_MAX_HU``) that reach deeper than
    ``THICK_SOFT_MM`` somewhere: contrast-filled vessels and organs (and marrow)."""
    soft = (hu >= RIM_HU) & (hu <= BLOOD_MAX_HU)
    core = depth_mm(soft, spacing) > THICK_SOFT_MM
    if not core.any():
        return core
    return soft & within_mm(core, spacing, THICK_SOFT_MM + 1.0)


def _body_interior(sub: np.ndarray, frame: BoxCoordinates, layout: SpineLayout, sections: np.ndarray) -> np.ndarray:
    """Body marrow (``sections``, straightened) on the native grid of ``sub``."""
    out = np.zeros(sub.shape, dtype=bool)
    if not sections.any():
        return out
    st = layout.straight
    ks, vs, us = np.nonzero(sections)
    near = frame.box_around(
        (ks.min(), ks.max()), (st.v[vs.min()], st.v[vs.max()]), (st.u[us.min()], st.u[us.max()]), sub.shape
    )
    idx = np.argwhere(sub[near] >= MARROW_HU) + [b.start for b in near]
    if len(idx) == 0:
        return out
    out[tuple(idx[_lookup(sections, st, frame.at(idx))].T)] = True
    return out


def _lookup(sections: np.ndarray, st, kvu: np.ndarray) -> np.ndarray:
    """Values of a straightened array at spine coordinates ``(k, v, u)`` (nearest; 0 or
    False outside it)."""
    k = np.rint(kvu[:, 0]).astype(int)
    vi = np.rint((kvu[:, 1] - st.v[0]) / (st.v[1] - st.v[0])).astype(int)
    ui = np.rint((kvu[:, 2] - st.u[0]) / (st.u[1] - st.u[0])).astype(int)
    ok = (k >= 0) & (k < len(st.s)) & (vi >= 0) & (vi < len(st.v)) & (ui >= 0) & (ui < len(st.u))
    out = np.zeros(len(kvu), dtype=sections.dtype)
    out[ok] = sections[k[ok], vi[ok], ui[ok]]
    return out


def fill_slices(walls: np.ndarray, own: np.ndarray, frame: BoxCoordinates, offset=(0, 0, 0)) -> np.ndarray:
    """``own`` plus the holes of ``walls`` beside it, slice by slice (axial), except the
    canal (holes within ``CANAL_RADIUS_MM`` of its centre). ``offset``: index of the
    arrays' first voxel in ``frame``'s box."""
    out = own.copy()
    zs = np.flatnonzero(own.any(axis=(1, 2)))
    if not len(zs):
        return out
    # Holes lie within the walls' outline: work on its box (one voxel wider, so the
    # outside stays connected around it), not on whole slices.
    outline = (walls[zs[0] : zs[-1] + 1] | own[zs[0] : zs[-1] + 1]).any(axis=0)
    rows, cols = np.flatnonzero(outline.any(axis=1)), np.flatnonzero(outline.any(axis=0))
    r0, c0 = max(rows[0] - 1, 0), max(cols[0] - 1, 0)
    r1, c1 = rows[-1] + 2, cols[-1] + 2
    for z in zs:
        w, o = walls[z, r0:r1, c0:c1], own[z, r0:r1, c0:c1]
        holes = ndimage.binary_fill_holes(w) & ~w
        if not holes.any():
            continue
        comp, _ = ndimage.label(holes)
        beside = np.unique(comp[ndimage.binary_dilation(o) & holes])
        beside = beside[beside > 0]
        if not len(beside):
            continue
        pts = np.argwhere(np.isin(comp, beside))
        coords = frame.at(np.column_stack([np.full(len(pts), z), pts + (r0, c0)]) + offset)
        canal = np.unique(comp[tuple(pts[np.hypot(coords[:, 1], coords[:, 2]) < CANAL_RADIUS_MM].T)])
        out[z, r0:r1, c0:c1] |= np.isin(comp, np.setdiff1d(beside, canal))
    return out
