"""3MF: every print of a job in one file, named, coloured and placed on a build plate.

Written with the 3MF Consortium's lib3mf. Each print is one mesh object (unit
millimetre) with a base material (name and display colour) and metadata in the
osteoprint namespace: what it is, its material, the recommended printing process,
the STL it was made from, and the rigid transform from DICOM patient coordinates
(LPS) to the build plate. Parts are translated, never rotated or mirrored, into the
positive octant as the 3MF core specification asks: ``plate = LPS + t``, so
``lps_to_build`` and ``build_to_lps`` (4x4, row-major, 16 numbers) put a part back
where it was in the patient.
"""

from __future__ import annotations

import ctypes
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: XML namespace of osteoprint's metadata (a URN: it names, it does not link).
NAMESPACE = "urn:osteoprint:3mf:1"
#: Gap between parts on the plate, and their distance from the plate's origin, mm.
GAP_MM = 5.0
#: Parts are laid out in rows up to this width (a common build plate), mm.
ROW_WIDTH_MM = 250.0


@dataclass(frozen=True)
class PlatePart:
    """One print to put on the plate.

    Attributes
    ----------
    name : str
        Object name the slicer shows, e.g. "L1 vertebra model".
    vertices : ndarray, shape (n, 3)
        LPS millimetres.
    faces : ndarray, shape (m, 3)
        Triangles, outward-facing (counter-clockwise seen from outside).
    colour : tuple of 3 ints
        Display colour, RGB 0-255.
    material : str
        Material name (the base material's name).
    metadata : dict
        str -> str, written in :data:`NAMESPACE`.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    colour: tuple
    material: str
    metadata: dict = field(default_factory=dict)


def plate_translations(
    bounds: list[tuple[np.ndarray, np.ndarray]], gap_mm: float = GAP_MM, row_width_mm: float = ROW_WIDTH_MM
) -> list[np.ndarray]:
    """Translations (mm) that lay boxes side by side in rows, on z = 0, in the
    positive octant, ``gap_mm`` apart.

    Parameters
    ----------
    bounds : list of (min, max)
        Each part's axis-aligned box in LPS mm.
    """
    out = []
    x = y = gap_mm
    row_depth = 0.0
    for lo, hi in bounds:
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        size = hi - lo
        if x > gap_mm and x + size[0] > row_width_mm:
            x, y, row_depth = gap_mm, y + row_depth + gap_mm, 0.0
        out.append(np.array([x, y, 0.0]) - lo)
        x += size[0] + gap_mm
        row_depth = max(row_depth, size[1])
    return out


def _matrix_text(matrix: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in np.asarray(matrix, float).ravel())


def write_3mf(
    path: str | os.PathLike, parts: list[PlatePart], *, title: str = "osteoprint prints", metadata: dict | None = None
) -> list[np.ndarray]:
    """Write ``parts`` to a 3MF file on one build plate.

    Parameters
    ----------
    path : path
        The ``.3mf`` file to write (replaced if present).
    parts : list of PlatePart
    title : str
        The model's Title metadata.
    metadata : dict, optional
        Model-level str -> str entries in :data:`NAMESPACE`.

    Returns
    -------
    list of ndarray, shape (4, 4)
        Per part, the LPS-to-plate matrix written into its metadata.
    """
    import lib3mf
    from lib3mf import Lib3MF

    from .. import __version__

    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    model.SetUnit(Lib3MF.ModelUnit.MilliMeter)
    group = model.GetMetaDataGroup()
    group.AddMetaData("", "Title", title, "xs:string", False)
    group.AddMetaData("", "Application", f"osteoprint {__version__}", "xs:string", False)
    for key, value in (metadata or {}).items():
        group.AddMetaData(NAMESPACE, key, str(value), "xs:string", True)
    materials = model.AddBaseMaterialGroup()
    moves = plate_translations([(p.vertices.min(0), p.vertices.max(0)) for p in parts])
    matrices, keys = [], []
    for index, (part, move) in enumerate(zip(parts, moves)):
        obj = model.AddMeshObject()
        obj.SetName(part.name)
        _set_geometry(wrapper, obj, np.asarray(part.vertices, float) + move, part.faces)
        r, g, b = (int(c) for c in part.colour)
        prop = materials.AddMaterial(part.material, wrapper.RGBAToColor(r, g, b, 255))
        obj.SetObjectLevelProperty(materials.GetResourceID(), prop)
        to_plate = np.eye(4)
        to_plate[:3, 3] = move
        back = np.eye(4)
        back[:3, 3] = -move
        entries = dict(part.metadata)
        entries["lps_to_build"] = _matrix_text(to_plate)
        entries["build_to_lps"] = _matrix_text(back)
        meta = obj.GetMetaDataGroup()
        for key, value in entries.items():
            meta.AddMetaData(NAMESPACE, key, str(value), "xs:string", True)
        # lib3mf draws random UUIDs; stable ones make the same prints give the same file.
        key = f"{index}|{part.name}|{part.metadata.get('sha256', '')}"
        obj.SetUUID(_uuid(key, "object"))
        item = model.AddBuildItem(obj, wrapper.GetIdentityTransform())
        item.SetUUID(_uuid(key, "build item"))
        keys.append(key)
        matrices.append(to_plate)
    model.SetBuildUUID(_uuid("|".join(keys), "build"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.QueryWriter("3mf").WriteToFile(os.fspath(path))
    return matrices


def _uuid(key: str, what: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{NAMESPACE}:{what}:{key}"))


def _set_geometry(wrapper, obj, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Hand the mesh to lib3mf as two packed arrays.

    The Python binding's ``SetGeometry`` builds one ctypes object per vertex, which
    takes minutes for a scaffold of millions of triangles; the C function takes the
    same memory layout that numpy already has (float32 x 3, uint32 x 3).
    """
    from lib3mf import Lib3MF

    v = np.ascontiguousarray(vertices, dtype=np.float32)
    f = np.ascontiguousarray(faces, dtype=np.uint32)
    v_buf = (Lib3MF.Position * len(v)).from_buffer(v)
    f_buf = (Lib3MF.Triangle * len(f)).from_buffer(f)
    wrapper.checkError(
        obj,
        wrapper.lib.lib3mf_meshobject_setgeometry(
            obj._handle, ctypes.c_uint64(len(v)), v_buf, ctypes.c_uint64(len(f)), f_buf
        ),
    )
