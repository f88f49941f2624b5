"""Stage 2: from HU to individually labelled, named vertebrae.

``segment_vertebrae`` is a pure function of the CT volume. It reorients the array
exactly (permuting and flipping axes) so that axis 0 points to the head, finds the
spine and one slot per vertebra on coarse copies and straightened cross-sections
(:mod:`.spine`), labels the bone of each vertebra at the scan's resolution
(:mod:`.assign`), names the levels from the landmarks the scan shows, or not at
all (:mod:`.levels`), and returns labels on the input's own grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..volume import CTVolume, reorient, voxel_sizes
from .assign import label_vertebrae
from .bone import largest_piece
from .distance import depth_mm, within_mm
from .landmarks import find_landmarks
from .levels import VERSE_LABELS, label_value, name_levels, spacing_warnings
from .sacrum import first_sacral_segment
from .spine import find_spine
from .threshold import PRESETS, hu_range

__all__ = [
    "PRESETS",
    "VERSE_LABELS",
    "VertebraSegmentation",
    "depth_mm",
    "largest_piece",
    "segment_vertebrae",
    "within_mm",
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
    certain : bool
        Whether two or more landmarks agree on the names.
    evidence : str
        How levels were named, or why not.
    vertebrae : tuple of dict
        Per vertebra (superior first): ``level``, ``complete`` (both discs in the
        scan), ``height_mm`` (disc to disc along the spine), ``ribs`` and ``pelvis``
        (sides with such a joint), ``anchor`` (the landmark this vertebra is, if any).
    cut_by_scan_edge : tuple of str
        Levels touching the first or last slice: their models are incomplete.
    warnings : tuple of str
    parameters : dict
        Thresholds used (JSON-ready).
    """

    labels: np.ndarray
    affine: np.ndarray
    levels: dict
    named: bool
    evidence: str
    certain: bool = False
    vertebrae: tuple = ()
    cut_by_scan_edge: tuple = ()
    warnings: tuple = ()
    parameters: dict = field(default_factory=dict)

    def mask(self, level: str) -> np.ndarray:
        """Boolean mask of one vertebra by level name."""
        for value, name in self.levels.items():
            if name == level:
                return self.labels == value
        raise KeyError(f"no vertebra {level!r}; found {', '.join(self.levels.values())}")


def segment_vertebrae(
    volume: CTVolume,
    preset: str = "bone",
    *,
    low: float | None = None,
    high: float | None = None,
) -> VertebraSegmentation:
    """Segment, label and name the vertebrae of a CT volume.

    Parameters
    ----------
    volume : CTVolume
        Any orientation close to axial, sagittal or coronal.
    preset, low, high : str, float
        Bone threshold (see :data:`PRESETS`), HU.

    Returns
    -------
    VertebraSegmentation
        With no vertebrae (and a warning saying why) when the scan shows no spine.
    """
    lo, hi = hu_range(preset, low, high)
    full, affine_c, undo = reorient(volume.hu, volume.affine, "SPL")
    # Rounded to 0.1 um: a NIfTI header's float32 affine and the DICOM series it came
    # from must give the same labels, voxel for voxel.
    spacing = tuple(round(s, 4) for s in voxel_sizes(affine_c))
    layout = find_spine(full, spacing)
    warnings: list[str] = []
    labels_c = np.zeros(full.shape, dtype=np.int16)
    names: list[str] = []
    values: list[int] = []
    vertebrae: list[dict] = []
    named = certain = False
    evidence = "no vertebra"
    if layout is None or not layout.slots:
        warnings.append("no spine found: no bone-ringed spinal canal with vertebral bodies in front of it")
    else:
        parts = label_vertebrae(full, spacing, layout, lo, hi)
        n = len(layout.slots)
        marks = find_landmarks(parts.labels, parts.lateral, parts.depth, spacing, parts.frame)
        complete = [s.complete for s in layout.slots]
        heights = [(s.high - s.low) * layout.step_mm for s in layout.slots]
        naming = name_levels(n, marks, complete, [h if c else np.nan for h, c in zip(heights, complete)])
        names, named, certain, evidence = naming.names, naming.named, naming.certain, naming.evidence
        warnings.extend(naming.warnings)
        warnings.extend(spacing_warnings(heights, names))
        # Below S1 the sacrum is one fused bone (S2-S5), not vertebrae to print.
        kept = list(range(n))
        in_box = parts.labels
        if "S1" in naming.anchors:
            s1 = naming.anchors["S1"]  # counted from 1, like the labels
            kept = [i for i in kept if i < s1]
            in_box = first_sacral_segment(parts, s1, s1 - 1, layout)
        values = [label_value(names[i], i + 1) for i in kept]
        lut = np.zeros(n + 2, dtype=np.int16)
        lut[[i + 1 for i in kept]] = values
        labels_c[parts.box] = lut[in_box]
        for i in kept:
            vertebrae.append(
                {
                    "level": names[i],
                    "complete": bool(layout.slots[i].complete),
                    "height_mm": round(float(heights[i]), 1),
                    **naming.per_vertebra[i],
                }
            )
        names = [names[i] for i in kept]
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
        certain=certain,
        vertebrae=tuple(vertebrae),
        cut_by_scan_edge=tuple(cut),
        warnings=tuple(warnings),
        parameters={
            "threshold_preset": preset,
            "hu_low": lo,
            "hu_high": hi,
            "label_convention": "VerSe (T12=19, L1=20 ... L5=24, S1=26 (first sacral segment)); V1..Vn = 101..",
        },
    )
