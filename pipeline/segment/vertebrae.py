"""Split solid spine bone into individual vertebrae.

Approach (works on real anatomy, not only on the phantom):

1. *Body cores*: voxels deeper than ``core_mm`` inside bone (Euclidean distance
   transform). Only vertebral bodies (and thick pelvic or vascular masses) are that
   thick; posterior elements, ribs and facet joints are not, and the disc between two
   bodies separates their cores by the disc height plus twice ``core_mm``.
2. *Spine chain*: the longest chain of cores stacked head to foot with plausible
   spacing and alignment. Cores off the chain (ilium, a calcified aorta) and bone far
   lateral to the chain (ribs, iliac wings) seed a "not a vertebra" region.
3. *Watershed* on the negative distance transform from those seeds, inside the bone
   mask: floods meet at the narrowest bone necks, which between vertebrae are the
   facet joints and between a vertebra and a rib the costovertebral joints.

Arrays here are in the canonical orientation ``SPL`` (axis 0 towards the head,
axis 1 posterior, axis 2 patient-left), spacing in mm per axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from . import filters
from .bone import label_components
from .distance import depth_mm, in_plane_depth_mm

#: Bone this far (mm) left or right of the spine axis is never vertebra: ribs, ilium.
#: Lumbar transverse processes reach ~45 mm, the sacral alae ~55 mm from the midline.
FAR_LATERAL_MM = 65.0
#: Dip (HU) below both neighbouring plates that marks a joint space, see :func:`joint_gaps`.
JOINT_GAP_HU = 150.0
#: How a joint's dip weighs against bone depth in the watershed relief.
GAP_WEIGHT_MM_PER_HU = 0.02


@dataclass(frozen=True)
class Core:
    """A body core: candidate vertebral body (positions in mm, canonical axes)."""

    id: int
    centroid: np.ndarray
    volume_mm3: float
    extent_mm: np.ndarray
    bbox: tuple


@dataclass(frozen=True)
class SpineParts:
    """Result of :func:`split_vertebrae` (canonical SPL axes).

    Attributes
    ----------
    labels : ndarray of int16
        1..n for the vertebrae of the chain, superior first; 0 elsewhere.
    chain : list of Core
        The body cores, superior first.
    other : ndarray of bool
        Bone flooded from the non-vertebral seeds (ribs, pelvis, vessels), used to
        recognise ribs and the pelvis when naming levels.
    dist : ndarray of float32
        Depth inside bone, mm.
    spacing : tuple of float
        Voxel size per axis, mm.
    """

    labels: np.ndarray
    chain: list
    other: np.ndarray
    dist: np.ndarray
    spacing: tuple


def joint_gaps(hu: np.ndarray, spacing, step_mm: float = 1.5) -> np.ndarray:
    """How much darker each voxel is than bone on both sides of it, HU (>= 0).

    A joint between two bones (facet, costovertebral, sacroiliac) is a thin dark
    layer between two bright cortical plates. Thresholding at bone HU often merges
    the plates across a narrow or blurred joint space, but the dip survives: for each
    of the 13 axis and diagonal directions, compare the voxel with its neighbours
    ``step_mm`` away on either side; the score is the largest ``min(both sides) -
    centre`` found. Marrow under a single cortex and soft tissue beside bone score
    about zero because one side is as dark as the centre.
    """
    img = filters.gaussian(hu, 0.5)
    k = [max(int(round(step_mm / s)), 1) for s in spacing]
    best = np.zeros(img.shape, dtype=np.float32)
    directions = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) > (0, 0, 0)]
    for d in directions:
        shift = [int(di * ki) for di, ki in zip(d, k)]
        # Views, not rolled copies: voxels within a step of the array's edge have no
        # neighbour on one side and keep a score of 0.
        centre = tuple(slice(abs(h), n - abs(h)) for h, n in zip(shift, img.shape))
        fwd = tuple(slice(abs(h) - h, n - abs(h) - h) for h, n in zip(shift, img.shape))
        back = tuple(slice(abs(h) + h, n - abs(h) + h) for h, n in zip(shift, img.shape))
        view = best[centre]
        np.maximum(view, np.minimum(img[fwd], img[back]) - img[centre], out=view)
    return best


def find_cores(depth: np.ndarray, spacing, core_mm: float) -> tuple[np.ndarray, list[Core]]:
    """Connected regions deeper than ``core_mm`` (in-plane depth) inside bone."""
    labels, n = label_components(depth >= core_mm, connectivity=6)
    cores = []
    if n == 0:
        return labels, cores
    objects = ndimage.find_objects(labels)
    sp = np.asarray(spacing, dtype=float)
    for i, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        sub = labels[sl] == i
        idx = np.argwhere(sub) + [s.start for s in sl]
        extent = (np.array([s.stop - s.start for s in sl])) * sp
        cores.append(Core(i, idx.mean(axis=0) * sp, float(len(idx) * sp.prod()), extent, sl))
    return labels, cores


def spine_chain(
    cores: list[Core], *, min_volume_mm3: float = 400.0, max_height_mm: float = 45.0, n_slices: int | None = None
) -> list[Core]:
    """The longest head-to-foot chain of cores that look like stacked vertebral bodies.

    Consecutive bodies are 15-60 mm apart along the head-foot axis (centre to
    centre, cervical to lumbar), within 25 mm left-right and 35 mm front-back of each
    other (scoliosis and lordosis allow some drift). Returned superior first.
    A core touching the first or last of ``n_slices`` slices is a body cut by the
    scan's edge and needs only a quarter of ``min_volume_mm3``.
    """

    def big_enough(c: Core) -> bool:
        at_edge = n_slices is not None and (c.bbox[0].start == 0 or c.bbox[0].stop >= n_slices)
        return c.volume_mm3 >= (0.25 if at_edge else 1.0) * min_volume_mm3

    # Tall cores are tubes (a contrast-filled aorta) unless they are as wide as they
    # are tall: the sacrum, fused S1-S5, is tall but spans the alae.
    nodes = [c for c in cores if big_enough(c) and c.extent_mm[0] <= max(max_height_mm, c.extent_mm[2])]
    if not nodes:
        return []
    nodes.sort(key=lambda c: -c.centroid[0])
    n = len(nodes)
    best = [c.volume_mm3 for c in nodes]
    count = [1] * n
    prev = [-1] * n
    for j in range(n):
        for i in range(j):
            d = nodes[i].centroid - nodes[j].centroid
            if 15.0 <= d[0] <= 60.0 and abs(d[2]) <= 25.0 and abs(d[1]) <= 35.0:
                cand = (count[i] + 1, best[i] + nodes[j].volume_mm3)
                if cand > (count[j], best[j]):
                    count[j], best[j], prev[j] = cand[0], cand[1], i
    end = max(range(n), key=lambda k: (count[k], best[k]))
    chain = []
    while end >= 0:
        chain.append(nodes[end])
        end = prev[end]
    return chain[::-1]


def split_vertebrae(
    bone: np.ndarray,
    spacing,
    hu: np.ndarray | None = None,
    *,
    core_mm: float = 10.0,
    far_lateral_mm: float = FAR_LATERAL_MM,
) -> SpineParts:
    """Label each vertebra of solid bone ``bone`` (canonical SPL axes)."""
    spacing = tuple(float(s) for s in spacing)
    gaps = joint_gaps(hu, spacing) if hu is not None else np.zeros(bone.shape, np.float32)
    split = bone & (gaps < JOINT_GAP_HU)
    dist = depth_mm(split, spacing)
    core_labels, cores = find_cores(in_plane_depth_mm(split, spacing), spacing, core_mm)
    chain = spine_chain(cores, n_slices=bone.shape[0])
    labels = np.zeros(bone.shape, dtype=np.int16)
    if not chain:
        return SpineParts(labels, chain, np.zeros(bone.shape, dtype=bool), dist, spacing)
    other_id = len(chain) + 1
    lut = np.zeros(len(cores) + 1, dtype=np.int32)
    for core in cores:
        lut[core.id] = other_id if _off_spine(core, chain) else 0
    for k, core in enumerate(chain, start=1):
        lut[core.id] = k
    markers = lut[core_labels]
    markers[(markers == 0) & _far_lateral(bone, chain, spacing, far_lateral_mm)] = other_id
    # Only bone connected to a vertebral body can be vertebra; crop to it for speed.
    comp, _ = label_components(bone)
    keep_ids = np.unique(comp[markers > 0][markers[markers > 0] <= len(chain)])
    region = np.isin(comp, keep_ids[keep_ids > 0])
    box = ndimage.find_objects(region.astype(np.uint8))[0]
    # Deep bone floods first; joint gaps are walls (500 HU of dip ~ 10 mm of depth).
    elevation = gaps[box] * GAP_WEIGHT_MM_PER_HU - dist[box]
    flooded = watershed(elevation, markers=np.where(region[box], markers[box], 0), mask=region[box])
    flooded = open_joints(flooded, gaps[box] >= JOINT_GAP_HU)
    out = np.zeros(bone.shape, dtype=np.int32)
    out[box] = flooded
    other = out == other_id
    labels = np.where(out <= len(chain), out, 0).astype(np.int16)
    labels = keep_main_piece(labels, len(chain))
    return SpineParts(labels, chain, other, dist, spacing)


def open_joints(labels: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Give the joint space back to neither bone.

    Where blur merged two bones across a joint, the watershed line runs through
    the joint space and each side keeps part of it. Joint-space voxels (dark between
    bright plates) that touch a different label belong to neither bone.
    """
    big = np.iinfo(np.int32).max
    lo = filters.minimum(np.where(labels > 0, labels, big), 3)
    hi = filters.maximum(labels, 3)
    contact = (labels > 0) & ((lo != labels) | (hi != labels))
    out = labels.copy()
    out[contact & gap] = 0
    return out


def _off_spine(core: Core, chain: list[Core]) -> bool:
    """Is a core that is not a vertebral body clearly not part of any vertebra?

    Thick bone beside a body (a broad pedicle, an articular pillar, a sacral ala) must
    stay unseeded so its own vertebra floods it. Cores that are long tubes (a
    calcified or contrast-filled aorta), far lateral (ilium) or well in front of the
    bodies are seeded as "not vertebra".
    """
    nearest = min(chain, key=lambda c: abs(c.centroid[0] - core.centroid[0]))
    d = core.centroid - nearest.centroid
    return bool(core.extent_mm[0] > 60.0 or abs(d[2]) > 40.0 or d[1] < -30.0)


def _far_lateral(bone: np.ndarray, chain: list[Core], spacing, limit_mm: float) -> np.ndarray:
    """Bone further than ``limit_mm`` left or right of the spine axis, per slice."""
    z = np.array([c.centroid[0] for c in chain])[::-1]
    x = np.array([c.centroid[2] for c in chain])[::-1]
    slice_z = np.arange(bone.shape[0]) * spacing[0]
    axis_x = np.interp(slice_z, z, x) if len(z) > 1 else np.full_like(slice_z, x[0])
    col_x = np.arange(bone.shape[2]) * spacing[2]
    far = np.abs(col_x[None, :] - axis_x[:, None]) > limit_mm
    return bone & far[:, None, :]


def keep_main_piece(labels: np.ndarray, n: int) -> np.ndarray:
    """Keep, per vertebra, the connected piece holding most of its voxels.

    Fragments cut off by the watershed (a sliver of a neighbour's facet) would
    otherwise print as loose specks.
    """
    out = labels.copy()
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None or k > n:
            continue
        sub = labels[sl] == k
        comp, m = label_components(sub)
        if m <= 1:
            continue
        sizes = np.bincount(comp.ravel())
        sizes[0] = 0
        drop = sub & (comp != int(np.argmax(sizes)))
        view = out[sl]
        view[drop] = 0
    return out
