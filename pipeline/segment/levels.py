"""Name vertebral levels by counting from landmarks the scan shows.

Radiologists count from a landmark: the lowest vertebra carrying ribs is T12, the
first segment fused into the sacrum (joined to the ilia) is S1. Without either in
view a level cannot be named from a partial scan, so vertebrae are called V1..Vn
(head to foot) with a warning, as a careful reader would. When both landmarks are
visible and disagree with the usual five lumbar vertebrae (a transitional
lumbosacral vertebra or a thirteenth rib pair, together ~10-15% of people), the
sacrum wins for lumbar levels and the disagreement is reported.

Label values follow the VerSe challenge convention so that label maps compare
directly with public reference segmentations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .bone import label_components
from .distance import within_mm

#: VerSe label values: C1-C7 = 1-7, T1-T12 = 8-19, L1-L6 = 20-25, sacrum = 26, T13 = 28.
VERSE_LABELS: dict[str, int] = {
    **{f"C{i}": i for i in range(1, 8)},
    **{f"T{i}": 7 + i for i in range(1, 13)},
    **{f"L{i}": 19 + i for i in range(1, 7)},
    "S1": 26,
    "T13": 28,
}
_ORDER = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)] + ["S1"]
#: Unnamed vertebrae V1..Vn get 100 + i.
UNNAMED_BASE = 100
#: How close (mm) a rib or the pelvis must come to a vertebra to count as joined to it.
TOUCH_MM = 3.0
#: Depth inside bone (mm) that a quarter of the pelvis's volume exceeds (the ilium
#: near the sacroiliac joint and the acetabulum); thin bone (ribs, even fused into
#: one piece at 3 mm voxels) stays below it.
PELVIS_P75_DEPTH_MM = 4.5


@dataclass(frozen=True)
class Landmarks:
    """What was seen next to each vertebra (indices 1..n, superior first)."""

    rib_sides: dict  # vertebra index -> set of "left"/"right"
    pelvis_sides: dict  # vertebra index -> set of "left"/"right"


def find_landmarks(labels: np.ndarray, other: np.ndarray, dist: np.ndarray, spacing, chain) -> Landmarks:
    """Find ribs and pelvis touching each vertebra (canonical SPL arrays).

    A rib is thin bone reaching over 40 mm lateral of the spine axis and touching a
    vertebra within 3 mm. The pelvis is thick bone (deeper than 6 mm somewhere, and
    a quarter of it deeper than ``PELVIS_P75_DEPTH_MM``) lying over 40 mm lateral
    and touching a vertebra.
    """
    spacing = np.asarray(spacing, dtype=float)
    comp, m = label_components(other)
    ribs: dict[int, set] = {}
    pelvis: dict[int, set] = {}
    if m == 0:
        return Landmarks(ribs, pelvis)
    z = np.array([c.centroid[0] for c in chain])[::-1]
    x = np.array([c.centroid[2] for c in chain])[::-1]
    reach = np.maximum(np.ceil(TOUCH_MM / spacing).astype(int), 1)
    for j, sl in enumerate(ndimage.find_objects(comp), start=1):
        if sl is None:
            continue
        grown = tuple(slice(max(s.start - r, 0), s.stop + r) for s, r in zip(sl, reach))
        piece = comp[grown] == j
        if piece.sum() * spacing.prod() < 300.0:
            continue
        idx = np.argwhere(piece) + [g.start for g in grown]
        zz = idx[:, 0] * spacing[0]
        axis_x = np.interp(zz, z, x) if len(z) > 1 else np.full(len(zz), x[0])
        offset = idx[:, 2] * spacing[2] - axis_x
        lateral = np.abs(offset)
        if lateral.max() < 40.0:
            continue
        side = "left" if np.median(offset) > 0 else "right"  # canonical axis 2 points to patient left
        # Thick: a plate of marrow-filled bone, not thin bone that merely meets itself
        # somewhere (a rib cage fused into one piece by blur and costal cartilage is
        # as deep as an ilium at a few junctions, but not over a quarter of its volume).
        depth = dist[grown][piece]
        thick = float(depth.max()) >= 6.0 and float(np.percentile(depth, 75)) >= PELVIS_P75_DEPTH_MM
        near = within_mm(piece, spacing, TOUCH_MM)
        touched = labels[grown][near]
        touched = touched[touched > 0]
        if touched.size == 0:
            continue
        k = int(np.bincount(touched).argmax())
        (pelvis if thick else ribs).setdefault(k, set()).add(side)
    return Landmarks(ribs, pelvis)


def spacing_warnings(chain, names: list[str]) -> list[str]:
    """Warn where consecutive bodies are unusually far apart or close together.

    Centre-to-centre distances change slowly along the spine (15-40 mm from neck to
    lumbar spine); one gap 60 % longer than the median suggests a vertebra the
    segmentation missed, one under 60 % a body split in two. Either shifts every
    name counted across it.
    """
    z = np.array([c.centroid[0] for c in chain])
    if len(z) < 4:
        return []
    gaps = np.abs(np.diff(z))
    typical = float(np.median(gaps))
    odd = [i for i, g in enumerate(gaps) if g > 1.6 * typical or g < 0.6 * typical]
    if not odd:
        return []
    pairs = ", ".join(f"{names[i]}-{names[i + 1]} {gaps[i]:.0f} mm" for i in odd)
    return [
        f"irregular spacing of vertebral bodies ({pairs}; typical {typical:.0f} mm): a vertebra may be "
        "missing or split, and levels counted across it would be shifted; check them"
    ]


def name_levels(n: int, landmarks: Landmarks, *, cut_top: bool = False) -> tuple[list[str], bool, str, list[str]]:
    """Level names for ``n`` vertebrae (superior first).

    Returns
    -------
    names : list of str
    named : bool
        False when the names are V1..Vn.
    evidence : str
        Which landmark the count started from.
    warnings : list of str
    """
    warnings: list[str] = []
    # S1 is the highest segment joined to the pelvis; the fused segments below it
    # (S2...) belong to the same bone, the sacrum.
    on_pelvis = [k for k in range(2, n + 1) if landmarks.pelvis_sides.get(k)]
    sacrum = on_pelvis[0] if on_pelvis else None
    rib_levels = sorted(landmarks.rib_sides)
    t12 = None
    if rib_levels:
        lowest = rib_levels[-1]
        # Only the lowest rib-bearing vertebra with a rib-free vertebra below is T12.
        if lowest < (sacrum or n + 1) - 1 or (sacrum is None and lowest < n):
            t12 = lowest
    if sacrum is not None:
        names = _count_from(n, sacrum, "S1")
        evidence = "counted up from the sacrum (S1 joined to the ilia)"
        if t12 is not None and names[t12 - 1] != "T12":
            warnings.append(
                f"the lowest rib-bearing vertebra would be {names[t12 - 1]} counting from the sacrum: "
                "transitional anatomy or a rib variant; levels follow the sacrum count, check them"
            )
        return names, True, evidence, warnings
    if t12 is not None:
        names = _count_from(n, t12, "T12")
        if names is not None:
            return (
                names,
                True,
                "counted from the lowest rib-bearing vertebra (T12)",
                warnings,
            )
    warnings.append(
        "levels could not be named (neither the sacrum nor the lowest ribs are in the scan): "
        "vertebrae are called V1..Vn from head to foot"
    )
    return [f"V{i}" for i in range(1, n + 1)], False, "no landmark", warnings


def _count_from(n: int, anchor: int, anchor_name: str) -> list[str]:
    """Names counting from ``anchor``; segments below S1 are part of the sacrum."""
    base = _ORDER.index(anchor_name)
    names = []
    for k in range(1, n + 1):
        pos = base + (k - anchor)
        if pos >= len(_ORDER):
            names.append("S1")
        else:
            names.append(_ORDER[pos] if pos >= 0 else f"V{k}")
    return names


def label_value(name: str, index: int) -> int:
    """Label value for a level name (VerSe), or 100 + index for V1..Vn."""
    return VERSE_LABELS.get(name, UNNAMED_BASE + index)
