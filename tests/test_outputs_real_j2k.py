"""Issue 10's "done when" on the shared real J2K series, run as a user would:
``osteoprint model J2K -o OUT --dicom --json``.

Checked against independent readers: lib3mf (the 3MF Consortium's), numpy-stl,
pydicom, dicom3tools' dciodvfy and a real headless Chromium.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from stl import mesh as stl_mesh

from pipeline.cli import main
from pipeline.exchange.stl import header_text

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_ct_siemens_j2k"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"shared real CT not present at {REAL}")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = tmp_path_factory.mktemp("j2k") / "out"
    stdout = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(stdout):
        code = main(["model", str(REAL), "-o", str(out), "--dicom", "--json", "-q"])
    assert code == 0
    summary = json.loads(stdout.getvalue())
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    ct = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(REAL.iterdir())]
    return out, summary, manifest, ct


def test_json_summary_on_stdout_matches_the_manifest(job):
    out, summary, manifest, _ = job
    assert summary["status"] == "ok" and summary["output"] == str(out)
    assert [p["file"] for p in summary["prints"]] == [p["file"] for p in manifest["prints"]]
    assert summary["outputs"]["prints_3mf"] == "prints.3mf" and summary["outputs"]["report"] == "report.html"


def test_every_stl_header_says_space_lps(job):
    out, _, manifest, _ = job
    assert len(manifest["prints"]) >= 2
    for p in manifest["prints"]:
        text = header_text(out / p["file"])
        assert "SPACE=LPS" in text and text.startswith(p["label"]), text


def matrix(meta, key):
    return np.array([float(v) for v in meta[("urn:osteoprint:3mf:1", key)].split()]).reshape(4, 4)


def test_3mf_has_one_manifold_mm_object_per_print_that_goes_back_to_lps(job, read_3mf):
    from lib3mf import Lib3MF

    out, _, manifest, _ = job
    model, objects = read_3mf(out / "prints.3mf")
    assert model.GetUnit() == Lib3MF.ModelUnit.MilliMeter
    assert len(objects) == len(manifest["prints"])
    by_sha = {obj["meta"][("urn:osteoprint:3mf:1", "sha256")]: obj for obj in objects}
    for p in manifest["prints"]:
        obj = by_sha[p["sha256"]]
        assert obj["manifold"], p["file"]
        assert obj["name"] == f"{p['label']} vertebra model"
        assert obj["vertices"].min() >= 0
        to_lps = matrix(obj["meta"], "build_to_lps")
        triangles = (obj["vertices"] @ to_lps[:3, :3].T + to_lps[:3, 3])[obj["faces"]]
        stl = stl_mesh.Mesh.from_file(str(out / p["file"])).vectors
        assert triangles.shape == stl.shape
        assert np.abs(triangles - stl).max() < 1e-3, "the recorded transform must give back the STL's LPS vertices"


def test_one_valid_dicom_instance_per_print_in_the_cts_frame_of_reference(job, dciodvfy):
    out, _, manifest, ct = job
    files = sorted((out / "dicom").rglob("*.dcm"))
    assert len(files) == len(manifest["prints"])
    uids = set()
    for p in manifest["prints"]:
        data = (out / p["dicom"]["file"]).read_bytes()
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.3" and ds.Modality == "M3D"
        assert ds.FrameOfReferenceUID == ct[0].FrameOfReferenceUID
        assert bytes(ds.EncapsulatedDocument)[: ds.EncapsulatedDocumentLength] == (out / p["file"]).read_bytes()
        assert ds.MeasurementUnitsCodeSequence[0].CodeValue == "mm"
        assert dciodvfy(data) == [], p["dicom"]["file"]
        uids.add(ds.StudyInstanceUID)
    assert len(uids) == 1, "all prints in one study"
    # This anonymised series has blank Study and Series UIDs: the prints get one
    # study derived from the series, and the manifest says so.
    assert all(str(h.get("StudyInstanceUID", "")) == "" for h in ct)
    assert any("no StudyInstanceUID" in w for w in manifest["warnings"])


def test_identifiers_only_in_the_dicom_files(job):
    out, _, manifest, ct = job
    secrets = [str(ct[0].FrameOfReferenceUID), str(ct[0].IssuerOfPatientID), "Petersgraben"]
    secrets += [str(h.file_meta.MediaStorageSOPInstanceUID) for h in ct[:3]]
    texts = {name: (out / name).read_text(encoding="utf-8") for name in ("manifest.json", "report.html")}
    with zipfile.ZipFile(out / "prints.3mf") as z:
        texts["prints.3mf"] = " ".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{name} leaks an identifier"
    assert str(ct[0].FrameOfReferenceUID).encode() in (out / manifest["prints"][0]["dicom"]["file"]).read_bytes()


def test_report_embeds_a_picture_per_print_and_the_labels_and_links_nothing(job):
    out, _, manifest, _ = job
    html = (out / "report.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(images) == len(manifest["prints"]) + 1
    assert all(src.startswith("data:image/png;base64,") for src in images)
    for attr in re.findall(r'(?:src|href|action|poster)\s*=\s*["\']([^"\']*)', html):
        assert attr.startswith(("data:", "#")), attr
    assert not re.search(r"url\(|@import|<script|<link|<iframe", html, re.IGNORECASE)
    assert "labels.png" in html and (out / "labels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _page_requests(html: Path, tmp_path: Path, screenshot: Path | None = None) -> list[str]:
    """URLs a page asked the network for in headless Chromium (its net log)."""
    log = tmp_path / "netlog.json"
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--log-net-log={log}",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,2200",
        "--hide-scrollbars",
    ]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    subprocess.run(args + [html.as_uri()], capture_output=True, timeout=120, check=False)
    text = log.read_text()
    try:
        events = json.loads(text)
    except json.JSONDecodeError:  # a log cut at exit lacks its closing brackets
        events = json.loads(text.rstrip().rstrip(",") + "]}")
    urls = []
    for event in events.get("events", []):
        params = event.get("params") or {}
        # Requests made for the page (not the browser's own) carry the page's
        # file:// network isolation key.
        if "url" in params and str(params.get("network_isolation_key", "")).startswith("file://"):
            urls.append(params["url"])
    return [u for u in urls if not u.startswith(("file:", "data:"))]


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package chromium)")
def test_report_loads_nothing_from_the_network_in_a_real_browser(job, tmp_path):
    out, _, manifest, _ = job
    # The check itself: a page with one remote picture is caught.
    probe = tmp_path / "probe.html"
    probe.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png"></body></html>')
    assert _page_requests(probe, tmp_path / "a") == ["http://example.invalid/x.png"]
    shot = tmp_path / "report.png"
    assert _page_requests(out / "report.html", tmp_path / "b", screenshot=shot) == []
    from PIL import Image

    from pipeline.render import print_colour

    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # The thumbnails rendered: shaded pixels of each print's colour are on screen.
    for p in manifest["prints"]:
        colour = np.array(print_colour(p))
        hue = colour / np.linalg.norm(colour)
        norms = np.linalg.norm(image, axis=2)
        similar = (image @ hue) / np.maximum(norms, 1) > 0.995
        assert (similar & (norms > 60)).sum() > 500, p["label"]
