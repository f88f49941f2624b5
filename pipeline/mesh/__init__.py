"""Stage 3: surfaces of segmented structures, in LPS millimetres, their quality checks,
and the vertebra models (one meshed and measured print per labelled vertebra)."""

from .checks import MeshQuality, check_mesh, count_self_intersections
from .repair import float32_vertices, snap_to_float32
from .surface import mesh_mask, mesh_vertebra, smallest_feature_mm
from .vertebrae import VertebraModel, vertebra_models

__all__ = [
    "MeshQuality",
    "VertebraModel",
    "check_mesh",
    "count_self_intersections",
    "float32_vertices",
    "mesh_mask",
    "mesh_vertebra",
    "smallest_feature_mm",
    "snap_to_float32",
    "vertebra_models",
]
