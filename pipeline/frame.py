"""A vertebra's own axes in patient space, shared by fracture grading and screw planning.

Spines are lordotic, kyphotic, rotated and scoliotic, so "anterior", "medial" or
"body height" mean directions of the vertebra, not of the scanner. A frame has its
origin at the vertebral body's centre and right-handed unit axes in LPS: x towards
the patient's left, y posterior (in the vertebra's mid-sagittal plane), z superior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VertebraFrame:
    """Origin (LPS mm) and axes (columns: left, posterior, superior unit vectors in LPS)."""

    origin: np.ndarray
    axes: np.ndarray

    def to_local(self, points) -> np.ndarray:
        """LPS mm ``(..., 3)`` to local mm."""
        return (np.asarray(points, float) - self.origin) @ self.axes

    def to_lps(self, local) -> np.ndarray:
        """Local mm ``(..., 3)`` to LPS mm."""
        return np.asarray(local, float) @ self.axes.T + self.origin

    def vector_to_local(self, v) -> np.ndarray:
        """A direction in LPS to local components."""
        return np.asarray(v, float) @ self.axes

    def vector_to_lps(self, v) -> np.ndarray:
        """A direction in local components to LPS."""
        return np.asarray(v, float) @ self.axes.T
