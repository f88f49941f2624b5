"""Pictures for people: the label check and print thumbnails, as PNG bytes.

Pure functions of arrays and meshes, headless (numpy, scikit-image-style; matplotlib's
Agg canvas for text), no display and no GPU needed.
"""

from .labels import draw_reformats, label_picture
from .palette import level_colour, print_colour
from .png import png_bytes
from .reformat import Reformat, spine_reformats, vertebra_centres
from .thumbnail import Camera, print_thumbnail, render_mesh

__all__ = [
    "Camera",
    "Reformat",
    "draw_reformats",
    "label_picture",
    "level_colour",
    "png_bytes",
    "print_colour",
    "print_thumbnail",
    "render_mesh",
    "spine_reformats",
    "vertebra_centres",
]
