"""``labels.png``: the two-second check of a segmentation's names.

A sagittal and a coronal reformat through the vertebrae (see :mod:`.reformat`), each
vertebra outlined in its colour and named beside it. Drawn with matplotlib's Agg
canvas (no display, no global pyplot state).
"""

from __future__ import annotations

import io

import numpy as np
from scipy import ndimage

from .palette import level_colour
from .reformat import Reformat, spine_reformats

#: Bone window for the background picture, HU.
WINDOW_HU = (-450.0, 1150.0)
#: Largest height and width of the two pictures, pixels (the scale follows the anatomy).
HEIGHT_PX = 900
WIDTH_PX = 1500


def outline(labels: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels of each labelled region that touch another value (its outline), as
    their label value; 0 elsewhere. ``width`` pixels thick, inside the region."""
    edge = np.zeros(labels.shape, dtype=bool)
    for axis in (0, 1):
        for shift in (1, -1):
            edge |= labels != np.roll(labels, shift, axis=axis)
    edge &= labels > 0
    if width > 1:
        grown = ndimage.binary_dilation(edge, iterations=width - 1)
        edge = grown & (labels > 0)
    return np.where(edge, labels, 0)


def name_positions(reformat: Reformat, levels: dict) -> dict[int, tuple[float, float, str]]:
    """Where to write each vertebra's name: ``value -> (row, col, alignment)``.

    Beside the vertebra at its middle row: on the front side (viewer's left) in the
    sagittal picture, on the patient's left (viewer's right) in the coronal one.
    """
    out = {}
    found = ndimage.find_objects(np.asarray(reformat.labels, dtype=np.int32))
    for value in levels:
        if value < 1 or value > len(found) or found[value - 1] is None:
            continue
        rows, cols = np.nonzero(reformat.labels[found[value - 1]] == value)
        rows = rows + found[value - 1][0].start
        cols = cols + found[value - 1][1].start
        middle = float(np.median(rows))
        near = np.abs(rows - middle) <= max(2.0, 0.25 * (rows.max() - rows.min()))
        if reformat.view == "sagittal":
            out[value] = (middle, float(cols[near].min()) - 6, "right")
        else:
            out[value] = (middle, float(cols[near].max()) + 6, "left")
    return out


def _panel(ax, reformat: Reformat, levels: dict, title: str, scale: float) -> None:
    lo, hi = WINDOW_HU
    grey = np.clip((reformat.hu - lo) / (hi - lo), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    edges = outline(reformat.labels, width=max(1, int(round(1.5 / scale))))
    for value in levels:
        rgb[edges == value] = np.asarray(level_colour(value)) / 255.0
    ax.imshow(rgb, interpolation="nearest", aspect="auto")  # the axes box already has the picture's shape
    ax.set_xlim(-0.5, reformat.hu.shape[1] - 0.5)
    ax.set_ylim(reformat.hu.shape[0] - 0.5, -0.5)
    ax.set_axis_off()
    ax.set_title(title, fontsize=11, color="white", loc="left")
    font = dict(fontsize=11, fontweight="bold", va="center")
    for value, (row, col, align) in name_positions(reformat, levels).items():
        colour = np.asarray(level_colour(value)) / 255.0
        ax.text(
            col,
            row,
            levels[value],
            color=colour,
            ha=align,
            clip_on=True,
            bbox=dict(boxstyle="round,pad=0.15", facecolor="black", edgecolor="none", alpha=0.75),
            **font,
        )
    left, right = reformat.sides
    letters = dict(color="yellow", fontsize=12, fontweight="bold", transform=ax.transAxes)
    ax.text(0.01, 0.5, left, ha="left", va="center", **letters)
    ax.text(0.99, 0.5, right, ha="right", va="center", **letters)
    ax.text(0.5, 0.995, "S", ha="center", va="top", **letters)
    ax.text(0.5, 0.005, "I", ha="center", va="bottom", **letters)


def draw_reformats(sagittal: Reformat, coronal: Reformat, levels: dict, note: str = "") -> bytes:
    """PNG of the two reformats side by side with outlines and names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = sagittal.hu.shape[0]
    widths = [sagittal.hu.shape[1], coronal.hu.shape[1]]
    scale = min(HEIGHT_PX / rows, WIDTH_PX / sum(widths))
    panel_px = rows * scale
    gap, top, bottom = 12, 28, 22 if note else 4
    width_px = int(sum(widths) * scale) + 3 * gap
    height_px = int(panel_px) + top + bottom
    fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100, facecolor="black")
    FigureCanvasAgg(fig)
    x = gap
    for reformat, w, title in (
        (sagittal, widths[0], "sagittal (front on the left)"),
        (coronal, widths[1], "coronal (patient's right on the left)"),
    ):
        ax = fig.add_axes([x / width_px, bottom / height_px, w * scale / width_px, panel_px / height_px])
        _panel(ax, reformat, levels, title, scale)
        x += w * scale + gap
    if note:
        fig.text(gap / width_px, 4 / height_px, note, color="white", fontsize=9, va="bottom")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="black", metadata={"Software": None})
    return buf.getvalue()


def label_picture(volume, segmentation) -> bytes:
    """``labels.png`` for a CT volume and its vertebra segmentation (PNG bytes).

    Parameters
    ----------
    volume : CTVolume
        Any orientation; resampled to square pixels in patient orientation.
    segmentation : VertebraSegmentation
        On the volume's grid.
    """
    sagittal, coronal = spine_reformats(volume.hu, segmentation.labels, segmentation.affine, segmentation.levels)
    named = "levels named from landmarks" if segmentation.named else "levels not named (V1, V2 ... from the top)"
    note = f"{len(segmentation.levels)} vertebrae, {named}; surfaces through each vertebra's centre"
    return draw_reformats(sagittal, coronal, dict(segmentation.levels), note)
