"""Binary STL, the format every slicer takes. Written with numpy-stl's record layout.

STL carries no units or coordinate system. Every file osteoprint writes states them
in its 80-byte header, which starts with a short description of the print and ends
with ``SPACE=LPS``: the 3D Slicer convention (Slicer reads the header and places an
LPS model correctly instead of assuming RAS and mirroring it front-to-back and
left-to-right). Vertices are millimetres in DICOM patient coordinates (LPS).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import trimesh
from stl import mesh as stl_mesh

from ..errors import InputError

#: Ends every header: units, and the coordinate system as 3D Slicer reads it.
HEADER_SUFFIX = b" (osteoprint, mm) SPACE=LPS"
HEADER_BYTES = 80


def _records(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """Binary STL records (normal, three vertices, attribute) of ``faces``."""
    tris = vertices[faces]
    normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
    rec = np.zeros(len(tris), dtype=stl_mesh.Mesh.dtype)
    rec["vectors"] = tris
    rec["normals"] = normals
    return rec.tobytes()


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
    # numpy-stl's own writer stamps the current time into the header, which would
    # make identical inputs give different files.
    return (text[:room] + HEADER_SUFFIX).ljust(HEADER_BYTES, b" ")


def header_text(path_or_bytes) -> str:
    """The header of a binary STL file (or of its bytes) as text, padding stripped."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        head = bytes(path_or_bytes[:HEADER_BYTES])
    else:
        with open(path_or_bytes, "rb") as fh:
            head = fh.read(HEADER_BYTES)
    return head.rstrip(b" \0").decode("ascii", "replace")


def _header(n_triangles: int, description: str) -> bytes:
    return stl_header(description) + struct.pack("<I", n_triangles)


def stl_bytes(mesh: trimesh.Trimesh, description: str = "") -> bytes:
    """Encode ``mesh`` as binary STL (float32 vertices, per-face normals).

    ``description`` says what the print is, e.g. ``"L1 vertebra model"``; it starts
    the header (see :func:`stl_header`).
    """
    faces = np.asarray(mesh.faces)
    return _header(len(faces), description) + _records(np.asarray(mesh.vertices), faces)


def write_stl(path: str | os.PathLike, mesh: trimesh.Trimesh, description: str = "",
              chunk: int = 1_000_000) -> str:
    """Write ``mesh`` as binary STL atomically; return the file's SHA-256 hex digest.

    ``description`` starts the header (see :func:`stl_header`). Written in chunks of
    ``chunk`` triangles so that a scaffold of tens of millions of triangles never
    needs its whole file in memory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    faces = np.asarray(mesh.faces)
    vertices = np.asarray(mesh.vertices)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            head = _header(len(faces), description)
            fh.write(head)
            digest.update(head)
            for start in range(0, len(faces), chunk):
                data = _records(vertices, faces[start : start + chunk])
                fh.write(data)
                digest.update(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
