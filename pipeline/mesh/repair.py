"""Make a mesh survive the trip through a binary STL file.

Binary STL stores float32 coordinates. Marching cubes can put two vertices a
micrometre apart on neighbouring cube edges; rounded to float32 they become one
point, and a slicer (or anyone re-reading the file) sees collapsed triangles and a
surface that is no longer closed. Snapping to float32 first, merging, and removing
the triangles that collapsed gives a mesh that is exactly what the file will hold.
"""

from __future__ import annotations

import numpy as np
import trimesh


def float32_vertices(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """``mesh`` with its vertices rounded to float32 as a binary STL stores them
    (held as float64), the faces as they are: nothing merged, nothing removed."""
    vertices = np.asarray(mesh.vertices, dtype=np.float32).astype(np.float64)
    return trimesh.Trimesh(vertices, np.asarray(mesh.faces), process=False)


def snap_to_float32(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """``mesh`` with float32-representable vertices, merged, without collapsed faces.

    Collapsing an edge whose two vertices round to the same float32 point removes its
    two triangles and keeps the surface closed.
    """
    if len(mesh.faces) == 0:
        return mesh
    rounded = float32_vertices(mesh)
    unique, inverse = np.unique(rounded.vertices, axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[np.asarray(mesh.faces)]
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    if ok.all() and len(unique) == len(mesh.vertices):
        # Nothing merged; still hand back the rounded coordinates, so that every
        # later check sees exactly what the file will hold.
        return rounded
    out = trimesh.Trimesh(unique, faces[ok], process=False)
    out.remove_unreferenced_vertices()
    return out
