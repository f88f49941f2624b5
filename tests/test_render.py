"""Pictures: the label check in patient orientation whatever the stored orientation,
following a curved spine; print thumbnails with the right silhouette and sides.

The synthetic spine is defined in LPS millimetres and sampled on grids stored in
different orientations, so every picture has one known truth.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from pipeline.render import Camera, label_picture, level_colour, render_mesh, spine_reformats
from pipeline.segment import VertebraSegmentation
from pipeline.volume import CTVolume

# Three vertebrae, L1 on top, each shifted to the patient's left by 12 mm more than
# the one above (a scoliotic spine): a flat mid-sagittal plane would miss two of
# the three spinous processes (3 mm either side of the midline).
CENTRES = {20: (0.0, 10.0, 0.0), 21: (12.0, 14.0, -30.0), 22: (24.0, 18.0, -60.0)}
BOX_LO, BOX_HI = np.array([-45.0, -40.0, -85.0]), np.array([70.0, 85.0, 25.0])


def spine_at(points: np.ndarray) -> np.ndarray:
    """Label value at LPS points (n, 3): body 30 x 30 x 20 mm, spinous process behind
    it (y + 15 .. + 40 mm), and on L1 a bump on the patient's left (x + 15 .. + 22 mm)."""
    out = np.zeros(len(points), dtype=np.int16)
    for value, (cx, cy, cz) in CENTRES.items():
        d = points - np.array([cx, cy, cz])
        body = (np.abs(d[:, 0]) <= 15) & (np.abs(d[:, 1]) <= 15) & (np.abs(d[:, 2]) <= 10)
        spine = (np.abs(d[:, 0]) <= 3) & (d[:, 1] > 15) & (d[:, 1] <= 40) & (np.abs(d[:, 2]) <= 5)
        out[body | spine] = value
        if value == 20:
            out[(d[:, 0] > 15) & (d[:, 0] <= 22) & (np.abs(d[:, 1]) <= 5) & (np.abs(d[:, 2]) <= 3)] = value
    return out


AXES = {"L": (1, 0, 0), "R": (-1, 0, 0), "P": (0, 1, 0), "A": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1)}


def sampled(codes: str, spacing: tuple) -> tuple[CTVolume, VertebraSegmentation]:
    """The synthetic spine on a grid whose array axes point along ``codes``."""
    directions = np.array([AXES[c] for c in codes], float)
    affine = np.eye(4)
    shape = []
    for axis, (direction, step) in enumerate(zip(directions, spacing)):
        k = int(np.argmax(np.abs(direction)))
        extent = BOX_HI[k] - BOX_LO[k]
        shape.append(int(np.floor(extent / step)) + 1)
        affine[:3, axis] = direction * step
        affine[k, 3] = BOX_LO[k] if direction[k] > 0 else BOX_HI[k]
    index = np.indices(shape).reshape(3, -1).T
    lps = index @ affine[:3, :3].T + affine[:3, 3]
    labels = spine_at(lps).reshape(shape)
    hu = np.where(labels > 0, 700, 0).astype(np.int16)
    levels = {20: "L1", 21: "L2", 22: "L3"}
    seg = VertebraSegmentation(labels=labels, affine=affine, levels=levels, named=True, evidence="test")
    return CTVolume(hu=hu, affine=affine), seg


ORIENTATIONS = {
    "axial head-first": ("SPL", (2.5, 0.8, 0.7)),
    "axial feet-first": ("IPR", (2.5, 0.8, 0.7)),
    "sagittal slices": ("LIP", (3.0, 0.9, 0.6)),
    "coronal slices": ("PIL", (2.0, 1.0, 0.75)),
}


def _extent(reformat, value: int, z: float):
    """LPS span across the picture (y for sagittal, x for coronal) of a label at height z."""
    row = int(round((reformat.top_z - z) / reformat.pixel_mm))
    cols = np.flatnonzero(reformat.labels[row] == value)
    assert len(cols), f"{value} missing at z={z} in the {reformat.view} picture"
    return reformat.left + cols.min() * reformat.pixel_mm, reformat.left + cols.max() * reformat.pixel_mm


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_reformats_are_in_patient_orientation_whatever_the_storage(name):
    codes, spacing = ORIENTATIONS[name]
    volume, seg = sampled(codes, spacing)
    sagittal, coronal = spine_reformats(volume.hu, seg.labels, seg.affine, seg.levels, pixel_mm=0.5)
    tol = max(spacing) + 0.5
    for reformat in (sagittal, coronal):
        rows = {v: np.nonzero(reformat.labels == v)[0].mean() for v in CENTRES}
        assert rows[20] < rows[21] < rows[22], "head up: L1 above L2 above L3"
    for value, (cx, cy, cz) in CENTRES.items():
        # Sagittal: front on the left, back on the right; the surface follows the
        # spine, so each vertebra's spinous process (3 mm wide) is in the picture.
        front, back = _extent(sagittal, value, cz)
        assert front == pytest.approx(cy - 15, abs=tol) and back == pytest.approx(cy + 40, abs=tol), (name, value)
        # Coronal: the patient's right on the viewer's left.
        right, left = _extent(coronal, value, cz + 2)
        assert right == pytest.approx(cx - 15, abs=tol), (name, value)
        assert left == pytest.approx(cx + (22 if value == 20 else 15), abs=tol), (name, value)


def test_pixels_are_square_and_the_picture_is_a_png():
    volume, seg = sampled("SPL", (3.0, 0.6, 0.9))
    png = label_picture(volume, seg)
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape[0] > 200 and image.shape[1] > 200
    for value in CENTRES:
        assert np.all(image == level_colour(value), axis=2).sum() > 50, f"outline of {value} not drawn"
    sagittal, _ = spine_reformats(volume.hu, seg.labels, seg.affine, seg.levels)
    assert sagittal.pixel_mm == pytest.approx(0.6)  # finest voxel side, on both display axes


def test_thumbnail_silhouette_of_a_sphere_has_the_projected_area():
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=10.0)
    size, margin = 200, 0.1
    image = render_mesh(sphere.vertices, sphere.faces, size=size, margin=margin)
    covered = np.any(image != 255, axis=2).sum()
    radius_px = (1 - 2 * margin) * size / 2
    assert covered == pytest.approx(np.pi * radius_px**2, rel=0.03)


def test_thumbnail_shows_the_patients_left_on_the_right_and_the_head_up():
    big = trimesh.creation.icosphere(subdivisions=3, radius=10.0)
    left = trimesh.creation.icosphere(subdivisions=3, radius=3.0)
    left.apply_translation([30.0, 0.0, 0.0])
    up = trimesh.creation.icosphere(subdivisions=3, radius=3.0)
    up.apply_translation([0.0, 0.0, 30.0])
    for marker, check in ((left, "right"), (up, "up")):
        mesh = trimesh.util.concatenate([big, marker])
        image = render_mesh(mesh.vertices, mesh.faces, size=160, camera=Camera())
        parts, n = ndimage.label(np.any(image != 255, axis=2))
        assert n == 2
        sizes = ndimage.sum(np.ones_like(parts), parts, index=[1, 2])
        small, large = (1, 2) if sizes[0] < sizes[1] else (2, 1)
        (r_small, c_small), (r_large, c_large) = ndimage.center_of_mass(parts > 0, parts, [small, large])
        if check == "right":
            assert c_small > c_large + 10, "the patient's left must be on the picture's right"
        else:
            assert r_small < r_large - 10, "the head must be up"
