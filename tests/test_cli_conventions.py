"""Command-line conventions: --version, -q/-v, --json (summary on stdout, progress on
stderr), plain progress lines when stderr is not a terminal, documented exit codes."""

from __future__ import annotations

import json

import pytest

from pipeline import __version__
from pipeline.cli import EXIT_CODES, build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"osteoprint {__version__}"


def test_exit_codes_are_documented_in_help():
    text = build_parser().format_help()
    for code in EXIT_CODES:
        assert f"{code} " in text.split("exit status:")[1]


def test_json_summary_on_stdout_details_on_stderr(small_spine_scan, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["model", str(small_spine_scan), "-o", str(out), "--json", "-v"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # stdout is one JSON document and nothing else
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert summary["status"] == "ok" and summary["command"] == "model"
    assert [p["sha256"] for p in summary["prints"]] == [p["sha256"] for p in manifest["prints"]]
    assert "segmenting vertebrae" in captured.err  # progress went to stderr
    assert "meshed V1" in captured.err  # -v shows details
    assert "\x1b[" not in captured.err  # no live display off a terminal
    assert (out / summary["outputs"]["report"]).is_file() and (out / "labels.png").is_file()


def test_quiet_says_only_the_error(tmp_path, capsys):
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "notes.txt").write_text("not an image")
    assert main(["model", str(tmp_path / "scan"), "-o", str(tmp_path / "out"), "-q"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"osteoprint: error: {tmp_path / 'scan'}: no DICOM images found (found 1 non-DICOM file)"
    ]
    assert main(["model", str(tmp_path / "scan"), "-o", str(tmp_path / "out")]) == 2
    assert "reading scan" in capsys.readouterr().err, "without -q the stages are shown"


def test_user_error_is_one_line_with_json_error_summary(tmp_path, capsys):
    (tmp_path / "scan").mkdir()
    code = main(["model", str(tmp_path / "scan"), "-o", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert json.loads(captured.out) == {
        "status": "error",
        "command": "model",
        "exit_code": 2,
        "error": f"{tmp_path / 'scan'}: folder is empty",
    }
    assert captured.err.strip().splitlines()[-1].startswith("osteoprint: error: ")
    assert not (tmp_path / "out").exists()


def test_dicom_of_a_nifti_scan_is_refused_before_the_work(blobs, tmp_path, capsys):
    from pipeline.exchange.nifti import write_nifti

    write_nifti(tmp_path / "ct.nii.gz", blobs.hu, blobs.affine)
    code = main(["model", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "--dicom", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "--dicom needs a DICOM scan" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_bug_exits_70_in_one_line_naming_its_logged_traceback(monkeypatch, tmp_path, capsys):
    import pipeline.jobs

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setenv("OSTEOPRINT_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(pipeline.jobs, "run_model", broken)
    code = main(["model", str(tmp_path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 70
    (log,) = list((tmp_path / "logs").iterdir())
    assert err.splitlines() == [
        f"osteoprint: internal error (a bug): RuntimeError: simulated bug; no output was "
        f"written; please report it (full traceback in {log})"
    ]
    assert "Traceback (most recent call last)" in log.read_text() and "simulated bug" in log.read_text()
