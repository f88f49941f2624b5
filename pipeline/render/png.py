"""PNG encoding of RGB(A) pictures (Pillow): the one place pictures become bytes."""

from __future__ import annotations

import io

import numpy as np


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``(h, w, 3|4)`` uint8 array as PNG (no metadata, deterministic)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
