"""The real clinical J2K series reads to its README's values and gives printable meshes."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.exchange.stl import read_stl
from pipeline.jobs import run_model

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_ct_siemens_j2k"


@pytest.mark.skipif(not REAL.is_dir(), reason="shared real CT not present beside the checkout")
def test_real_j2k_series_gives_watertight_vertebrae(tmp_path):
    manifest = run_model(REAL, tmp_path)
    assert manifest["input"]["shape"] == [20, 512, 512]
    assert np.allclose(manifest["input"]["spacing_mm"], [2.0, 0.9765625, 0.9765625])
    assert manifest["input"]["orientation"] == "SPL"
    # The slab shows T11 and T12 (its README): the lower part of T11 is cut by the
    # top slice, so it is a part of a vertebra, but both bodies are there.
    assert len(manifest["prints"]) == 2
    volumes = []
    for p in manifest["prints"]:
        mesh = read_stl(tmp_path / p["file"])
        volumes.append(mesh.volume)
        assert mesh.is_watertight and mesh.volume > 5_000  # a vertebra's part, not a fragment
        lo, hi = np.asarray(p["bbox_mm"]["min"]), np.asarray(p["bbox_mm"]["max"])
        # Inside the scanned slab (z -804.5..-766.5 mm) and the field of view.
        # A cut vertebra is closed where the edge slice ends: half a slice (1 mm) out.
        assert lo[2] >= -804.5 - 1.2 and hi[2] <= -766.5 + 1.2
        assert lo[0] >= -249.6 and hi[0] <= -249.5 + 512 * 0.9765625
    # The whole T12 in view (its body solid, marrow filled): TotalSegmentator's labels
    # for this series give it 45 cm³ (bench/bench_real_ct.py), a shell would be half.
    assert max(volumes) > 35_000
    # No level names without a landmark in view: a 40 mm slab shows neither sacrum nor T12.
    assert not manifest["segmentation"]["levels_named"]
