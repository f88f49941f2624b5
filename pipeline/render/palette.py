"""Colours shared by every picture and by the 3MF file, so that a vertebra has one
colour in ``labels.png``, in its thumbnail and in the slicer."""

from __future__ import annotations

#: Distinct, print-friendly hues (Tableau 10, without its grey), cycled by level.
LEVEL_COLOURS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
)
#: Scaffolds look like their metal or ceramic; guides like surgical-guide resin.
KIND_COLOURS = {
    "scaffold": (168, 172, 180),
    "guide": (70, 130, 200),
}


def level_colour(label_value: int) -> tuple[int, int, int]:
    """RGB (0-255) of the vertebra with VerSe label value ``label_value``."""
    return LEVEL_COLOURS[int(label_value) % len(LEVEL_COLOURS)]


def print_colour(record: dict) -> tuple[int, int, int]:
    """RGB (0-255) of a print, from its manifest record."""
    if record.get("kind") == "anatomical_model" and record.get("label_value") is not None:
        return level_colour(record["label_value"])
    return KIND_COLOURS.get(record.get("kind"), (200, 190, 170))
