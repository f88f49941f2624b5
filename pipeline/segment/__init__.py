"""Stage 2: from HU to individually labelled vertebrae.

``segment_vertebrae`` is a pure function of the CT volume: it reorients the array
(exactly, by permuting and flipping axes) so that axis 0 points to the head, works
there, and returns labels on the input's own grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..volume import CTVolume, reorient, voxel_sizes
from .bone import MARROW_MIN_HU, remove_islands, solid_bone
from .levels import VERSE_LABELS, find_landmarks, label_value, name_levels, spacing_warnings
from .roi import spine_box
from .threshold import PRESETS, hu_range
from .vertebrae import split_vertebrae

__all__ = [
    "PRESETS",
    "VERSE_LABELS",
    "VertebraSegmentation",
    "bone_mask",
    "segment_vertebrae",
]


@dataclass(frozen=True)
class VertebraSegmentation:
    """Labelled vertebrae on the scan's grid.

    Attributes
    ----------
    labels : ndarray of int16
        Label value per voxel (VerSe convention when named, 100 + i for V1..Vn), 0
        elsewhere; same shape and affine as the input volume.
    affine : ndarray, shape (4, 4)
        Voxel index to LPS mm (the input volume's).
    levels : dict
        Label value -> level name, superior first.
    named : bool
        Whether levels are anatomical names (else V1..Vn).
    evidence : str
        How levels were named.
    cut_by_scan_edge : tuple of str
        Levels touching the first or last slice: their models are incomplete.
    warnings : tuple of str
    parameters : dict
        Thresholds and sizes used (JSON-ready).
    """

    labels: np.ndarray
    affine: np.ndarray
    levels: dict
    named: bool
    evidence: str
    cut_by_scan_edge: tuple = ()
    warnings: tuple = ()
    parameters: dict = field(default_factory=dict)

    def mask(self, level: str) -> np.ndarray:
        """Boolean mask of one vertebra by level name."""
        for value, name in self.levels.items():
            if name == level:
                return self.labels == value
        raise KeyError(f"no vertebra {level!r}; found {', '.join(self.levels.values())}")


def bone_mask(
    volume: CTVolume,
    preset: str = "bone",
    *,
    low: float | None = None,
    high: float | None = None,
    min_island_mm3: float = 500.0,
    marrow_min_hu: float = MARROW_MIN_HU,
) -> np.ndarray:
    """Solid bone on the volume's grid: threshold, marrow filling, islands removed.

    Parameters
    ----------
    volume : CTVolume
    preset : str
        Key of :data:`PRESETS`; ``low``/``high`` override its HU limits.
    min_island_mm3 : float
        Connected pieces smaller than this are dropped, mm³.
    marrow_min_hu : float
        Enclosed holes with a median HU at least this are filled as marrow.
    """
    lo, hi = hu_range(preset, low, high)
    hu, affine_c, undo = reorient(volume.hu, volume.affine, "SPL")
    spacing = voxel_sizes(affine_c)
    bone = solid_bone(hu, lo, hi, spacing, axis=0, marrow_min_hu=marrow_min_hu)
    bone = remove_islands(bone, spacing, min_island_mm3)
    return np.ascontiguousarray(undo(bone))


def segment_vertebrae(
    volume: CTVolume,
    preset: str = "bone",
    *,
    low: float | None = None,
    high: float | None = None,
    marrow_min_hu: float = MARROW_MIN_HU,
    core_mm: float = 10.0,
) -> VertebraSegmentation:
    """Segment and label the vertebrae of a CT volume.

    Parameters
    ----------
    volume : CTVolume
        Any orientation close to axial, sagittal or coronal.
    preset, low, high : str, float
        Bone threshold (see :data:`PRESETS`), HU.
    marrow_min_hu : float
        Enclosed holes whose median HU is at least this are filled as marrow.
    core_mm : float
        In-plane depth (mm) inside bone that only vertebral bodies reach in an axial
        slice; seeds one vertebra each.

    Returns
    -------
    VertebraSegmentation
    """
    lo, hi = hu_range(preset, low, high)
    full, affine_c, undo = reorient(volume.hu, volume.affine, "SPL")
    spacing = voxel_sizes(affine_c)
    # Work inside a box around the spine (found on a coarse copy): the rest of a
    # full field of view is a cost, not information.
    box = spine_box(full, spacing) or (slice(None),) * 3
    hu = full[box]
    bone = solid_bone(hu, lo, hi, spacing, axis=0, marrow_min_hu=marrow_min_hu)
    parts = split_vertebrae(bone, spacing, hu, core_mm=core_mm)
    n = len(parts.chain)
    warnings: list[str] = []
    if n == 0:
        warnings.append("no vertebral body found: no bone region is thick enough to be one")
        names, named, evidence = [], False, "no vertebra"
    else:
        marks = find_landmarks(parts.labels, parts.other, parts.dist, spacing, parts.chain)
        names, named, evidence, more = name_levels(n, marks)
        warnings.extend(more)
        warnings.extend(spacing_warnings(parts.chain, names))
    values = [label_value(name, i) for i, name in enumerate(names, start=1)]
    lut = np.zeros(n + 1, dtype=np.int16)
    lut[1:] = values
    labels_c = np.zeros(full.shape, dtype=np.int16)
    labels_c[box] = lut[parts.labels]
    at_edge = set(np.unique(labels_c[0]).tolist()) | set(np.unique(labels_c[-1]).tolist())
    cut = [name for value, name in zip(values, names) if value in at_edge]
    if cut:
        warnings.append(f"{', '.join(cut)} cut by the scan's first or last slice: their models are incomplete")
    return VertebraSegmentation(
        labels=np.ascontiguousarray(undo(labels_c)),
        affine=np.asarray(volume.affine, dtype=float),
        levels=dict(zip(values, names)),
        named=named,
        evidence=evidence,
        cut_by_scan_edge=tuple(cut),
        warnings=tuple(warnings),
        parameters={
            "threshold_preset": preset,
            "hu_low": lo,
            "hu_high": hi,
            "marrow_min_hu": marrow_min_hu,
            "body_core_mm": core_mm,
            "label_convention": "VerSe (T12=19, L1=20 ... L5=24, sacrum=26); V1..Vn = 101..",
        },
    )
