"""Synthetic lumbar-spine CT phantom with exact ground truth.

>>> from pipeline.phantom import make_phantom           # doctest: +SKIP
>>> ph = make_phantom()                                # the bundled sample's geometry
>>> ph.model.spine.vertebra_sdf("L3", points_lps)      # signed distance, mm

Modules: :mod:`.shapes` (signed-distance primitives), :mod:`.levels` (dimensions
per level and the lordotic chain), :mod:`.vertebra`, :mod:`.pelvis` (sacrum, ilia,
ribs), :mod:`.anatomy` (the assembled bones, fracture, osteophyte), :mod:`.body`
(soft tissues and table), :mod:`.tissues` (HU values and the point classifier),
:mod:`.scan` (image synthesis), :mod:`.truth` (truth dict), :mod:`.truthgeom`
(measurements on the model).
"""

from .anatomy import SpineModel
from .scan import Phantom, make_phantom
from .tissues import PhantomModel

__all__ = ["Phantom", "PhantomModel", "SpineModel", "make_phantom"]
