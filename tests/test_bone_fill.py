"""Marrow filling on synthetic vertebrae built the way clinical CT shows them.

Each case is a stack of axial slices with a known truth: which voxels are marrow
(to be filled), which are canal or disc (to stay open).
"""

import numpy as np
import pytest

from pipeline.segment.marrow import fill_marrow_slices

SPACING = (2.0, 0.8, 0.8)
CORTEX_HU, MARROW_HU, CSF_HU, FAT_HU, MUSCLE_HU, DISC_HU = 700.0, 140.0, 15.0, -100.0, 45.0, 90.0


def _grid(n_slices=16, n=120):
    yy, xx = np.mgrid[0:n, 0:n] * SPACING[1]
    return n_slices, yy, xx


def _vertebra_slice(yy, xx, posterior_gap_mm):
    """One axial slice: an oval body with a 1.6 mm cortex, a canal behind it ringed by
    a thin arch, soft tissue and fat around. The body's posterior wall and the arch
    each have a gap of ``posterior_gap_mm`` (basivertebral foramen, interlaminar
    space), so body, canal and outside connect at any bone threshold.
    """
    hu = np.full(yy.shape, FAT_HU)
    hu[(yy - 48) ** 2 / 30**2 + (xx - 48) ** 2 / 40**2 < 1] = MUSCLE_HU
    body = (yy - 35) ** 2 / 14**2 + (xx - 48) ** 2 / 18**2 < 1
    inner = (yy - 35) ** 2 / 12.4**2 + (xx - 48) ** 2 / 16.4**2 < 1
    canal_outer = (yy - 60) ** 2 + (xx - 48) ** 2 < 10.5**2
    canal = (yy - 60) ** 2 + (xx - 48) ** 2 < 9**2
    hu[canal_outer] = CORTEX_HU
    hu[canal] = CSF_HU
    hu[body] = CORTEX_HU
    hu[inner] = MARROW_HU
    gap = np.abs(xx - 48) < posterior_gap_mm / 2
    hu[gap & (yy > 46) & (yy < 52)] = CSF_HU  # posterior body wall open to the canal
    hu[gap & (yy > 68) & (yy < 72)] = FAT_HU  # arch open to the outside
    # The canal's truth leaves out the one-voxel band against its bony ring: on a
    # scan that band is partial volume, half bone, and surface refinement decides it.
    canal_core = (yy - 60) ** 2 + (xx - 48) ** 2 < (9 - SPACING[1]) ** 2
    return hu, inner & ~(gap & (yy > 46)), canal_core


def test_marrow_is_filled_and_canal_kept_where_cortex_and_arch_are_open():
    n_slices, yy, xx = _grid()
    hu2, marrow2, canal2 = _vertebra_slice(yy, xx, posterior_gap_mm=8.0)
    rng = np.random.default_rng(0)
    hu = np.stack([hu2] * n_slices) + rng.normal(0, 15, (n_slices,) + hu2.shape)
    mask = hu >= 226
    filled = fill_marrow_slices(mask, hu, SPACING)
    marrow = np.stack([marrow2] * n_slices)
    canal = np.stack([canal2] * n_slices)
    # Truth: the marrow is bone, the canal is not (a closing alone bridges neither
    # 8 mm gap, and filling holes alone finds no hole at all).
    assert filled[marrow].mean() > 0.97
    assert filled[canal].mean() < 0.02
    assert not (filled & ~mask)[:, yy.shape[0] - 10 :, :].any()  # nothing outside the arch


def test_a_disc_ringed_by_its_endplate_rim_is_not_marrow():
    n_slices, yy, xx = _grid(n_slices=24)
    body_hu, marrow2, _ = _vertebra_slice(yy, xx, posterior_gap_mm=0.0)
    # Slices 10-13 (8 mm) are a disc: same outline (the rim reads as bone), disc HU
    # inside. Above and below: marrow.
    disc_hu = body_hu.copy()
    disc_hu[marrow2] = DISC_HU
    rng = np.random.default_rng(1)
    hu = np.stack([disc_hu if 10 <= k < 14 else body_hu for k in range(n_slices)])
    hu = hu + rng.normal(0, 15, hu.shape)
    filled = fill_marrow_slices(hu >= 226, hu, SPACING)
    in_body = [filled[k][marrow2].mean() for k in range(n_slices)]
    assert min(in_body[:8] + in_body[16:]) > 0.97  # marrow well away from the disc
    assert max(in_body[10:14]) < 0.05  # the disc stays open: the bodies stay apart


@pytest.mark.parametrize("axis", [0, 2])
def test_fill_follows_the_slice_axis(axis):
    n_slices, yy, xx = _grid()
    hu2, marrow2, canal2 = _vertebra_slice(yy, xx, posterior_gap_mm=8.0)
    hu = np.moveaxis(np.stack([hu2] * n_slices), 0, axis)
    spacing = list(SPACING[1:])
    spacing.insert(axis, SPACING[0])
    filled = np.moveaxis(fill_marrow_slices(hu >= 226, hu, spacing, axis=axis), axis, 0)
    assert filled[:, marrow2].mean() > 0.97 and filled[:, canal2].mean() < 0.02
