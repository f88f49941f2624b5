"""scipy.ndimage filters run on slabs in parallel threads, with identical results.

scipy's filters release the GIL but use one core. Cut along axis 0 into slabs that
overlap by the filter's reach, filter each in its own thread and keep each slab's
interior: every output voxel then sees exactly the input it would have seen in one
call, so results are bit-identical to ``scipy.ndimage`` (tests check this).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage

from ..parallel import MAX_WORKERS, workers

#: Below this many voxels the thread start-up costs more than it saves.
_MIN_PARALLEL_VOXELS = 2_000_000


def _by_slabs(fn, image: np.ndarray, reach: int, out_dtype) -> np.ndarray:
    n = min(workers(), MAX_WORKERS)
    length = image.shape[0]
    if n == 1 or image.size < _MIN_PARALLEL_VOXELS or length < 4 * (reach + 1) * n:
        return fn(image)
    cuts = np.linspace(0, length, n + 1).astype(int)
    out = np.empty(image.shape, dtype=out_dtype)

    def one(i):
        a, b = int(cuts[i]), int(cuts[i + 1])
        lo, hi = max(a - reach, 0), min(b + reach, length)
        out[a:b] = fn(image[lo:hi])[a - lo : a - lo + (b - a)]

    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(one, range(n)))
    return out


def gaussian(image: np.ndarray, sigma) -> np.ndarray:
    """``ndimage.gaussian_filter(image, sigma)`` (float32 in, float32 out), threaded."""
    image = np.asarray(image, dtype=np.float32)
    sig = np.broadcast_to(np.asarray(sigma, dtype=float), (image.ndim,))
    # scipy truncates the kernel at 4 sigma: radius int(4 * sigma + 0.5).
    reach = int(4.0 * float(sig[0]) + 0.5)
    return _by_slabs(lambda a: ndimage.gaussian_filter(a, tuple(sig)), image, reach, np.float32)


def maximum(image: np.ndarray, size: int) -> np.ndarray:
    """``ndimage.maximum_filter(image, size)`` for a cube of odd ``size``, threaded."""
    return _by_slabs(lambda a: ndimage.maximum_filter(a, size=size), image, size // 2, image.dtype)


def minimum(image: np.ndarray, size: int) -> np.ndarray:
    """``ndimage.minimum_filter(image, size)`` for a cube of odd ``size``, threaded."""
    return _by_slabs(lambda a: ndimage.minimum_filter(a, size=size), image, size // 2, image.dtype)


def binary_dilation(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndimage.binary_dilation(mask, structure)`` (one iteration), threaded."""
    return _binary(ndimage.binary_dilation, mask, structure)


def binary_erosion(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndimage.binary_erosion(mask, structure)`` (one iteration), threaded."""
    return _binary(ndimage.binary_erosion, mask, structure)


def _binary(op, mask, structure) -> np.ndarray:
    structure = np.asarray(structure, dtype=bool)
    return _by_slabs(lambda a: op(a, structure), np.asarray(mask, dtype=bool), structure.shape[0] // 2, bool)
