"""Bad input gives one InputError line naming the file or folder and the problem."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from pipeline.errors import InputError
from pipeline.exchange.dicom_read import list_series
from pipeline.exchange.scan import load_scan


def _error(path, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        load_scan(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_path(tmp_path):
    msg = _error(tmp_path / "nowhere")
    assert msg == f"{tmp_path / 'nowhere'}: no such file or folder"


def test_empty_folder(tmp_path):
    (tmp_path / ".hidden").write_text("x")  # hidden files do not count
    assert _error(tmp_path) == f"{tmp_path}: folder is empty"


def test_folder_without_dicom(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    msg = _error(tmp_path)
    assert msg.startswith(str(tmp_path)) and "no DICOM images found" in msg
    assert "2 non-DICOM files" in msg and "NIfTI" not in msg
    (tmp_path / "ct.nii.gz").write_bytes(b"\x1f\x8b" + bytes(30))
    assert "give the path of a NIfTI file itself" in _error(tmp_path)


def test_only_mr(blobs, write_ct, tmp_path):
    write_ct(blobs.hu, blobs.affine, extra={"Modality": "MR"})
    msg = _error(tmp_path)
    assert msg.startswith(str(tmp_path)) and "no CT series found" in msg and "MR (1 series)" in msg


def test_single_slice(blobs, write_ct, tmp_path):
    write_ct(blobs.hu[:1], blobs.affine)
    msg = _error(tmp_path / "series")
    assert "single image" in msg and "at least 2 slices" in msg


def test_duplicate_position_with_different_pixels(blobs, write_ct, edit_dicom):
    paths = write_ct(blobs.hu, blobs.affine)
    clash = paths[0].parent / "clash"
    shutil.copy(paths[6], clash)
    stored = blobs.hu[6].astype(np.int32) + 1024
    stored[3, 3] += 50
    edit_dicom(clash, pixels=stored.astype(np.uint16))
    msg = _error(paths[0].parent)
    assert "two different images at the same slice position (-12.00, -20.00, -115.00) mm" in msg
    assert "IM00007" in msg and "clash" in msg


def test_truncated_file_is_named(blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine)
    data = paths[9].read_bytes()
    paths[9].write_bytes(data[:-700])
    msg = _error(paths[0].parent)
    assert msg == f"{paths[9]}: pixel data is shorter than expected (truncated or corrupt file)"


def test_unsupported_transfer_syntax(blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine)
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(paths[2])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
    ds.save_as(paths[2])
    msg = _error(paths[0].parent)
    assert msg.startswith(str(paths[2])) and "MPEG2" in msg and "not supported" in msg


def test_missing_decoder_names_the_plugin(blobs, write_ct, monkeypatch):
    from pydicom.pixels.decoders.base import Decoder

    paths = write_ct(blobs.hu, blobs.affine, transfer_syntax="j2k_lossless")
    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    msg = _error(paths[0].parent)
    assert "install the 'pylibjpeg-openjpeg' package" in msg and "JPEG 2000" in msg


def test_series_selector_that_matches_nothing(blobs, write_ct, tmp_path):
    write_ct(blobs.hu, blobs.affine, extra={"SeriesNumber": 4})
    (summary,) = list_series(tmp_path)
    msg = _error(tmp_path, series="abcdef123456")
    assert "'abcdef123456' matches no series" in msg
    assert f"1: {summary.hash} (number 4, CT, 24 images)" in msg
    assert "matches no series" in _error(tmp_path, series=7)


def test_single_non_dicom_file(tmp_path):
    path = tmp_path / "scan.dat"
    path.write_bytes(b"not an image at all" * 20)
    assert _error(path) == f"{path}: not a DICOM file"


def test_series_selector_on_nifti_is_refused(tmp_path):
    from pipeline.exchange.nifti import write_nifti

    path = tmp_path / "ct.nii.gz"
    write_nifti(path, np.linspace(-1000, 1000, 8 * 9 * 10).reshape(8, 9, 10).astype(np.int16), np.eye(4))
    assert "applies to DICOM only" in _error(path, series=1)
