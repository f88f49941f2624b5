"""NIfTI input through load_scan: same LPS geometry as the DICOM route, HU checked."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.exchange.nifti import write_nifti
from pipeline.exchange.scan import load_scan


def test_nifti_ct_keeps_lps_positions(blobs, tmp_path, same_voxels, find_blob):
    path = tmp_path / "ct.nii.gz"
    write_nifti(path, blobs.hu, blobs.affine)
    calls = []
    vol, report = load_scan(path, on_progress=lambda d, t: calls.append((d, t)))
    same_voxels(vol.hu, vol.affine, blobs.hu, blobs.affine)
    for i in range(len(blobs.blobs)):
        truth = blobs.blob_lps(i)
        assert np.linalg.norm(find_blob(vol.hu, vol.affine, truth) - truth) <= 0.01
    assert vol.info.source_format == "nifti" and vol.hu.dtype == np.int16
    assert report.skipped == [] and report.series[0].chosen and calls == [(1, 1)]


def test_nifti_and_dicom_of_one_scan_agree(blobs, tmp_path, write_ct, same_voxels):
    from pipeline.exchange.dicom_read import load_series

    dicom, _ = load_series(write_ct(blobs.hu, blobs.affine)[0].parent)
    write_nifti(tmp_path / "ct.nii", dicom.hu, dicom.affine)
    nifti, _ = load_scan(tmp_path / "ct.nii")
    same_voxels(nifti.hu, nifti.affine, dicom.hu, dicom.affine)


def test_non_hu_nifti_is_refused(tmp_path, blobs):
    path = tmp_path / "mask.nii.gz"
    write_nifti(path, (blobs.hu > 300).astype(np.uint8), blobs.affine)
    with pytest.raises(InputError, match="do not look like CT Hounsfield units") as info:
        load_scan(path)
    assert str(info.value).startswith(str(path))
