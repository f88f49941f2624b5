"""The CT volume as every stage sees it: an array plus its exact patient geometry.

Conventions used throughout osteoprint
--------------------------------------
* Patient coordinates are DICOM LPS in millimetres: +x towards the patient's Left,
  +y Posterior, +z Superior (head).
* ``affine`` is a 4x4 matrix mapping a voxel's array index, *in array axis order*
  ``(a0, a1, a2, 1)``, to LPS mm. For a DICOM series read by osteoprint the axes are
  ``(slice, row, column)``, so column 0 of the affine is the slice step, column 1 the
  step between rows and column 2 the step between columns. Nothing else about the
  orientation is assumed: code that needs to know which axis is superior asks the
  affine (see :func:`axis_codes`).
* Voxel indices refer to voxel centres.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class ScanInfo:
    """What the pipeline may record about the scan: no patient identifiers.

    Attributes
    ----------
    series_hash : str
        Short SHA-256 hash of the SeriesInstanceUID (or of the file's content for
        NIfTI input); stable, not reversible.
    modality : str
        DICOM modality, ``"CT"``.
    source_format : str
        ``"dicom"`` or ``"nifti"``.
    transfer_syntax : str
        Name of the DICOM transfer syntax of the pixel data ("" for NIfTI).
    n_files : int
        Number of image files the volume was built from.
    description : str
        Scan description safe to publish (series description, manufacturer, model,
        kernel); never patient data.
    warnings : tuple of str
        What the reader noticed and corrected or tolerated (skipped files, uneven
        spacing, gantry tilt, ...), in the user's words.
    kvp : float or None
        X-ray tube peak voltage, kV (DICOM KVP); None when the file does not say.
        Bone attenuation in HU depends on it.
    contrast_stated : bool or None
        Whether the DICOM names a contrast agent (ContrastBolusAgent); None when the
        format cannot say (NIfTI). False does not prove an unenhanced scan: many
        scanners leave the field empty.
    contrast_delay_s : float or None
        Seconds from the recorded contrast bolus start to the acquisition, when
        both times are given (the times themselves are never kept).
    """

    series_hash: str = ""
    modality: str = "CT"
    source_format: str = "dicom"
    transfer_syntax: str = ""
    n_files: int = 0
    description: str = ""
    warnings: tuple[str, ...] = ()
    kvp: float | None = None
    contrast_stated: bool | None = None
    contrast_delay_s: float | None = None


@dataclass(frozen=True)
class CTVolume:
    """A CT scan in Hounsfield units with its voxel-to-patient geometry.

    Attributes
    ----------
    hu : ndarray, shape (n0, n1, n2)
        Hounsfield units. ``int16`` when the rescale is integral (the common case),
        ``float32`` otherwise.
    affine : ndarray, shape (4, 4)
        Voxel index (array axis order) to LPS millimetres.
    info : ScanInfo
        Provenance and reader warnings, free of patient identifiers.
    """

    hu: np.ndarray
    affine: np.ndarray
    info: ScanInfo = field(default_factory=ScanInfo)

    def __post_init__(self):
        if self.hu.ndim != 3:
            raise ValueError(f"CT volume must be 3-D, got shape {self.hu.shape}")
        aff = np.asarray(self.affine, dtype=float)
        if aff.shape != (4, 4):
            raise ValueError("affine must be 4x4")
        object.__setattr__(self, "affine", aff)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along each array axis, mm."""
        return voxel_sizes(self.affine)

    def with_warnings(self, *messages: str) -> CTVolume:
        """Return a copy whose ``info.warnings`` has ``messages`` appended."""
        info = replace(self.info, warnings=self.info.warnings + tuple(messages))
        return replace(self, info=info)


def voxel_sizes(affine: np.ndarray) -> tuple[float, float, float]:
    """Length in mm of one voxel step along each array axis."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))


def index_to_lps(affine: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Map voxel indices ``(..., 3)`` in array axis order to LPS mm ``(..., 3)``."""
    index = np.asarray(index, dtype=float)
    return index @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def lps_to_index(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map LPS mm points ``(..., 3)`` to fractional voxel indices in array axis order."""
    inv = np.linalg.inv(np.asarray(affine, dtype=float))
    points = np.asarray(points, dtype=float)
    return points @ inv[:3, :3].T + inv[:3, 3]


def obliquity_deg(affine: np.ndarray) -> float:
    """Largest angle between an array axis and the patient axis nearest to it, degrees.

    0 for axial, sagittal and coronal scans (whatever their axis order or
    direction); 45 for a series rotated 45 degrees in-plane.
    """
    m = np.asarray(affine, dtype=float)[:3, :3]
    cosines = np.abs(m / np.linalg.norm(m, axis=0)).max(axis=0)
    return float(np.degrees(np.arccos(np.clip(cosines, 0.0, 1.0))).max())


def axis_codes(affine: np.ndarray) -> str:
    """Which patient direction each array axis points to most, e.g. ``"SPL"``.

    Letters are the LPS+ names of the direction of increasing index: L/R, P/A, S/I.
    """
    names = (("L", "R"), ("P", "A"), ("S", "I"))
    codes = []
    m = np.asarray(affine, dtype=float)[:3, :3]
    for col in m.T:
        k = int(np.argmax(np.abs(col)))
        codes.append(names[k][0] if col[k] > 0 else names[k][1])
    return "".join(codes)


def crop_affine(affine: np.ndarray, start: tuple[int, int, int]) -> np.ndarray:
    """Affine of a sub-array whose index 0 lies at ``start`` of the parent array."""
    out = np.array(affine, dtype=float, copy=True)
    out[:3, 3] = index_to_lps(affine, np.asarray(start, dtype=float))
    return out


def reorient(array: np.ndarray, affine: np.ndarray, codes: str = "SPL"):
    """Permute and flip ``array`` (no interpolation) so its axes point along ``codes``.

    Parameters
    ----------
    array : ndarray, shape (n0, n1, n2)
    affine : ndarray, shape (4, 4)
        Voxel index to LPS mm for ``array``.
    codes : str
        Target direction of increasing index per axis, e.g. ``"SPL"`` (the order of a
        standard axial DICOM series: slices towards the head, rows towards the back,
        columns towards the patient's left).

    Returns
    -------
    out : ndarray
        A view of ``array`` in the target orientation.
    out_affine : ndarray, shape (4, 4)
        Voxel index to LPS mm for ``out``; every voxel keeps its LPS position.
    undo : callable
        ``undo(x)`` maps an array on the new grid back to the original grid.
    """
    src = axis_codes(affine)
    opposite = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}
    perm, flips = [], []
    for c in codes:
        if c in src:
            perm.append(src.index(c))
            flips.append(False)
        elif opposite[c] in src:
            perm.append(src.index(opposite[c]))
            flips.append(True)
        else:
            raise ValueError(f"cannot reorient {src} to {codes}")
    if sorted(perm) != [0, 1, 2]:
        raise ValueError(f"oblique orientation {src} cannot be reoriented to {codes}")
    out = np.transpose(array, perm)
    m = np.asarray(affine, dtype=float)
    new = np.eye(4)
    new[:3, :3] = m[:3, perm]
    new[:3, 3] = m[:3, 3]
    slicer = []
    for ax, flip in enumerate(flips):
        if flip:
            n = out.shape[ax]
            new[:3, 3] = new[:3, 3] + new[:3, ax] * (n - 1)
            new[:3, ax] = -new[:3, ax]
            slicer.append(slice(None, None, -1))
        else:
            slicer.append(slice(None))
    out = out[tuple(slicer)]
    inverse_perm = np.argsort(perm)

    def undo(x: np.ndarray) -> np.ndarray:
        return np.transpose(x[tuple(slicer)], inverse_perm)

    return out, new, undo
