"""Pictures of prints without a GPU: an orthographic z-buffer renderer in numpy.

Every triangle is sampled on a barycentric grid fine enough that neighbouring
samples land less than a pixel apart; each pixel keeps the nearest sample. That is
exact for the silhouette and the visibility of a closed surface, and it costs the
same for a 20 000-triangle vertebra as for a scaffold of millions of tiny triangles
(which cover a pixel each and need one sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .png import png_bytes

#: Camera direction (from the object towards the camera) of print thumbnails:
#: patient's left, anterior, superior (LPS); the head is up.
ANTEROLATERAL_VIEW = (0.62, -0.66, 0.42)
SUPERIOR = (0.0, 0.0, 1.0)
#: Largest sample spacing on a triangle, pixels.
SAMPLE_PX = 0.6


@dataclass(frozen=True)
class Camera:
    """An orthographic view: ``toward`` points from the object to the camera, ``up``
    is the screen's up direction (both LPS, need not be unit or orthogonal)."""

    toward: tuple = ANTEROLATERAL_VIEW
    up: tuple = SUPERIOR

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit (right, up, toward-camera) vectors; right-handed."""
        back = np.asarray(self.toward, float)
        back /= np.linalg.norm(back)
        up = np.asarray(self.up, float)
        up = up - (up @ back) * back
        up /= np.linalg.norm(up)
        right = np.cross(up, back)
        return right, up, back


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    size: int = 256,
    camera: Camera = Camera(),
    colour=(200, 190, 170),
    background=(255, 255, 255),
    margin: float = 0.06,
) -> np.ndarray:
    """Shaded orthographic picture of a triangle mesh.

    Parameters
    ----------
    vertices : ndarray, shape (n, 3)
        Mesh vertices, mm (any frame; the camera is given in the same frame).
    faces : ndarray, shape (m, 3)
    size : int
        Width and height of the picture, pixels.
    camera : Camera
    colour, background : tuple of 3 ints
        RGB of the surface (lit) and of empty pixels.
    margin : float
        Empty border as a fraction of ``size``.

    Returns
    -------
    ndarray, shape (size, size, 3), uint8
        Row 0 at the top (screen up = ``camera.up``), column 0 at the left.
    """
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = background
    vertices = np.asarray(vertices, float)
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return image
    right, up, back = camera.axes()
    screen = np.stack([vertices @ right, vertices @ up, vertices @ back], axis=1)
    lo, hi = screen[:, :2].min(0), screen[:, :2].max(0)
    scale = (1 - 2 * margin) * size / max(float((hi - lo).max()), 1e-9)
    centre = (lo + hi) / 2
    # Pixel coordinates: column grows to the right, row grows downwards.
    col = (screen[:, 0] - centre[0]) * scale + size / 2
    row = size / 2 - (screen[:, 1] - centre[1]) * scale
    px = np.stack([row, col, screen[:, 2]], axis=1)

    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normal, axis=1)
    normal = np.divide(normal, length[:, None], out=np.zeros_like(normal), where=length[:, None] > 0)
    # Light from the camera and a little above it; both faces lit alike, so a mesh
    # with flipped normals still shows its shape.
    light = back + 0.5 * up
    light /= np.linalg.norm(light)
    shade = 0.25 + 0.75 * np.abs(normal @ light)

    corners = px[faces]  # (m, 3, 3)
    edge = np.max(np.linalg.norm(corners[:, [1, 2, 0], :2] - corners[:, :, :2], axis=2), axis=1)
    steps = np.clip(np.ceil(edge / SAMPLE_PX), 1, 512).astype(np.int64)
    best_depth = np.full(size * size, np.inf)
    best_shade = np.zeros(size * size)
    for n in np.unique(steps):
        chosen = np.flatnonzero(steps == n)
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = i + j <= n
        weights = np.stack([n - i[keep] - j[keep], i[keep], j[keep]], axis=1) / n  # (k, 3)
        # Chunks keep the sample arrays near 4 million points.
        per = max(1, 4_000_000 // len(weights))
        for start in range(0, len(chosen), per):
            part = chosen[start : start + per]
            points = np.einsum("kc,tcd->tkd", weights, corners[part])  # (t, k, 3)
            r = np.floor(points[..., 0]).astype(np.int64)
            c = np.floor(points[..., 1]).astype(np.int64)
            inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
            pix = (r * size + c)[inside]
            depth = -points[..., 2][inside]  # smaller = nearer
            tone = np.broadcast_to(shade[part][:, None], inside.shape)[inside]
            _keep_nearest(pix, depth, tone, best_depth, best_shade)
    hit = np.isfinite(best_depth)
    lit = np.clip(np.asarray(colour, float)[None, :] * best_shade[hit, None], 0, 255)
    flat = image.reshape(-1, 3)
    flat[hit] = np.rint(lit).astype(np.uint8)
    return image


def _keep_nearest(pix, depth, tone, best_depth, best_shade) -> None:
    """Z-buffer update: each pixel keeps the shade of its nearest sample."""
    if len(pix) == 0:
        return
    np.minimum.at(best_depth, pix, depth)
    nearest = depth <= best_depth[pix]
    best_shade[pix[nearest]] = tone[nearest]


def print_thumbnail(vertices: np.ndarray, faces: np.ndarray, colour, size: int = 256) -> bytes:
    """PNG of a print seen from the patient's front left and above (head up).

    Vertices in LPS mm. The view is fixed, so a mirrored model looks mirrored.
    """
    return png_bytes(render_mesh(vertices, faces, size=size, colour=colour))
