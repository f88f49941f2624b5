"""The manifest schema accepts what the pipeline writes and refuses what it must not."""

import copy
import json

import numpy as np
import pytest
import trimesh

from pipeline.errors import InputError
from pipeline.exchange.manifest import manifest_bytes, merge_prints, new_manifest, read_manifest, validate_manifest
from pipeline.mesh import check_mesh
from pipeline.printing import print_record
from pipeline.volume import CTVolume, ScanInfo


def _manifest():
    vol = CTVolume(
        np.zeros((4, 5, 6), np.int16), np.diag([1.25, 0.75, 0.75, 1.0]), ScanInfo(series_hash="0123456789ab")
    )
    m = new_manifest(vol)
    mesh = trimesh.creation.icosphere(radius=5)
    rec = print_record(
        mesh,
        file="vertebrae/L1.stl",
        kind="anatomical_model",
        label="L1",
        sha256="a" * 64,
        quality=check_mesh(mesh),
        purpose="planning",
        smallest_feature_mm=3.0,
    )
    return merge_prints(m, [rec])


def test_valid_manifest_round_trips(tmp_path):
    m = _manifest()
    validate_manifest(m)
    p = tmp_path / "manifest.json"
    p.write_bytes(manifest_bytes(m))
    back = read_manifest(p)
    assert back == json.loads(json.dumps(m))
    assert back["coordinate_system"] == "LPS" and back["units"] == "mm"
    assert back["prints"][0]["volume_mm3"] == pytest.approx(4 / 3 * np.pi * 125, rel=0.02)


@pytest.mark.parametrize(
    "path, value",
    [
        (("units",), "cm"),
        (("coordinate_system",), "RAS"),
        (("prints", 0, "kind"), "toy"),
        (("input", "series_hash"), "1.2.840.113619.2"),
    ],
)
def test_schema_refuses_wrong_values(path, value):
    m = copy.deepcopy(_manifest())
    target = m
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match="manifest invalid"):
        validate_manifest(m)


def test_schema_requires_all_five_process_categories():
    m = copy.deepcopy(_manifest())
    m["prints"][0]["recommended_process"] = m["prints"][0]["recommended_process"][:4]
    with pytest.raises(ValueError):
        validate_manifest(m)


def test_merge_replaces_same_file_only():
    m = _manifest()
    rec = dict(m["prints"][0], label="L1 again")
    other = dict(m["prints"][0], file="vertebrae/L2.stl", label="L2")
    merged = merge_prints(m, [rec, other])
    assert [p["label"] for p in merged["prints"]] == ["L1 again", "L2"]


def test_corrupt_manifest_is_a_user_error(tmp_path):
    p = tmp_path / "manifest.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="manifest.json: not valid JSON"):
        read_manifest(p)


def _scaffold_record(design: dict):
    mesh = trimesh.creation.icosphere(radius=3)
    return print_record(
        mesh,
        file="scaffolds/L1-defect-gyroid-skeletal.stl",
        kind="scaffold",
        label="L1 defect scaffold",
        sha256="b" * 64,
        quality=check_mesh(mesh),
        purpose="ti6al4v",
        smallest_feature_mm=0.5,
        extra={"design": design},
    )


def test_schema_requires_a_scaffolds_deviation_bound():
    from pipeline.printing import deviation_bound

    resolution = {
        **deviation_bound("ti6al4v").describe(),
        "deviation_bound_mm": 0.075,
        "deviation_p999_mm": 0.07,
        "deviation_max_mm": 0.3,
        "voxel_mm": 0.147,
    }
    validate_manifest(merge_prints(_manifest(), [_scaffold_record({"mesh_resolution": resolution})]))
    for design in ({}, {"mesh_resolution": None}, {"mesh_resolution": {**resolution, "bound_mm": 0}}):
        with pytest.raises(ValueError, match="manifest invalid"):
            validate_manifest(merge_prints(_manifest(), [_scaffold_record(design)]))
