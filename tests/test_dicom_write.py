"""The DICOM series writer, checked by reading its files back with plain pydicom."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from pipeline.exchange.dicom_write import TRANSFER_SYNTAXES, write_series


def _read_all(paths):
    """HU volume and per-slice headers via pydicom alone (independent of our reader)."""
    headers = [pydicom.dcmread(p) for p in paths]
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in headers])
    return hu, headers


@pytest.mark.parametrize("syntax", sorted(TRANSFER_SYNTAXES))
def test_pixels_and_syntax_round_trip(syntax, blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine, transfer_syntax=syntax)
    hu, headers = _read_all(paths)
    assert np.array_equal(hu, blobs.hu)
    assert headers[0].file_meta.TransferSyntaxUID == TRANSFER_SYNTAXES[syntax]
    assert headers[0].SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert headers[0].BitsStored == 12 and headers[0].PixelRepresentation == 0


def test_signed_storage_when_values_fall_below_zero(blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine, rescale_intercept=0.0, transfer_syntax="rle")
    hu, headers = _read_all(paths)
    assert headers[0].PixelRepresentation == 1 and headers[0].BitsStored == 16
    assert np.array_equal(hu, blobs.hu)


def test_fractional_slope_rounds_to_stored_grid(blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine, rescale_slope=0.5, rescale_intercept=-1000.0)
    hu, _ = _read_all(paths)
    assert np.max(np.abs(hu - blobs.hu)) <= 0.25


def test_geometry_tags_follow_affine(blobs, write_ct):
    # An oblique, descending series: rows/columns rotated 30 degrees about z.
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    aff = np.eye(4)
    aff[:3, 2] = 0.7 * np.array([c, s, 0.0])  # column step
    aff[:3, 1] = 0.8 * np.array([-s, c, 0.0])  # row step
    aff[:3, 0] = [0.0, 0.0, -2.5]  # slices towards the feet
    aff[:3, 3] = [3.0, -4.0, 50.0]
    paths = write_ct(blobs.hu, aff)
    _, headers = _read_all(paths)
    for k, ds in enumerate(headers):
        assert np.allclose([float(v) for v in ds.ImagePositionPatient], aff[:3, 3] + k * aff[:3, 0], atol=1e-6)
        assert ds.InstanceNumber == k + 1
    iop = np.array([float(v) for v in headers[0].ImageOrientationPatient])
    assert np.allclose(iop, [c, s, 0, -s, c, 0], atol=1e-9)
    assert np.allclose([float(v) for v in headers[0].PixelSpacing], [0.8, 0.7])
    assert float(headers[0].SliceThickness) == pytest.approx(2.5)
    assert float(headers[0].GantryDetectorTilt) == 0.0


def test_tilted_series_records_tilt(blobs, write_ct):
    aff = blobs.affine.copy()
    tilt = np.radians(15.0)
    aff[:3, 0] = 2.5 * np.array([0.0, np.tan(tilt), 1.0])  # shear along rows (y)
    _, headers = _read_all(write_ct(blobs.hu, aff))
    assert float(headers[0].GantryDetectorTilt) == pytest.approx(15.0, abs=1e-6)
    assert float(headers[0].SliceThickness) == pytest.approx(2.5)
    ipp = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in headers])
    assert np.allclose(np.diff(ipp, axis=0), aff[:3, 0], atol=1e-6)


def test_file_names_and_deterministic_uids(blobs, tmp_path):
    seq = write_series(blobs.hu, blobs.affine, tmp_path / "a", seed=7)
    again = write_series(blobs.hu, blobs.affine, tmp_path / "b", seed=7, file_names="uid")
    shuf = write_series(blobs.hu, blobs.affine, tmp_path / "c", seed=7, file_names="shuffled")
    other = write_series(blobs.hu, blobs.affine, tmp_path / "d", seed=8)
    assert [p.name for p in seq[:2]] == ["IM00001", "IM00002"]
    uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in seq]
    assert [p.name for p in again] == uids
    assert len(set(uids)) == len(uids)
    # Shuffled: names carry no order, yet the returned list is in slice order.
    z = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in shuf]
    assert z == sorted(z)
    assert [p.name for p in shuf] != sorted(p.name for p in shuf)
    series = {pydicom.dcmread(p[0]).SeriesInstanceUID for p in (seq, again, shuf, other)}
    assert len(series) == 2  # same seed, same series; another seed, another series
    assert not list(tmp_path.rglob(".osteoprint-staging-*"))


def test_extra_sets_and_removes_elements(blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine, extra={"Modality": "MR", "SeriesNumber": 5, "RescaleSlope": None})
    ds = pydicom.dcmread(paths[0])
    assert ds.Modality == "MR" and ds.SeriesNumber == 5 and "RescaleSlope" not in ds
    assert str(ds.PatientName) == "PHANTOM^OSTEOPRINT" and ds.PatientID == "PHANTOM"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(transfer_syntax="jpeg_baseline"), "transfer_syntax"),
        (dict(rescale_intercept=-70000.0), "16 bits"),
        (dict(file_names="random"), "file_names"),
    ],
)
def test_bad_arguments_raise(kwargs, match, blobs, tmp_path):
    with pytest.raises(ValueError, match=match):
        write_series(blobs.hu, blobs.affine, tmp_path / "x", **kwargs)
    assert not any((tmp_path / "x").glob("IM*"))
