"""Private geometry shared by the stages: distances in mm and the vertebral body frame.

Each piece exists once and is tested once (tests/test_geometry.py) against an
analytic truth; segmentation, fracture grading, screw planning and scaffolds all
call it. Conventions: arrays index the scan grid, ``spacing`` is the voxel size in
mm per array axis, signed distances are negative inside.

Modules: :mod:`.distance` (depth, dilation by distance, signed distance),
:mod:`.body` (the vertebral body inside a vertebra's mask and its first frame).
"""
