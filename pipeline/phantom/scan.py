"""Synthesise the CT image and its truth maps from the phantom model.

Per slab of slices: classify every voxel centre; where a tissue boundary passes
within the voxel, classify ``supersample**3`` sub-points instead and average their
HU (partial volume). The truth label / defect of a voxel is the structure holding
at least half of its sub-points (exactly half counts when it also holds the
centre). Then a Gaussian point-spread function (scanner blur) and spatially
correlated Gaussian noise, as on reconstructed CT. Slabs overlap by the blur's
reach, and every random number is a function of the seed and the voxel or slice
index only, so the result does not depend on the slab size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

from ..volume import CTVolume, ScanInfo
from .tissues import INDEX, KVP, NOISE_CORRELATION_PX, PSF_SIGMA_MM, PhantomModel
from .truth import build_truth

HU_MIN, HU_MAX = -1024, 3071


@dataclass
class Phantom:
    """A synthetic CT scan with its exact truth.

    Attributes
    ----------
    volume : CTVolume
        int16 HU, array (slice, row, column), axis codes "SPL".
    labels : ndarray of int16, same shape
        Vertebra labels (VerSe values; 0 elsewhere, including ribs and pelvis).
    defect : ndarray of bool, same shape
        The L1 fracture defect (intact minus collapsed body).
    model : PhantomModel
        The signed-distance anatomy (``model.spine.vertebra_sdf(level, points)``).
    truth : dict
        JSON-serialisable measurements, see :func:`.truth.build_truth`.
    """

    volume: CTVolume
    labels: np.ndarray
    defect: np.ndarray
    model: PhantomModel
    truth: dict = field(default_factory=dict)


def _hash_unit(ix, iy, iz, seed: int) -> np.ndarray:
    """Deterministic pseudo-random values in [-1, 1) for integer lattice points."""
    with np.errstate(over="ignore"):
        k = (
            ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            ^ iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
            ^ iz.astype(np.uint64) * np.uint64(0x165667B19E3779F9)
            ^ np.uint64(seed & 0xFFFFFFFF) * np.uint64(0xD6E8FEB86659FD93)
        )
        k ^= k >> np.uint64(30)
        k *= np.uint64(0xBF58476D1CE4E5B9)
        k ^= k >> np.uint64(27)
        k *= np.uint64(0x94D049BB133111EB)
        k ^= k >> np.uint64(31)
    return (k >> np.uint64(11)).astype(np.float64) * (2.0 / 2**53) - 1.0


def value_noise(points: np.ndarray, cell_mm: float, seed: int) -> np.ndarray:
    """Smooth random field (trilinear value noise on a ``cell_mm`` lattice), ~unit std."""
    g = points / cell_mm
    i0 = np.floor(g).astype(np.int64)
    t = g - i0
    s = t * t * (3 - 2 * t)
    out = np.zeros(len(points))
    for dx in (0, 1):
        wx = s[:, 0] if dx else 1 - s[:, 0]
        for dy in (0, 1):
            wy = s[:, 1] if dy else 1 - s[:, 1]
            for dz in (0, 1):
                wz = s[:, 2] if dz else 1 - s[:, 2]
                out += wx * wy * wz * _hash_unit(i0[:, 0] + dx, i0[:, 1] + dy, i0[:, 2] + dz, seed)
    return out * 2.6


def _texture(points, seed, fine: bool) -> np.ndarray:
    if fine:
        return 0.75 * value_noise(points, 1.4, seed) + 0.55 * value_noise(points, 0.7, seed + 1)
    return value_noise(points, 14.0, seed + 2) * 0.8 + value_noise(points, 5.0, seed + 3) * 0.5


@lru_cache(maxsize=1)
def default_model() -> PhantomModel:
    """The phantom's anatomy (fixed; only the scan and the noise vary), built once."""
    return PhantomModel()


def default_geometry(model: PhantomModel, matrix, pixel_mm, n_slices, slice_mm):
    """Origin (IPP of slice 0) that centres the spine and keeps the table in view."""
    rows, cols = matrix
    spine = model.spine
    lo, hi = spine.bounds()
    x_c = float(np.mean([f.origin[0] for f in spine.frames.values()]))
    y_bottom = model.body.table.y0 + 36.0 + 4.0  # table underside plus a little air
    z_c = 0.5 * (spine.frames["T12"].origin[2] + spine.frames["S1"].origin[2]) - 4.0
    x0 = x_c - (cols - 1) / 2 * pixel_mm
    y0 = y_bottom - (rows - 1) * pixel_mm
    z0 = z_c - (n_slices - 1) / 2 * slice_mm
    return np.round(np.array([x0, y0, z0]), 3)


def _affine(origin, pixel_mm, slice_mm) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, 0] = (0.0, 0.0, slice_mm)
    aff[:3, 1] = (0.0, pixel_mm, 0.0)
    aff[:3, 2] = (pixel_mm, 0.0, 0.0)
    aff[:3, 3] = origin
    return aff


#: Voxels of a tile (slices, rows, columns) classified together.
TILE = (4, 32, 64)


def _tile_order(nk, rows, cols) -> np.ndarray:
    """Permutation of raster-ordered voxels that groups them into compact tiles."""
    k, i, j = np.meshgrid(
        np.arange(nk) // TILE[0], np.arange(rows) // TILE[1], np.arange(cols) // TILE[2], indexing="ij"
    )
    ni, nj = -(-rows // TILE[1]), -(-cols // TILE[2])
    key = (k * ni + i) * nj + j
    return np.argsort(key.ravel(), kind="stable")


def _centres(affine, k0, k1, rows, cols) -> np.ndarray:
    """LPS centres of the voxels of slices ``k0 .. k1-1`` in raster order, (N, 3)."""
    a = np.asarray(affine, float)
    out = np.empty((k1 - k0, rows, cols, 3))
    for d in range(3):
        out[..., d] = (
            a[d, 3]
            + a[d, 0] * np.arange(k0, k1)[:, None, None]
            + a[d, 1] * np.arange(rows)[None, :, None]
            + a[d, 2] * np.arange(cols)[None, None, :]
        )
    return out.reshape(-1, 3)


def _sub_offsets(affine, s: int) -> np.ndarray:
    f = (np.arange(s) + 0.5) / s - 0.5
    g = np.stack(np.meshgrid(f, f, f, indexing="ij"), -1).reshape(-1, 3)
    return g @ affine[:3, :3].T


def synthesise_slab(model: PhantomModel, affine, k0, k1, rows, cols, *, supersample=2, seed=0):
    """Noise-free, unblurred HU, labels and defect for slices ``k0 .. k1-1``."""
    order = _tile_order(k1 - k0, rows, cols)
    P = _centres(affine, k0, k1, rows, cols)[order]
    sp = np.abs(affine[:3, :3]).sum(axis=0)
    half_diag = 0.5 * float(np.linalg.norm(sp))
    band = 1.15 * half_diag
    tissue, bone, near = model.classify(P, band=band)
    base_hu = model.hu[tissue].copy()
    is_trab = np.isin(tissue, (INDEX["trabecular"],))
    base_hu[is_trab] = model.bone_marrow_hu[bone[is_trab]]
    labels = model.bone_labels[bone]
    n = len(P)
    fine = np.zeros(n)
    coarse = np.zeros(n)
    need_f = near | (model.fine_amp[tissue] > 0)
    need_c = near | (model.coarse_amp[tissue] > 0)
    if need_f.any():
        fine[need_f] = _texture(P[need_f], seed, True)
    if need_c.any():
        coarse[need_c] = _texture(P[need_c], seed, False)
    hu = base_hu + model.fine_amp[tissue] * fine + model.coarse_amp[tissue] * coarse
    s3 = supersample**3
    nb = int(near.sum())
    if nb and supersample > 1:
        offs = _sub_offsets(affine, supersample)
        sub = (P[near][:, None, :] + offs[None]).reshape(-1, 3)
        t_s, b_s, _ = model.classify(sub)
        h = model.hu[t_s].copy()
        trab = t_s == INDEX["trabecular"]
        h[trab] = model.bone_marrow_hu[b_s[trab]]
        h = h.reshape(nb, s3)
        t_s = t_s.reshape(nb, s3)
        h = h + model.fine_amp[t_s] * fine[near][:, None] + model.coarse_amp[t_s] * coarse[near][:, None]
        hu[near] = h.mean(axis=1)
        lab_s = model.bone_labels[b_s].reshape(nb, s3)
        centre = labels[near]
        lab = np.zeros(nb, np.int16)
        for v in np.unique(lab_s):
            if v:
                lab[_majority(lab_s == v, centre == v)] = v
        labels[near] = lab
    # Below S1's lower border the sacrum (S2 on) is bone but no labelled vertebra.
    s1 = model.spine.label_values["S1"]
    below = labels == s1
    if below.any():
        below[below] = model.spine.s1_lower_border.sdf(P[below]) < 0.0
        labels[below] = 0
    defect = _defect_occupancy(model, P, affine, band, supersample)
    shape = (k1 - k0, rows, cols)
    out_hu = np.empty(len(P), np.float32)
    out_lab = np.empty(len(P), np.int16)
    out_def = np.empty(len(P), bool)
    out_hu[order], out_lab[order], out_def[order] = hu, labels, defect
    return out_hu.reshape(shape), out_lab.reshape(shape), out_def.reshape(shape)


def _defect_occupancy(model, P, affine, band, s) -> np.ndarray:
    shape = model.spine.defect
    out = np.zeros(len(P), bool)
    m = shape.near(P, band)
    if not m.any():
        return out
    idx = np.nonzero(m)[0]
    f = shape.sdf(P[idx])
    out[idx] = f < 0
    edge = idx[np.abs(f) < band]
    if edge.size and s > 1:
        sub = (P[edge][:, None, :] + _sub_offsets(affine, s)[None]).reshape(-1, 3)
        inside = (shape.sdf(sub) < 0).reshape(edge.size, -1)
        out[edge] = _majority(inside, out[edge])
    return out


def _majority(inside: np.ndarray, centre_inside: np.ndarray) -> np.ndarray:
    """Voxels whose occupancy is at least one half: more than half of the sub-samples
    inside, or exactly half with the centre inside (an unbiased tie-break; counting
    every tie as inside would grow thin structures by ~0.2 mm per surface)."""
    count = 2 * inside.sum(axis=1)
    n = inside.shape[1]
    return (count > n) | ((count == n) & centre_inside)


def _noise_slice(seed: int, k: int, rows: int, cols: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 0x5EED, k])
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    if NOISE_CORRELATION_PX > 0:
        w = gaussian_filter(w, NOISE_CORRELATION_PX, mode="wrap")
        w /= _noise_gain()
    return w


def _noise_gain() -> float:
    """Std of unit white noise after the correlation filter."""
    d = np.zeros((41, 41))
    d[20, 20] = 1.0
    return float(np.sqrt((gaussian_filter(d, NOISE_CORRELATION_PX, mode="wrap") ** 2).sum()))


def make_phantom(
    *,
    matrix=(240, 232),
    pixel_mm=0.8,
    n_slices=212,
    slice_mm=1.25,
    origin=None,
    noise_hu=20.0,
    supersample=2,
    seed=0,
    slab_voxels=2_000_000,
    on_progress=None,
) -> Phantom:
    """Generate the lumbar-spine CT phantom and its truth.

    The defaults give the bundled sample: a targeted spine reconstruction (0.8 mm
    pixels, 1.25 mm slices) from T12 with the proximal 12th ribs to S2 and the iliac
    wings at the sacroiliac joints, table included.

    Parameters
    ----------
    matrix : (int, int)
        (rows, columns) of each slice.
    pixel_mm, slice_mm : float
        In-plane pixel size and slice spacing, mm.
    n_slices : int
    origin : array_like of 3 floats, optional
        ImagePositionPatient of slice 0 (LPS mm); default centres the spine and keeps
        the table in the field of view.
    noise_hu : float
        Standard deviation of the image noise, HU.
    supersample : int
        Sub-samples per axis in voxels crossed by a tissue boundary (partial volume).
    seed : int
        Seeds the noise and the bone texture; same seed, same image, bit for bit.
    slab_voxels : int
        Voxels processed at once (memory ~ 400 bytes per voxel of a slab).
    on_progress : callable, optional
        ``on_progress(done_slices, n_slices)``.

    Returns
    -------
    Phantom
    """
    rows, cols = (int(v) for v in matrix)
    n_slices = int(n_slices)
    model = default_model()
    if origin is None:
        origin = default_geometry(model, (rows, cols), pixel_mm, n_slices, slice_mm)
    affine = _affine(np.asarray(origin, float), float(pixel_mm), float(slice_mm))
    sig = PSF_SIGMA_MM / np.array([slice_mm, pixel_mm, pixel_mm])
    halo = int(np.ceil(3.0 * sig[0])) + 1
    hu = np.empty((n_slices, rows, cols), np.int16)
    labels = np.empty((n_slices, rows, cols), np.int16)
    defect = np.empty((n_slices, rows, cols), bool)
    per = max(1, slab_voxels // (rows * cols))
    for k0 in range(0, n_slices, per):
        k1 = min(n_slices, k0 + per)
        a, b = max(0, k0 - halo), min(n_slices, k1 + halo)
        img, lab, dfc = synthesise_slab(model, affine, a, b, rows, cols, supersample=supersample, seed=seed)
        img = gaussian_filter(img, sig, mode="nearest", truncate=3.0)[k0 - a : k1 - a]
        for k in range(k0, k1):
            img[k - k0] += noise_hu * _noise_slice(seed, k, rows, cols)
        hu[k0:k1] = np.clip(np.rint(img), HU_MIN, HU_MAX).astype(np.int16)
        labels[k0:k1] = lab[k0 - a : k1 - a]
        defect[k0:k1] = dfc[k0 - a : k1 - a]
        if on_progress is not None:
            on_progress(k1, n_slices)
    digest = hashlib.sha256(hu.tobytes()).hexdigest()[:12]
    info = ScanInfo(
        series_hash=digest,
        modality="CT",
        source_format="phantom",
        n_files=0,
        description="osteoprint lumbar phantom",
        kvp=KVP,
        contrast_stated=False,
    )
    volume = CTVolume(hu=hu, affine=affine, info=info)
    truth = build_truth(model, volume, labels, defect, noise_hu=noise_hu, supersample=supersample, seed=seed)
    return Phantom(volume=volume, labels=labels, defect=defect, model=model, truth=truth)
