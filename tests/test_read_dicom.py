"""The DICOM reader: values, geometry and series choice against phantoms of known truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest

from pipeline.errors import InputError
from pipeline.exchange.dicom_read import list_series, load_series
from pipeline.exchange.dicom_write import TRANSFER_SYNTAXES, write_series
from pipeline.exchange.scan import load_scan


def get_testdata_file(name):
    """A test file shipped inside the pydicom wheel (never downloaded)."""
    path = Path(pydicom.data.__file__).parent / "test_files" / name
    if not path.is_file():
        pytest.skip(f"{name} is not bundled with this pydicom")
    return path


def _rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _flip(hu, affine, axes):
    """The same physical volume stored with ``axes`` reversed (exact)."""
    out, aff = hu, affine.copy()
    for ax in axes:
        n = hu.shape[ax]
        aff[:3, 3] = aff[:3, 3] + aff[:3, ax] * (n - 1)
        aff[:3, ax] = -aff[:3, ax]
        out = np.flip(out, ax)
    return np.ascontiguousarray(out), aff


@pytest.mark.parametrize("syntax", sorted(TRANSFER_SYNTAXES))
def test_round_trip_every_transfer_syntax(syntax, blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine, transfer_syntax=syntax)
    calls = []
    vol, report = load_series(paths[0].parent, on_progress=lambda *a: calls.append(a))
    assert calls == [(k, 24) for k in range(1, 25)]
    assert vol.hu.dtype == np.int16
    assert np.array_equal(vol.hu, blobs.hu)
    assert np.allclose(vol.affine, blobs.affine, atol=1e-6)
    assert vol.info.transfer_syntax == pydicom.uid.UID(TRANSFER_SYNTAXES[syntax]).name
    assert vol.info.n_files == 24 and vol.info.warnings == () and report.skipped == []


def _oriented(kind, blobs_factory):
    """(hu, affine, blob LPS positions) of a series stored in an unusual orientation."""
    base = blobs_factory()
    blobs = [base.blob_lps(i) for i in range(len(base.blobs))]
    if kind == "rows_and_columns_reversed":  # IOP -1,0,0,0,-1,0
        return (*_flip(base.hu, base.affine, (1, 2)), blobs)
    if kind == "descending_slices":
        return (*_flip(base.hu, base.affine, (0,)), blobs)
    aff = np.eye(4)
    if kind == "sagittal":  # columns posterior, rows towards the feet, slices towards left
        aff[:3, :3] = np.column_stack([[2.5, 0, 0], [0, 0, -0.8], [0, 0.7, 0]])
    else:  # oblique: rotated 25 degrees about an off-axis direction
        r = _rotation([1, 2, 3], 25)
        aff[:3, :3] = r @ np.diag([0.7, 0.8, 2.5])[:, ::-1]
    aff[:3, 3] = [5.0, -30.0, 80.0]
    ph = blobs_factory(affine=aff)
    return ph.hu, ph.affine, [ph.blob_lps(i) for i in range(len(ph.blobs))]


@pytest.mark.parametrize("kind", ["rows_and_columns_reversed", "descending_slices", "sagittal", "oblique"])
def test_orientations_keep_every_voxel_in_place(kind, blobs_factory, write_ct, same_voxels, find_blob):
    hu, affine, blobs = _oriented(kind, blobs_factory)
    vol, _ = load_series(write_ct(hu, affine)[0].parent)
    same_voxels(vol.hu, vol.affine, hu, affine)
    normal = np.cross(vol.affine[:3, 2], vol.affine[:3, 1])
    assert normal @ vol.affine[:3, 0] > 0  # slices ascend along the image normal
    for truth in blobs:
        assert np.linalg.norm(find_blob(vol.hu, vol.affine, truth) - truth) <= 0.01


def test_names_order_and_subfolders_do_not_matter(blobs, tmp_path):
    ref = write_series(blobs.hu, blobs.affine, tmp_path / "ref")
    shuffled = write_series(blobs.hu, blobs.affine, tmp_path / "shuf", file_names="shuffled")
    # Scramble InstanceNumber too and move some files into a nested folder.
    nested = tmp_path / "shuf" / "a" / "b"
    nested.mkdir(parents=True)
    for k, p in enumerate(shuffled):
        ds = pydicom.dcmread(p)
        ds.InstanceNumber = (k * 7) % 24 + 1
        ds.save_as(p)
        if k % 3 == 0:
            shutil.move(p, nested / p.name)
    a, _ = load_series(tmp_path / "ref")
    b, _ = load_series(tmp_path / "shuf")
    assert np.array_equal(a.hu, b.hu) and np.array_equal(a.affine, b.affine)
    assert a.info.series_hash == b.info.series_hash
    del ref


@pytest.fixture
def mixed_folder(blobs, tmp_path):
    """A folder as found on a CD: two CT series, localizers, MR, reports, junk."""
    root = tmp_path / "cd"
    main = write_series(
        blobs.hu, blobs.affine, root / "s2", seed=1, series_description="body", extra={"SeriesNumber": 2}
    )
    small = write_series(
        blobs.hu[:10], blobs.affine, root / "s3", seed=2, series_description="small", extra={"SeriesNumber": 3}
    )
    write_series(
        blobs.hu[:12],
        blobs.affine,
        root / "s5",
        seed=4,
        series_description="mr",
        extra={"SeriesNumber": 5, "Modality": "MR", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.4"},
    )
    main_uid = pydicom.dcmread(main[0]).SeriesInstanceUID
    sagittal = np.eye(4)
    sagittal[:3, :3] = np.column_stack([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    # A scout stored in its own series and one filed inside the main series.
    write_series(
        blobs.hu[:1],
        sagittal,
        root / "s1",
        seed=3,
        extra={"SeriesNumber": 1, "ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]},
    )
    write_series(
        blobs.hu[:1],
        sagittal,
        root / "scout_in_main",
        seed=5,
        series_uid=main_uid,
        extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]},
    )
    # An unflagged image of the main series in another orientation.
    write_series(blobs.hu[:1], sagittal, root / "odd", seed=6, series_uid=main_uid)
    (root / "notes.txt").write_text("patient arrived at 9am\n")
    (root / ".DS_Store").write_bytes(b"\x00\x01junk")
    shutil.copy(get_testdata_file("dicomdirtests/DICOMDIR"), root / "DICOMDIR")
    shutil.copy(get_testdata_file("test-SR.dcm"), root / "REPORT")
    shutil.copy(get_testdata_file("rtstruct.dcm"), root / "RS")  # no preamble, group 0008
    return root, main, small


def test_mixed_folder_picks_the_main_ct_and_reports_skips(mixed_folder, blobs):
    root, main, small = mixed_folder
    vol, report = load_scan(root)
    assert np.array_equal(vol.hu, blobs.hu)
    skipped = {name.split("/")[0]: reason for name, reason in report.skipped}
    assert skipped["notes.txt"] == "not a DICOM file"
    assert "DICOMDIR" in skipped["DICOMDIR"]
    assert "not an image" in skipped["REPORT"] and "SR" in skipped["REPORT"]
    assert "not an image (RTSTRUCT" in skipped["RS"]
    assert "localizer" in skipped["s1"] and "localizer" in skipped["scout_in_main"]
    assert "orientation differs" in skipped["odd"]
    assert ".DS_Store" not in skipped
    summary = {s.description: s for s in report.series}
    assert set(summary) == {"body", "small", "mr"}
    assert summary["body"].chosen and not summary["small"].chosen
    assert summary["mr"].modality == "MR" and summary["mr"].note == "MR, not CT"
    assert [s.number for s in report.series] == [2, 3, 5]
    joined = " ".join(vol.info.warnings)
    assert "2 localizer images" in joined and "1 non-DICOM file" in joined
    assert "1 DICOMDIR" in joined and "1 image inconsistent" in joined
    assert "2 non-image objects" in joined
    uids = {str(pydicom.dcmread(p).SeriesInstanceUID) for p in (main[0], small[0])}
    for text in (joined, vol.info.description, vol.info.series_hash):
        assert "PHANTOM" not in text and not any(u in text for u in uids)
    assert [s.chosen for s in list_series(root)] == [s.chosen for s in report.series]


def test_series_selection_by_hash_number_index_and_file(mixed_folder):
    root, main, small = mixed_folder
    series = list_series(root)
    small_hash = next(s.hash for s in series if s.description == "small")
    assert load_scan(root, series=small_hash)[0].shape[0] == 10
    assert load_scan(root, series=3)[0].shape[0] == 10  # SeriesNumber
    assert load_scan(root, series="2")[0].shape[0] == 24  # SeriesNumber
    assert load_scan(root, series=1)[0].shape[0] == 24  # no series 1: index
    assert load_scan(small[4])[0].shape[0] == 10  # a file picks its series
    with pytest.raises(InputError, match="is MR, not CT"):
        load_scan(root, series=5)


def test_missing_slices_are_interpolated_in_place(blobs, write_ct, find_blob):
    paths = write_ct(blobs.hu, blobs.affine)
    for k in (19, 20):
        paths[k].unlink()
    vol, _ = load_series(paths[0].parent)
    assert vol.shape == blobs.hu.shape
    assert np.allclose(vol.affine, blobs.affine, atol=1e-6)
    kept = [k for k in range(24) if k not in (19, 20)]
    assert np.array_equal(vol.hu[kept], blobs.hu[kept])
    expected = (2 * blobs.hu[18].astype(float) + blobs.hu[21]) / 3
    assert np.max(np.abs(vol.hu[19] - expected)) <= 0.5
    assert any("2 missing slices between z=-85.00 and z=-77.50 mm" in w for w in vol.info.warnings)
    for i in (0, 2):
        assert np.linalg.norm(find_blob(vol.hu, vol.affine, blobs.blob_lps(i)) - blobs.blob_lps(i)) <= 0.01


def test_too_large_a_gap_is_refused(blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine)
    for k in (8, 9, 10, 11):
        paths[k].unlink()
    with pytest.raises(InputError, match="4 missing slices"):
        load_series(paths[0].parent)


def test_uneven_spacing_is_resampled(blobs, write_ct, edit_dicom):
    paths = write_ct(blobs.hu, blobs.affine)
    ipp = [float(v) for v in pydicom.dcmread(paths[12]).ImagePositionPatient]
    edit_dicom(paths[12], ImagePositionPatient=[ipp[0], ipp[1], ipp[2] + 0.5])
    vol, _ = load_series(paths[0].parent)
    assert vol.shape == blobs.hu.shape
    assert any("slice spacing varies from 2.000 to 3.000 mm" in w for w in vol.info.warnings)
    # Slice 12 now comes from 0.2 of the way between the stored slices at 11.0 and 12.2.
    src11, src12 = blobs.hu[11].astype(float), blobs.hu[12].astype(float)
    assert np.max(np.abs(vol.hu[12] - (src11 / 6 + src12 * 5 / 6))) <= 0.5


def test_duplicate_identical_slice_is_dropped_with_warning(blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine)
    shutil.copy(paths[5], paths[0].parent / "copy_of_5")
    vol, _ = load_series(paths[0].parent)
    assert np.array_equal(vol.hu, blobs.hu)
    assert any("1 duplicate slice" in w for w in vol.info.warnings)


def test_gantry_tilt_is_corrected(blobs, write_ct, find_blob):
    tilted = blobs.affine.copy()
    tilted[:3, 0] = 2.5 * np.array([0.0, np.tan(np.radians(15.0)), 1.0])
    vol, _ = load_series(write_ct(blobs.hu, tilted)[0].parent)
    assert any("gantry tilt of 15.0 deg corrected" in w for w in vol.info.warnings)
    normal = np.array([0.0, 0.0, 1.0])
    assert np.allclose(vol.affine[:3, 0], 2.5 * normal, atol=1e-9)
    half_voxel = 0.5 * min(vol.spacing)
    for blob in blobs.blobs:
        truth = tilted[:3, :3] @ np.asarray(blob.index) + tilted[:3, 3]
        assert np.linalg.norm(find_blob(vol.hu, vol.affine, truth) - truth) <= half_voxel


def test_tilt_tag_without_shear_is_only_noted(blobs, write_ct):
    paths = write_ct(blobs.hu, blobs.affine, extra={"GantryDetectorTilt": "12.0"})
    vol, _ = load_series(paths[0].parent)
    assert np.array_equal(vol.hu, blobs.hu)
    assert any("already orthogonal" in w for w in vol.info.warnings)


def test_rescale_variants(blobs, write_ct, edit_dicom):
    paths = write_ct(blobs.hu, blobs.affine)
    stored = blobs.hu.astype(np.int32) + 1024
    edit_dicom(paths[3], RescaleIntercept="-2048", pixels=(stored[3] + 1024).astype(np.uint16))
    vol, _ = load_series(paths[0].parent)
    assert vol.hu.dtype == np.int16 and np.array_equal(vol.hu, blobs.hu)
    edit_dicom(paths[4], RescaleSlope="0.5", BitsStored=16, HighBit=15, pixels=(2 * stored[4]).astype(np.uint16))
    vol, _ = load_series(paths[0].parent)
    assert vol.hu.dtype == np.float32 and np.array_equal(vol.hu, blobs.hu)


def test_missing_rescale_means_stored_values_are_hu(blobs, write_ct):
    paths = write_ct(
        blobs.hu, blobs.affine, rescale_intercept=0.0, extra={"RescaleIntercept": None, "RescaleSlope": None}
    )
    vol, _ = load_series(paths[0].parent)
    assert vol.hu.dtype == np.int16 and np.array_equal(vol.hu, blobs.hu)


def test_garbage_above_bits_stored_is_masked(blobs, write_ct, edit_dicom):
    paths = write_ct(blobs.hu, blobs.affine)
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        assert ds.BitsStored == 12
        edit_dicom(p, pixels=(blobs.hu[k].astype(np.int32) + 1024 | 0xB000).astype(np.uint16))
    vol, _ = load_series(paths[0].parent)
    assert np.array_equal(vol.hu, blobs.hu)


def test_pixel_padding_becomes_air(blobs, write_ct):
    # Air (-1000 HU) is stored as 0 and declared padding: it must come back as -1024.
    paths = write_ct(blobs.hu, blobs.affine, rescale_intercept=-1000.0, extra={"PixelPaddingValue": 0})
    vol, _ = load_series(paths[0].parent)
    assert np.array_equal(vol.hu, np.where(blobs.hu == -1000, -1024, blobs.hu))


def test_files_without_preamble_are_read(blobs, write_ct, edit_dicom):
    paths = write_ct(blobs.hu, blobs.affine, transfer_syntax="implicit_le")
    for p in paths:
        edit_dicom(p, no_meta=True)
    assert open(paths[0], "rb").read(2) == b"\x08\x00"
    vol, _ = load_series(paths[0].parent)
    assert np.array_equal(vol.hu, blobs.hu)


def test_enhanced_multiframe_ct(blobs, write_enhanced_ct, same_voxels):
    rng = np.random.default_rng(3)
    path = write_enhanced_ct(blobs.hu, blobs.affine, frame_order=rng.permutation(24))
    calls = []
    vol, _ = load_scan(path, on_progress=lambda done, total: calls.append((done, total)))
    same_voxels(vol.hu, vol.affine, blobs.hu, blobs.affine)
    assert vol.shape == blobs.hu.shape and vol.info.n_files == 1
    assert calls[-1] == (24, 24) and len(calls) == 24


def _relabel_as_ct(source, folder, n=2):
    """Copies of one bundled pydicom image as an n-slice CT series (pixel data untouched)."""
    folder.mkdir(exist_ok=True)
    for k in range(n):
        ds = pydicom.dcmread(source)
        ds.Modality = "CT"
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SeriesInstanceUID = "1.2.3.4"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.4.{k + 1}"
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        ds.ImagePositionPatient = list(np.array([float(v) for v in ds.ImagePositionPatient]) + 3.0 * k * normal)
        ds.save_as(folder / f"f{k}")
    return folder


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_implicit.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
)
def test_pydicom_bundled_encodings_match_uncompressed_reference(name, tmp_path, monkeypatch):
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    folder = _relabel_as_ct(get_testdata_file(name), tmp_path / "s")
    # MR intensities relabelled as CT are not Hounsfield units: the reader refuses them...
    with pytest.raises(InputError, match="do not look like CT Hounsfield units"):
        load_series(folder)
    # ...so the decoding is compared with that check switched off.
    monkeypatch.setattr("pipeline.exchange.dicom_read.check_hounsfield", lambda *a, **k: None)
    vol, _ = load_series(folder)
    assert vol.shape == (2, 64, 64)
    assert np.array_equal(vol.hu[0], reference) and np.array_equal(vol.hu[1], reference)


def test_jpeg_baseline_within_lossy_tolerance(blobs, write_ct):
    from io import BytesIO

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    slope = 16.0
    paths = write_ct(blobs.hu, blobs.affine, rescale_slope=slope)
    for p in paths:  # re-encode each slice as an 8-bit baseline JPEG (Pillow encoder)
        ds = pydicom.dcmread(p)
        buf = BytesIO()
        Image.fromarray(ds.pixel_array.astype(np.uint8)).save(buf, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.save_as(p)
    vol, _ = load_series(paths[0].parent)
    stored_truth = np.rint((blobs.hu + 1024.0) / slope) * slope - 1024.0
    error = np.abs(vol.hu.astype(float) - stored_truth)
    assert vol.info.transfer_syntax.startswith("JPEG Baseline")
    assert error.mean() <= 0.5 * slope and error.max() <= 4 * slope


def test_installed_jpeg_decoders_match_bundled_references():
    # The reader hands compressed data to pydicom's plugins; these bundled pairs show
    # the installed plugins decode JPEG lossless (process 14) exactly and baseline
    # within its lossy tolerance (there is no greyscale pair for these in the wheel).
    rle = pydicom.dcmread(get_testdata_file("SC_rgb_rle.dcm")).pixel_array.astype(int)
    lossless = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_gdcm.dcm")).pixel_array
    baseline = pydicom.dcmread(get_testdata_file("SC_rgb_dcmtk_+eb+cr.dcm")).pixel_array
    assert np.array_equal(lossless, rle)
    assert np.abs(baseline - rle).max() <= 2
