"""Binary STL, the format every slicer takes, written by numpy-stl.

STL carries no units or coordinate system. Every file osteoprint writes states them
in its 80-byte header, which starts with a short description of the print and ends
with ``SPACE=LPS``: the 3D Slicer convention (Slicer reads the header and places an
LPS model correctly instead of assuming RAS and mirroring it front-to-back and
left-to-right). Vertices are millimetres in DICOM patient coordinates (LPS).
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import trimesh
from stl import mesh as stl_mesh

from ..errors import InputError
from .atomic import atomic_file

#: Ends every header: units, and the coordinate system as 3D Slicer reads it.
HEADER_SUFFIX = b" (osteoprint, mm) SPACE=LPS"
HEADER_BYTES = 80


class _StatedMesh(stl_mesh.Mesh):
    """numpy-stl's mesh with osteoprint's header (see :func:`stl_header`).

    numpy-stl's own header stamps the current time, which would make identical
    inputs give different files; ``get_header`` is its hook for another one.
    """

    def __init__(self, data: np.ndarray, header: bytes):
        super().__init__(data, calculate_normals=False, remove_empty_areas=False)
        self._header = header

    def get_header(self, name) -> str:
        return self._header.decode("ascii")


def stl_header(description: str = "") -> bytes:
    """The 80-byte header: ``description`` (ASCII, shortened to fit), then units and
    ``SPACE=LPS``.

    A description starting with "solid" is prefixed, since some readers take such a
    binary file for ASCII STL.
    """
    text = " ".join(description.split()).encode("ascii", "replace") or b"model"
    if text[:5].lower() == b"solid":
        text = b"part " + text
    room = HEADER_BYTES - len(HEADER_SUFFIX)
    return (text[:room] + HEADER_SUFFIX).ljust(HEADER_BYTES, b" ")


def header_text(path_or_bytes) -> str:
    """The header of a binary STL file (or of its bytes) as text, padding stripped."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        head = bytes(path_or_bytes[:HEADER_BYTES])
    else:
        with open(path_or_bytes, "rb") as fh:
            head = fh.read(HEADER_BYTES)
    return head.rstrip(b" \0").decode("ascii", "replace")


def _stated_mesh(mesh: trimesh.Trimesh, description: str, chunk: int) -> _StatedMesh:
    """``mesh`` as numpy-stl records with unit face normals (zero for a degenerate
    face), filled ``chunk`` triangles at a time so that the float64 temporaries of a
    scaffold of tens of millions of triangles stay small beside the records (50
    bytes per triangle)."""
    faces = np.asarray(mesh.faces)
    vertices = np.asarray(mesh.vertices)
    data = np.zeros(len(faces), dtype=stl_mesh.Mesh.dtype)
    for start in range(0, len(faces), chunk):
        tris = vertices[faces[start : start + chunk]]
        normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        data["vectors"][start : start + chunk] = tris
        data["normals"][start : start + chunk] = np.divide(
            normals, length, out=np.zeros_like(normals), where=length > 0
        )
    return _StatedMesh(data, stl_header(description))


def stl_bytes(mesh: trimesh.Trimesh, description: str = "", chunk: int = 1_000_000) -> bytes:
    """Encode ``mesh`` as binary STL (float32 vertices, per-face unit normals).

    ``description`` says what the print is, e.g. ``"L1 vertebra model"``; it starts
    the header (see :func:`stl_header`).
    """
    out = io.BytesIO()
    # Normals are ours (unit length, computed in float64): numpy-stl's are not normalised.
    _stated_mesh(mesh, description, chunk).save(
        "print.stl", fh=out, mode=stl_mesh.stl.Mode.BINARY, update_normals=False
    )
    return out.getvalue()


def write_stl(path: str | os.PathLike, mesh: trimesh.Trimesh, description: str = "", chunk: int = 1_000_000) -> str:
    """Write ``mesh`` as binary STL atomically; return the file's SHA-256 hex digest.

    ``description`` starts the header (see :func:`stl_header`); ``chunk`` bounds the
    temporaries (see :func:`_stated_mesh`).
    """
    stated = _stated_mesh(mesh, description, chunk)
    with atomic_file(path) as fh:
        stated.save(os.fspath(path), fh=fh, mode=stl_mesh.stl.Mode.BINARY, update_normals=False)
    digest = hashlib.sha256(stl_header(description) + np.uint32(len(stated.data)).tobytes())
    digest.update(memoryview(stated.data).cast("B"))
    return digest.hexdigest()


def read_stl(path: str | os.PathLike) -> trimesh.Trimesh:
    """Read an STL (binary or ASCII) into a trimesh with merged vertices.

    Raises :class:`InputError` when the file is missing or not an STL.
    """
    if not os.path.isfile(path):
        raise InputError(path, "no such file")
    try:
        data = stl_mesh.Mesh.from_file(os.fspath(path))
    except Exception as exc:  # numpy-stl raises assorted errors on junk
        raise InputError(path, f"not a readable STL file ({exc})") from None
    if len(data.vectors) == 0:
        raise InputError(path, "the STL has no triangles")
    tris = np.asarray(data.vectors, dtype=np.float64)
    mesh = trimesh.Trimesh(**trimesh.triangles.to_kwargs(tris), process=True)
    mesh.merge_vertices()
    return mesh
