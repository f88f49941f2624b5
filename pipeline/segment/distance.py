"""Euclidean distances inside and outside masks, in millimetres: the one
implementation is :mod:`pipeline.geometry.distance`, named here for the
segmentation modules."""

from ..geometry.distance import depth_mm, within_mm

__all__ = ["depth_mm", "within_mm"]
