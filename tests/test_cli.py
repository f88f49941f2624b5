"""The command line: one clear line and exit status 2 for bad input, no partial output."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from pipeline.cli import build_parser, main


def _run_bad(capsys, args, out):
    code = main(args)
    err = capsys.readouterr().err
    # Progress lines may come first; the error is one line, last, without a traceback.
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert code == 2
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0]
    assert errors[0].startswith("osteoprint: error: ")
    assert "Traceback" not in err
    assert not out.exists(), "a failed job must leave no output behind"
    return errors[0]


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "scan").mkdir()
    line = _run_bad(capsys, ["model", str(tmp_path / "scan"), "-o", str(tmp_path / "out")], tmp_path / "out")
    assert str(tmp_path / "scan") in line and "empty" in line


def test_not_dicom(tmp_path, capsys):
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "notes.txt").write_text("not an image")
    line = _run_bad(capsys, ["model", str(tmp_path / "scan"), "-o", str(tmp_path / "out")], tmp_path / "out")
    assert "no DICOM images" in line


def test_mr_only(blobs, write_ct, tmp_path, capsys):
    write_ct(blobs.hu, blobs.affine, extra={"Modality": "MR"})
    line = _run_bad(capsys, ["model", str(tmp_path / "series"), "-o", str(tmp_path / "out")], tmp_path / "out")
    assert "no CT series" in line and "MR" in line


def test_single_slice(blobs, write_ct, tmp_path, capsys):
    write_ct(blobs.hu[:1], blobs.affine)
    line = _run_bad(capsys, ["model", str(tmp_path / "series"), "-o", str(tmp_path / "out")], tmp_path / "out")
    assert "single image" in line


def test_duplicate_positions(blobs, write_ct, edit_dicom, tmp_path, capsys):
    paths = write_ct(blobs.hu, blobs.affine)
    shutil.copy(paths[5], paths[0].parent / "copy")
    stored = blobs.hu[5].astype(np.int32) + 1024
    stored[0, 0] += 100
    edit_dicom(paths[0].parent / "copy", pixels=stored.astype(np.uint16))
    line = _run_bad(capsys, ["model", str(paths[0].parent), "-o", str(tmp_path / "out")], tmp_path / "out")
    assert "same slice position" in line


def test_truncated_file(blobs, write_ct, tmp_path, capsys):
    paths = write_ct(blobs.hu, blobs.affine)
    paths[3].write_bytes(paths[3].read_bytes()[:-500])
    line = _run_bad(capsys, ["model", str(paths[0].parent), "-o", str(tmp_path / "out")], tmp_path / "out")
    assert str(paths[3]) in line and "truncated" in line


def test_bad_option_value_is_a_user_error(tmp_path, capsys):
    (tmp_path / "scan").mkdir()
    line = _run_bad(
        capsys, ["model", str(tmp_path / "scan"), "-o", str(tmp_path / "out"), "--decimate", "1.5"], tmp_path / "out"
    )
    assert "--decimate" in line


def test_bone_on_an_empty_folder(tmp_path, capsys):
    (tmp_path / "scan").mkdir()
    line = _run_bad(capsys, ["bone", str(tmp_path / "scan"), "-o", str(tmp_path / "out")], tmp_path / "out")
    assert str(tmp_path / "scan") in line and "empty" in line


@pytest.mark.parametrize(
    "command", ["model", "scaffold", "guide", "bone", "check-guide", "run", "phantom", "batch", "demo"]
)
def test_help_explains_every_option(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    for action in sub._actions:
        if action.dest != "help":
            assert action.help, f"{command} {action.dest} has no help text"
