"""Binary STL, the format every slicer takes. Written with numpy-stl.

STL carries no units or coordinate system; osteoprint's convention (millimetres,
DICOM LPS patient coordinates) is stated in the 80-byte header and in the manifest.
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

HEADER = b"osteoprint binary STL; units mm; coordinates DICOM LPS"


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


def _header(n_triangles: int) -> bytes:
    # numpy-stl's own writer stamps the current time into the header, which would
    # make identical inputs give different files; the record layout is its dtype.
    return HEADER.ljust(80, b" ")[:80] + struct.pack("<I", n_triangles)


def stl_bytes(mesh: trimesh.Trimesh) -> bytes:
    """Encode ``mesh`` as binary STL (float32 vertices, per-face normals)."""
    faces = np.asarray(mesh.faces)
    return _header(len(faces)) + _records(np.asarray(mesh.vertices), faces)


def write_stl(path: str | os.PathLike, mesh: trimesh.Trimesh, chunk: int = 1_000_000) -> str:
    """Write ``mesh`` as binary STL atomically; return the file's SHA-256 hex digest.

    Written in chunks of ``chunk`` triangles so that a scaffold of tens of millions
    of triangles never needs its whole file in memory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    faces = np.asarray(mesh.faces)
    vertices = np.asarray(mesh.vertices)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            head = _header(len(faces))
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
