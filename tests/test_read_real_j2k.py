"""A real clinical CT series (Siemens, JPEG 2000 lossless) against independently checked facts."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.exchange.scan import load_scan
from pipeline.volume import axis_codes


@pytest.fixture
def real_series(shared_data):
    folder = shared_data / "real_ct_siemens_j2k"
    if not folder.is_dir():
        pytest.skip(f"shared test data not present at {folder}")
    return folder


def test_real_siemens_j2k_series(real_series):
    vol, report = load_scan(real_series)
    assert vol.shape == (20, 512, 512)
    assert vol.hu.dtype == np.int16
    assert (int(vol.hu.min()), int(vol.hu.max())) == (-1024, 1839)
    z = vol.affine[2, 3] + vol.affine[2, 0] * np.arange(20)
    assert np.allclose(z, np.arange(-804.5, -766.4, 2.0), atol=1e-6)
    assert np.allclose(vol.affine[:3, 3], [-249.51171875, -437.51171875, -804.5], atol=1e-6)
    # Columns: slice step +z 2.0 mm, row step +y, column step +x (IOP 1,0,0,0,1,0).
    expected = np.column_stack([[0, 0, 2.0], [0, 0.9765625, 0], [0.9765625, 0, 0]])
    assert np.allclose(vol.affine[:3, :3], expected, atol=1e-9)
    assert axis_codes(vol.affine) == "SPL"
    assert vol.info.transfer_syntax == "JPEG 2000 Image Compression (Lossless Only)"
    assert vol.info.n_files == 20 and report.skipped == []
    # The anonymiser blanked SeriesInstanceUID: the only thing worth a warning.
    assert len(vol.info.warnings) == 1 and "no SeriesInstanceUID" in vol.info.warnings[0]
    assert "Basel" not in vol.info.description and "FDG" not in vol.info.description
    assert len(vol.info.series_hash) == 12
