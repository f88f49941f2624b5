"""The scaffold job on the bundled scan: placement in LPS, measured porosity, manifest."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.exchange.manifest import read_manifest
from pipeline.exchange.stl import read_stl
from pipeline.jobs.scaffold import ScaffoldOptions, run_scaffold

SAMPLE = Path(__file__).resolve().parents[1] / "sample_scans" / "lumbar_phantom" / "dicom"
CENTRE = np.array([0.5, 40.0, -375.0])  # inside L1's body (truth.json), LPS mm
RADIUS = 5.0


@pytest.fixture(scope="module")
def sphere_job(tmp_path_factory, lumbar_scan, lumbar_segmentation, lumbar_bone):
    """The job as ``osteoprint run`` calls it: the session's read, segmentation and
    bone quality of the sample handed in (made once, tested elsewhere)."""
    out = tmp_path_factory.mktemp("scaffold")
    spec = "sphere:" + ",".join(str(v) for v in (*CENTRE, RADIUS))
    options = ScaffoldOptions(defect=spec, lattice="gyroid", cell_mm=2.0, porosity=0.65, material="ti6al4v")
    return out, run_scaffold(
        SAMPLE, out, options, volume=lumbar_scan, segmentation=lumbar_segmentation, bone_quality=lumbar_bone
    )


def test_scaffold_sits_in_the_requested_region(sphere_job):
    out, manifest = sphere_job
    (record,) = [p for p in manifest["prints"] if p["kind"] == "scaffold"]
    mesh = read_stl(out / record["file"])
    r = np.linalg.norm(mesh.vertices - CENTRE, axis=1)
    assert r.max() <= RADIUS + 0.01
    # Filled throughout, not shifted: the solid's centroid is the sphere's centre.
    assert np.linalg.norm(mesh.center_mass - CENTRE) < 0.3


def test_porosity_measured_from_the_stl_matches_target_and_manifest(sphere_job):
    out, manifest = sphere_job
    (record,) = [p for p in manifest["prints"] if p["kind"] == "scaffold"]
    mesh = read_stl(out / record["file"])
    assert mesh.is_watertight and mesh.is_winding_consistent
    porosity = 1 - mesh.volume / (4 / 3 * np.pi * RADIUS**3)  # analytic region volume
    assert abs(porosity - 0.65) <= 0.01
    assert record["porosity"] == pytest.approx(porosity, abs=0.002)
    assert abs(record["porosity_voxel"] - porosity) <= 0.01


def test_scaffold_stiffness_is_put_beside_l1s_measured_bone(sphere_job):
    out, manifest = sphere_job
    (record,) = [p for p in manifest["prints"] if p["kind"] == "scaffold"]
    against = record["patient_bone"]
    l1 = next(v for v in manifest["bone_quality"]["levels"] if v["level"] == "L1")
    assert against["level"] == "L1"  # the sphere sits in L1's body
    assert against["bone"]["from_hu"] == pytest.approx(l1["trabecular_mean_hu"], abs=0.1)
    assert against["scaffold_modulus_mpa"] == pytest.approx(record["measured"]["apparent_modulus_gpa"] * 1000, rel=1e-3)
    assert against["ratio_scaffold_to_bone"] > 1.0 and "estimate" in against["statement"]
    assert (out / "bone.json").is_file()


def test_titanium_scaffold_goes_to_powder_bed_fusion(sphere_job):
    out, manifest = sphere_job
    assert read_manifest(out / "manifest.json") == manifest
    (record,) = [p for p in manifest["prints"] if p["kind"] == "scaffold"]
    ranked = record["recommended_process"]
    assert ranked[0]["category"] == "powder_bed_fusion" and ranked[0]["score"] > 0
    walls = record["measured"]["wall_thickness_mm"]
    assert record["smallest_feature_mm"] == pytest.approx(walls["p05"], abs=1e-3)
    for r in ranked[1:]:
        assert r["score"] < ranked[0]["score"]


def test_the_job_segments_once_with_the_users_thresholds(stop_at_segmentation, tmp_path, lumbar_scan):
    import pipeline.jobs.scaffold as scaffold_job

    calls = stop_at_segmentation(scaffold_job)
    options = ScaffoldOptions(defect="sphere:0,40,-375,5", preset="osteoporotic", hu_low=200.0)
    with pytest.raises(stop_at_segmentation.Segmented):
        run_scaffold(SAMPLE, tmp_path / "out", options, volume=lumbar_scan)
    assert calls == [options] and not (tmp_path / "out").exists()
