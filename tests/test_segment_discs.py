"""A disc's extent column by column, on straightened cross-sections with an exact truth.

Two vertebral bodies meet at a disc whose mid-plane is flat but whose endplates are
concave: the disc is 6 mm thick at the rim and bulges 3 mm further into each body at
the centre, as real lumbar endplates do. A slab fitted to it (7 mm, and its 0.75 mm
fringe) is too thin at the centre and too thick at the rim; the column-wise extent must
follow the endplates. Where an osteoporotic endplate is too faint to be seen, the
slab (and its blurred fringe) is all there is to go on.
"""

from __future__ import annotations

import numpy as np

from pipeline.segment.column import StraightSpine
from pipeline.segment.endplates import DiscPlane, disc_sections

MID, RIM_HALF, BULGE = 50, 3.0, 3.0  # mid-plane section; half-thickness at the rim; bulge at the centre (mm)
DISC_HU, PLATE_HU, MARROW_HU = 80.0, 600.0, 250.0


def straight_spine(plate_hu=PLATE_HU, marrow_hu=MARROW_HU):
    """Cross-sections at 1 mm: ``(StraightSpine, true disc half-thickness per column)``."""
    v = np.arange(0.0, 61.0)
    u = np.arange(-40.0, 41.0)
    k = np.arange(100)
    # Elliptic body 40 x 30 mm centred 30 mm in front of the canal.
    r2 = ((v[:, None] - 30.0) / 15.0) ** 2 + (u[None, :] / 20.0) ** 2
    half = np.where(r2 <= 1.0, RIM_HALF + BULGE * (1.0 - r2), np.nan)
    d = np.abs(k[:, None, None] - MID)
    hu = np.where(d <= half, DISC_HU, np.where(d <= half + 1.0, plate_hu, marrow_hu))
    hu = np.where(np.isnan(half)[None], -50.0, hu).astype(np.float32)  # fat around the body
    n = len(k)
    axes = np.zeros((n, 3))
    st = StraightSpine(hu, np.ones(hu.shape, bool), k.astype(float), axes, axes, axes, axes, v, u)
    return st, half


def _extent(marked: np.ndarray) -> np.ndarray:
    """Per column: half the number of sections marked (the disc is symmetric here)."""
    return marked.sum(axis=0) / 2.0


def test_disc_follows_concave_endplates_not_its_slab():
    st, half = straight_spine()
    region = ~np.isnan(half)
    slab = DiscPlane(float(MID), 0.0, 0.0, 3.5)
    marked = disc_sections(st, [slab], 1.0, region, margin=0.75)
    truth = np.floor(half) + 0.5  # sections within the true half-thickness, per side
    error = _extent(marked)[region] - truth[region]
    # Every column of the body within one section of the truth on each side, and most
    # exactly (measured: 95 %; one section short where the true edge lies just past a
    # section, whose blur then reads brighter than half-way).
    assert np.abs(error).max() <= 1.0 and (error == 0).mean() >= 0.9
    got = _extent(marked)
    centre, rim = region & (half >= 5.5), region & (half < 3.5)
    # The slab (4.5 sections a side with its fringe) would miss the bulge at the centre
    # and cut the endplate at the rim; the columns do neither.
    assert got[centre].min() >= 5.5 and got[rim].max() <= 3.5
    assert not marked[:, ~region].any()


def test_faint_osteoporotic_endplate_keeps_the_slab():
    # The endplate is only 30 HU above a dim marrow and below cortex brightness: no
    # column can say where the disc ends, so each keeps the slab and its fringe.
    st, half = straight_spine(plate_hu=130.0, marrow_hu=100.0)
    region = ~np.isnan(half)
    slab = DiscPlane(float(MID), 0.0, 0.0, 4.0)
    marked = disc_sections(st, [slab], 1.0, region, margin=0.75)
    ks = np.arange(st.hu.shape[0])
    expected = np.abs(ks - MID) <= 4.75
    assert (marked[:, region] == expected[:, None]).all()
