"""Binary STL, the format every slicer takes. Written with numpy-stl.

STL carries no units or coordinate system; osteoprint's convention (millimetres,
DICOM LPS patient coordinates) is stated in the 80-byte header and in the manifest.
"""

from __future__ import annotations

import hashlib
import struct
import os

import numpy as np
import trimesh
from stl import mesh as stl_mesh

from ..errors import InputError
from .atomic import write_bytes_atomic

HEADER = b"osteoprint binary STL; units mm; coordinates DICOM LPS"


def stl_bytes(mesh: trimesh.Trimesh) -> bytes:
    """Encode ``mesh`` as binary STL (float32 vertices, per-face normals)."""
    tris = np.asarray(mesh.triangles, dtype=np.float32)
    data = np.zeros(len(tris), dtype=stl_mesh.Mesh.dtype)
    data["vectors"] = tris
    data["normals"] = np.asarray(mesh.face_normals, dtype=np.float32)
    # numpy-stl's own writer stamps the current time into the header, which would
    # make identical inputs give different files; the record layout is its dtype.
    header = HEADER.ljust(80, b" ")[:80]
    return header + struct.pack("<I", len(data)) + data.tobytes()


def write_stl(path: str | os.PathLike, mesh: trimesh.Trimesh) -> str:
    """Write ``mesh`` as binary STL atomically; return the file's SHA-256 hex digest."""
    data = stl_bytes(mesh)
    write_bytes_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


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
