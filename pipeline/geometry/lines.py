"""Distances between line segments (screw axes, sleeve axes), in millimetres."""

from __future__ import annotations

import numpy as np


def segment_distance(p0, p1, q0, q1) -> float:
    """Smallest distance (mm) between segments ``p0``-``p1`` and ``q0``-``q1``.

    One segment is sampled at 801 points against the exact point-to-segment
    distance of the other: within a micrometre for screws (0.05 mm steps on a
    40 mm axis, and the distance is flat at its minimum), and free of the closed
    form's special cases for parallel segments.
    """
    p0, p1, q0, q1 = (np.asarray(v, float) for v in (p0, p1, q0, q1))
    ts = np.linspace(0.0, 1.0, 801)
    pts = p0 + ts[:, None] * (p1 - p0)
    e = q1 - q0
    u = np.clip(((pts - q0) @ e) / max(e @ e, 1e-12), 0.0, 1.0)
    return float(np.min(np.linalg.norm(pts - (q0 + u[:, None] * e), axis=1)))
