"""The report, 3MF and DICOM prints describe the whole output folder: a scaffold run
after a model run holds both, and DICOM files never outlive the print they wrap."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pydicom
import pytest

from pipeline.jobs import ModelOptions, ScaffoldOptions, run_model, run_scaffold


@pytest.mark.slow
def test_jobs_share_one_report_and_3mf_and_keep_dicom_in_step(small_spine_scan, tmp_path, read_3mf):
    out = tmp_path / "out"
    first = run_model(small_spine_scan, out, ModelOptions(dicom=True))
    models = {p["file"]: p for p in first["prints"]}
    assert all(p["dicom"]["file"] == "dicom/" + p["file"][:-4] + ".dcm" for p in models.values())
    for p in models.values():
        ds = pydicom.dcmread(io.BytesIO((out / p["dicom"]["file"]).read_bytes()))
        assert str(ds.PatientID) == "PHANTOM-0001" and ds.DocumentTitle == f"{p['label']} vertebra model"

    # A scaffold in a small sphere inside the first vertebra (no --dicom this time).
    lo, hi = (np.array(models[sorted(models)[0]]["bbox_mm"][k]) for k in ("min", "max"))
    centre = (lo + hi) / 2
    second = run_scaffold(
        small_spine_scan,
        out,
        ScaffoldOptions(defect="sphere:{:.2f},{:.2f},{:.2f},4".format(*centre), lattice="gyroid", cell_mm=2.0),
    )
    files = {p["file"] for p in second["prints"]}
    assert set(models) < files and len(files) == len(models) + 1
    _, objects = read_3mf(out / "prints.3mf")
    assert {o["meta"][("urn:osteoprint:3mf:1", "file")] for o in objects} == files
    html = (out / "report.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', html)) == len(files) + 1  # + the label picture
    levels = [v["level"] for v in second["bone_quality"]["levels"]]
    assert "<h2>Bone quality</h2>" in html and all(f"<td>{level}</td>" in html for level in levels)
    kept = [p for p in second["prints"] if p.get("dicom")]
    assert sorted(p["file"] for p in kept) == sorted(models), "untouched prints keep their DICOM file"
    assert all((out / p["dicom"]["file"]).is_file() for p in kept)

    # The vertebrae remade without --dicom: their old DICOM files would wrap old STLs.
    third = run_model(small_spine_scan, out)
    assert not any(p.get("dicom") for p in third["prints"])
    assert not (out / "dicom").exists()
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["outputs"]["labels_picture"] == "labels.png"
