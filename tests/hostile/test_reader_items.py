"""Smaller hostile items at the reader: ties between CT series, special files, what
the manifest may say about the scan."""

from __future__ import annotations

import os
import sys

import numpy as np

from pipeline.exchange.dicom_read import list_series, load_series

from . import inputs as I
from .test_corpus import assert_no_secret, run_cli


def _two_series(root, large_number: int, small_number: int):
    """Two CT series of 12 slices: the body (60 mm field of view) and a 30 mm
    reconstruction of its left half only."""
    hu = I.body_hu()
    I.write_dicom(
        hu,
        I.BODY_AFFINE,
        root / "a",
        series_uid="1.2.826.0.1.3680043.8.498.77310003",
        extra={"SeriesNumber": large_number},
    )
    crop = I.BODY_AFFINE.copy()
    crop[:3, 3] += crop[:3, 2] * 20
    I.write_dicom(
        np.ascontiguousarray(hu[:, 10:30, 20:40]),
        crop,
        root / "b",
        series_uid="1.2.826.0.1.3680043.8.498.77310004",
        extra={"SeriesNumber": small_number},
    )


def test_a_tie_between_ct_series_goes_to_the_larger_field_of_view_and_is_said(tmp_path, capsys, log_dir):
    for large, small in ((3, 2), (2, 3)):  # whichever comes first in the folder
        root = tmp_path / f"{large}{small}"
        _two_series(root, large, small)
        volume, report = load_series(root)
        assert volume.shape == (12, 40, 40)
        chosen = next(s for s in report.series if s.chosen)
        assert chosen.number == large
        note = next(w for w in volume.info.warnings if w.startswith("read CT series"))
        assert note.startswith(
            f"read CT series {chosen.hash} (number {large}, 12 images, 60 x 60 mm field of view), one of 2 CT series"
        )
        assert [s.chosen for s in list_series(root)] == [s.chosen for s in report.series]
        # ...and the terminal says it before anything else happens.
        code, _, err = run_cli(["model", str(root), "-o", str(tmp_path / "out")], capsys)
        assert code == 3 and f"warning: read CT series {chosen.hash}" in err
        assert_no_secret(err)


def test_special_files_in_the_folder_are_skipped_not_read(tmp_path):
    paths = I.write_dicom(I.body_hu(), I.BODY_AFFINE, tmp_path / "scan")
    os.mkfifo(tmp_path / "scan" / "a-pipe")
    os.symlink(tmp_path / "gone", tmp_path / "scan" / "dangling")
    volume, report = load_series(tmp_path / "scan")
    assert volume.shape == (12, 40, 40)
    assert dict(report.skipped) == {
        "a-pipe": "not a regular file (named pipe)",
        "dangling": "broken link (its target does not exist)",
    }
    assert len(paths) == 12


def test_the_scan_description_keeps_the_scanner_not_the_free_text(tmp_path):
    I.write_dicom(
        I.body_hu(),
        I.BODY_AFFINE,
        tmp_path / "scan",
        extra={"ConvolutionKernel": "B30f", "ManufacturerModelName": "Somatom Force"},
    )
    volume, _ = load_series(tmp_path / "scan")
    # Modality, scanner model, kernel, slice thickness: never the SeriesDescription.
    assert volume.info.description == "osteoprint Somatom Force; kernel B30f; slice thickness 2.5 mm; 120 kV"
    assert_no_secret(volume.info.description)


def test_library_warnings_never_reach_the_terminal(tmp_path, capsys, monkeypatch, log_dir):
    """numpy's RuntimeWarnings on odd data (and any library's warnings) are not for
    the user: the job's own checks say what matters, in one line."""
    import warnings

    import pipeline.jobs.common as common_job

    real = common_job.segment_vertebrae

    def noisy(volume, *args, **kwargs):
        np.log(np.zeros(3))  # RuntimeWarning: divide by zero
        np.float64(0.0) / np.float64(0.0)  # RuntimeWarning: invalid value
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
        return real(volume, *args, **kwargs)

    monkeypatch.setattr(common_job, "segment_vertebrae", noisy)
    I.write_dicom(I.body_hu(), I.BODY_AFFINE, tmp_path / "scan")
    with warnings.catch_warnings():
        # As outside pytest (which records warnings instead): shown on stderr.
        warnings.resetwarnings()
        warnings.simplefilter("default")
        warnings.showwarning = lambda msg, cat, fn, ln, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(msg, cat, fn, ln, line)
        )
        code, out, err = run_cli(["model", str(tmp_path / "scan"), "-o", str(tmp_path / "out")], capsys)
    assert code == 3 and "Warning" not in err and out == ""
    assert err.splitlines()[-1].startswith("osteoprint: error: ")
