"""Stage 3: surfaces of segmented structures, in LPS millimetres, and their quality checks."""

from .checks import MeshQuality, check_mesh, count_self_intersections
from .surface import mesh_mask, mesh_vertebra, smallest_feature_mm

__all__ = [
    "MeshQuality",
    "check_mesh",
    "count_self_intersections",
    "mesh_mask",
    "mesh_vertebra",
    "smallest_feature_mm",
]
