"""STL headers state the frame: 3D Slicer places a model by the SPACE= tag it finds."""

from __future__ import annotations

import numpy as np
import trimesh

from pipeline.exchange.stl import header_text, read_stl, stl_bytes, stl_header, write_stl


def test_header_is_80_bytes_starting_with_the_description_and_carrying_space_lps():
    head = stl_header("L1 vertebra model")
    assert len(head) == 80
    text = head.decode("ascii")
    assert text.startswith("L1 vertebra model")
    # Slicer's rule (vtkMRMLModelStorageNode): the substring "SPACE=LPS" anywhere.
    assert "SPACE=LPS" in text and "SPACE=RAS" not in text


def test_long_descriptions_are_cut_not_the_space_tag():
    head = stl_header("x" * 200).decode("ascii")
    assert len(head) == 80 and head.rstrip().endswith("SPACE=LPS")


def test_a_header_never_starts_with_solid():
    # Readers take a binary file whose header starts with "solid" for ASCII STL.
    assert not stl_header("solid L1 model").lower().startswith(b"solid")


def test_written_file_keeps_the_header_and_every_triangle(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=7.0)
    mesh.apply_translation([-30.0, 120.0, -400.0])  # LPS: right, posterior, low
    data = stl_bytes(mesh, "L3 vertebra model")
    sha = write_stl(tmp_path / "a.stl", mesh, "L3 vertebra model", chunk=100)
    assert (tmp_path / "a.stl").read_bytes() == data
    import hashlib

    assert sha == hashlib.sha256(data).hexdigest()
    assert header_text(tmp_path / "a.stl") == header_text(data)
    assert header_text(data).startswith("L3 vertebra model") and header_text(data).endswith("SPACE=LPS")
    back = read_stl(tmp_path / "a.stl")
    assert np.allclose(np.sort(back.vertices, axis=0), np.sort(mesh.vertices, axis=0), atol=1e-4)
