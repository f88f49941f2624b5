"""The synthetic lumbar phantom: its image, truth maps and files measured against the
signed-distance model it was made from (and against independent computations)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from pipeline.phantom import make_phantom
from pipeline.phantom.anatomy import SpineModel
from pipeline.phantom.scan import default_geometry
from pipeline.phantom.tissues import INDEX, PhantomModel
from pipeline.phantom.truthgeom import body_depth_points, ray_exit, volume_and_centroid
from pipeline.volume import axis_codes, index_to_lps, lps_to_index, voxel_sizes

MODEL = SpineModel()


def roi_phantom(centre, matrix=(64, 72), n_slices=30, pixel_mm=0.8, slice_mm=1.25, **kw):
    """A full-resolution phantom cropped around ``centre`` (LPS mm)."""
    rows, cols = matrix
    origin = np.asarray(centre, float) - np.array(
        [(cols - 1) / 2 * pixel_mm, (rows - 1) / 2 * pixel_mm, (n_slices - 1) / 2 * slice_mm]
    )
    return make_phantom(matrix=matrix, pixel_mm=pixel_mm, n_slices=n_slices, slice_mm=slice_mm, origin=origin, **kw)


def voxel_lps(ph, mask=None):
    idx = np.argwhere(np.ones(ph.labels.shape, bool) if mask is None else mask)
    return idx, index_to_lps(ph.volume.affine, idx)


@pytest.fixture(scope="module")
def coarse():
    """The whole anatomy at 2 x 2 x 3 mm (fast)."""
    return make_phantom(matrix=(100, 96), pixel_mm=2.0, n_slices=90, slice_mm=3.0, seed=5)


@pytest.fixture(scope="module")
def l1_roi():
    """L1 with its fracture, at the sample's resolution."""
    return roi_phantom(MODEL.frames["L1"].origin, matrix=(60, 70), n_slices=36, seed=1)


@pytest.fixture(scope="module")
def l3_roi():
    """L3 with its osteophyte, at the sample's resolution."""
    return roi_phantom(MODEL.frames["L3"].origin + np.array([0, 8.0, 0]), matrix=(84, 84), n_slices=30, seed=2)


# ----------------------------------------------------------------- geometry


def test_scan_geometry_is_axial_spl_with_realistic_position():
    ph = roi_phantom(MODEL.frames["L3"].origin, matrix=(20, 24), n_slices=3)
    aff = ph.volume.affine
    assert ph.volume.hu.dtype == np.int16 and ph.volume.shape == (3, 20, 24)
    assert axis_codes(aff) == "SPL"
    np.testing.assert_allclose(voxel_sizes(aff), (1.25, 0.8, 0.8))
    np.testing.assert_allclose(aff[:3, :3], [[0, 0, 0.8], [0, 0.8, 0], [1.25, 0, 0]])
    assert ph.truth["geometry"]["image_orientation_patient"] == [1, 0, 0, 0, 1, 0]
    assert ph.truth["geometry"]["axis_codes"] == "SPL"
    json.dumps(ph.truth)  # serialisable


def test_default_field_of_view_holds_spine_ribs_pelvis_and_table():
    model = PhantomModel(MODEL)
    rows, cols, n, px, dz = 240, 232, 212, 0.8, 1.25
    origin = default_geometry(model, (rows, cols), px, n, dz)
    assert np.all(np.abs(origin) > 1.0), "ImagePositionPatient should look like a scanner's"
    hi = origin + np.array([(cols - 1) * px, (rows - 1) * px, (n - 1) * dz])
    for name in MODEL.levels:  # every vertebral body is in view
        c = MODEL.frames[name].origin
        assert np.all(c > origin + 20) and np.all(c < hi - 20), name
    table_bottom = model.body.table.y0 + 36.0
    assert origin[1] < model.body.skin_back_y < table_bottom < hi[1]
    for rib in MODEL.ribs.values():  # ribs' proximal part in view
        head = rib.lo[2] < hi[2] and rib.hi[2] > origin[2]
        assert head
    assert MODEL.frames["S1"].origin[2] - 20 > origin[2]


def test_lordosis_and_thoracolumbar_junction(coarse):
    a = coarse.truth["alignment"]
    assert 40.0 <= a["lordosis_L1_S1_deg"] <= 50.0
    assert abs(a["thoracolumbar_T12_L1_deg"]) <= 8.0
    z = [lv["body_centroid_lps"][2] for lv in coarse.truth["levels"]]
    assert z == sorted(z, reverse=True), "T12 first, S1 last, head at +z"


# ----------------------------------------------------------------- image values


def _deep(model, pts, band_mm):
    t, _, near = model.classify(pts, band=band_mm)
    return t, ~near


def test_tissue_hu_bands(l1_roi, coarse):
    ph = l1_roi
    idx, pts = voxel_lps(ph)
    hu = ph.volume.hu.reshape(-1)
    t, deep = _deep(ph.model, pts, 2.0)
    trab = deep & (t == INDEX["trabecular"])
    disc = deep & np.isin(t, [INDEX["disc_annulus"], INDEX["disc_nucleus"]])
    assert trab.sum() > 200 and disc.sum() > 50
    # Each vertebra's cancellous bone at its own level of the truth's gradient
    # (L1 here; every level on the coarse phantom below).
    gradient = ph.truth["bone_density"]["trabecular_hu"]
    assert gradient["L1"] == ph.truth["levels"][1]["trabecular_hu"]
    for phantom, band, least in ((ph, 2.0, 200), (coarse, 4.0, 30)):
        idx, points = voxel_lps(phantom, phantom.labels > 0)
        t_all, bone, near = phantom.model.classify(points, band=band)
        values = phantom.volume.hu[tuple(idx.T)]
        seen = set()
        for i, (name, _, _) in enumerate(phantom.model.bones):
            own = ~near & (t_all == INDEX["trabecular"]) & (bone == i)
            if name in gradient and own.sum() >= least:
                seen.add(name)
                assert abs(np.median(values[own]) - gradient[name]) <= 6.0, name
        assert "L1" in seen
    assert seen >= {"T12", "L1", "L2", "L3", "L4", "L5"}
    assert 60 <= np.median(hu[disc]) <= 110
    f = np.min([ph.model.spine.vertebra_sdf(n, pts, exact=False) for n in ("T12", "L1", "L2")], axis=0)
    shell = (f > -0.75) & (f < -0.25)
    assert shell.sum() > 200
    assert 700 <= np.median(hu[shell]) <= 1200
    _, cpts = voxel_lps(coarse)
    t, deep = _deep(coarse.model, cpts, 4.0)
    fat = deep & (t == INDEX["subcutaneous_fat"])
    assert fat.sum() > 500
    assert -120 <= np.median(coarse.volume.hu.reshape(-1)[fat]) <= -80


def test_noise_sigma_in_uniform_fat(coarse):
    _, pts = voxel_lps(coarse)
    t, deep = _deep(coarse.model, pts, 4.0)
    fat = deep & (t == INDEX["subcutaneous_fat"])
    sigma = coarse.volume.hu.reshape(-1)[fat].astype(float).std()
    assert abs(sigma - 20.0) < 1.5, sigma


# ----------------------------------------------------------------- truth maps


@pytest.mark.parametrize("roi", ["l1_roi", "l3_roi"])
def test_labels_agree_with_model_sign(roi, request):
    ph = request.getfixturevalue(roi)
    _, pts = voxel_lps(ph)
    lab = ph.labels.reshape(-1)
    half_diag = 0.5 * np.linalg.norm(voxel_sizes(ph.volume.affine))
    checked = 0
    for lv in ph.truth["levels"]:
        f = ph.model.spine.vertebra_sdf(lv["name"], pts, exact=False)
        sure_in, sure_out = f < -half_diag, f > half_diag
        if sure_in.sum() < 100:
            continue
        assert np.all(lab[sure_in] == lv["label"]), lv["name"]
        assert not np.any(lab[sure_out] == lv["label"]), lv["name"]
        checked += 1
    assert checked >= 2


def test_fracture_height_loss_measured_on_labels(l1_roi):
    ph = l1_roi
    body = ph.model.spine.intact_bodies["L1"]
    up = body.frame.R[:, 2]
    pts = body_depth_points(body, {"anterior": 0.15, "posterior": 0.85})
    intact = ph.truth["levels"][1]["intact_body_heights_mm"]
    steps = np.arange(-20.0, 20.0, 0.05)
    measured = {}
    for k, p in pts.items():
        line = p + steps[:, None] * up
        ijk = np.rint(lps_to_index(ph.volume.affine, line)).astype(int)
        assert np.all((ijk >= 0) & (ijk < ph.labels.shape)), "the ROI must hold the body"
        measured[k] = (ph.labels[tuple(ijk.T)] == 20).sum() * 0.05
    loss = 1 - measured["anterior"] / intact["anterior"]
    assert abs(loss - 0.30) < 0.05, measured
    assert abs(1 - measured["posterior"] / intact["posterior"]) < 0.05, measured
    assert abs(ph.truth["fracture"]["anterior_height_loss_fraction"] - 0.30) < 0.005


def test_defect_volume_matches_analytic(l1_roi):
    fr = l1_roi.truth["fracture"]
    vox = np.prod(voxel_sizes(l1_roi.volume.affine))
    on_grid = l1_roi.defect.sum() * vox
    assert abs(on_grid / fr["defect_volume_mm3"] - 1) < 0.05, (on_grid, fr["defect_volume_mm3"])
    # Independent estimate: integrate (intact endplate - cut plane)+ over the endplate
    # outline in the body frame, from the analytic height and plane formulas.
    body = MODEL.intact_bodies["L1"]
    h = 0.1
    x, y = np.meshgrid(np.arange(-body.W / 2, body.W / 2, h), np.arange(-body.D / 2, body.D / 2, h))
    top, _ = body.heights_local(x, y)
    plane = MODEL.fracture_plane
    n = body.frame.R.T @ plane.normal
    c = body.frame.to_local(plane.point[None])[0]
    z_plane = c[2] - (n[0] * (x - c[0]) + n[1] * (y - c[1])) / n[2]
    outline = (x / (body.W / 2)) ** 2 + (y / (body.D / 2)) ** 2 < 1
    column = np.clip(top - z_plane, 0, None)[outline].sum() * h * h
    # The column integral ignores the 2-mm rounding of the endplate rim (it counts a
    # little too much near the outline), so it is an upper estimate.
    assert 0.0 < column / fr["defect_volume_mm3"] - 1 < 0.10, (column, fr["defect_volume_mm3"])
    # The truth's fine integration has converged: a grid twice as coarse agrees.
    coarser, _ = volume_and_centroid(MODEL.defect, step=0.4)
    assert abs(coarser / fr["defect_volume_mm3"] - 1) < 0.005


def test_osteophyte_is_on_the_patients_left_and_superior(l3_roi):
    ph = l3_roi
    feat = ph.truth["asymmetric_feature"]
    l3 = ph.truth["levels"][3]
    assert feat["level"] == "L3" and feat["side"] == "left"
    tip = np.array(feat["tip_lps"])
    centroid = np.array(l3["body_centroid_lps"])
    mirror = tip.copy()
    mirror[0] = 2 * centroid[0] - tip[0]
    assert tip[0] > centroid[0] + 20, "the spur is on +x, the patient's left (LPS)"
    assert tip[2] > centroid[2] + 8, "the spur is on the superior rim"
    idx, pts = voxel_lps(ph)
    lab = ph.labels.reshape(-1)
    hu = ph.volume.hu.reshape(-1)
    near_tip = np.linalg.norm(pts - tip, axis=1) < 2.5
    near_mirror = np.linalg.norm(pts - mirror, axis=1) < 2.5
    assert (lab[near_tip] == 22).sum() >= 3
    assert (lab[near_mirror] == 22).sum() == 0
    assert np.median(hu[near_tip]) > np.median(hu[near_mirror]) + 150
    # On the array: the spur's voxels lie at higher column indices (columns run +x).
    cols = idx[near_tip & (lab == 22), 2]
    assert cols.mean() > ph.volume.shape[2] / 2


def test_ribs_and_ilia_are_bone_on_the_image_but_not_labelled(coarse):
    _, pts = voxel_lps(coarse)
    hu = coarse.volume.hu.reshape(-1)
    lab = coarse.labels.reshape(-1)
    for name in ("rib_left", "rib_right", "ilium_left", "ilium_right"):
        f = coarse.model.spine.vertebra_sdf(name, pts, exact=False)
        inside = f < -1.0
        assert inside.sum() > 5, name
        assert np.all(lab[inside] == 0), name
        assert np.median(hu[inside]) > 120, name  # marrow 140-150 HU + cortex


# ----------------------------------------------------------------- the model


def test_vertebra_sdf_is_a_euclidean_distance():
    trimesh = pytest.importorskip("trimesh")
    from skimage.measure import marching_cubes

    from pipeline.phantom.truthgeom import grid_over

    level = "L4"
    shape = MODEL.vertebrae[level]
    c = MODEL.frames[level].point((12.0, 20.0, 0.0))  # pedicle, lamina, body wall
    h, lo, hi = 0.25, c - 12, c + 12
    g, n = grid_over(lo, hi, h)
    verts, faces, _, _ = marching_cubes(shape.sdf(g).reshape(n), 0.0, spacing=(h,) * 3)
    mesh = trimesh.Trimesh(verts + lo + h / 2, faces, process=False)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(mesh.vertices), 1500)
    pts = mesh.vertices[pick] + rng.uniform(-2, 2, (1500, 1)) * mesh.vertex_normals[pick]
    pts = pts[np.all((pts > lo + 3) & (pts < hi - 3), axis=1)]
    d = MODEL.vertebra_sdf(level, pts)
    _, dist, _ = trimesh.proximity.closest_point(mesh, pts)
    truth = dist * np.sign(shape.sdf(pts))
    err = np.abs(d - truth)
    assert np.percentile(err, 99) < 0.05 and np.median(err) < 0.01, np.percentile(err, [50, 99])


def test_pedicle_truth_matches_the_model(coarse):
    for lv in coarse.truth["levels"]:
        if not lv["pedicles"]:
            continue
        shape = MODEL.vertebrae[lv["name"]]
        up = MODEL.frames[lv["name"]].R[:, 2]
        for ped in lv["pedicles"]:
            c, axis = np.array(ped["isthmus_centre_lps"]), np.array(ped["axis_lps"])
            across = np.cross(up, axis)
            across /= np.linalg.norm(across)
            width = np.linalg.norm(ray_exit(shape, c, across) - ray_exit(shape, c, -across))
            assert abs(width - ped["width_mm"]) < 0.3, (lv["name"], ped["side"], width)
            vertical = np.cross(axis, across)
            height = np.linalg.norm(ray_exit(shape, c, vertical) - ray_exit(shape, c, -vertical))
            assert abs(height - ped["height_mm"]) < 0.75, (lv["name"], ped["side"], height)
            for key in ("entry_point_lps", "anterior_cortex_lps"):
                assert abs(shape(np.array(ped[key])[None])[0]) < 0.01
            medial = np.degrees(np.arcsin(abs(MODEL.frames[lv["name"]].R[:, 0] @ axis)))
            assert abs(medial - ped["medial_angle_deg"]) < 0.5


def _min_gap(a, b, centre, half=8.0, step=0.3):
    from pipeline.phantom.truthgeom import grid_over

    g, _ = grid_over(centre - half, centre + half, step)
    fa, fb = a(g), b(g)
    return float(np.max([fa, fb], axis=0).min()), bool(((fa < 0) & (fb < 0)).any())


def test_joints_keep_their_spaces():
    f5 = MODEL.frames["L5"]
    for joint in MODEL.joints["L5"]:
        centre = f5.point(joint.centre)
        gap, overlap = _min_gap(MODEL.vertebrae["L4"], MODEL.vertebrae["L5"], centre)
        assert not overlap and gap >= 0.475  # never closer than MIN_GAP = 1 mm
        # Across the articular surfaces, along the joint normal: the 1.6-mm joint space.
        n = f5.vector(joint.to_inferior)
        upper = ray_exit(MODEL.vertebrae["L4"], centre + 3.0 * n, -n)
        lower = ray_exit(MODEL.vertebrae["L5"], centre - 3.0 * n, n)
        assert abs(np.linalg.norm(upper - lower) - 1.6) < 0.1
    rib_head = MODEL.frames["T12"].point((19.0, 9.0, 2.0))
    gap, overlap = _min_gap(MODEL.ribs["left"], MODEL.vertebrae["T12"], rib_head)
    assert not overlap and 0.6 <= gap <= 0.9  # 1.5 mm costovertebral joint
    si = MODEL.frames["S1"].point((46.0, 6.0, -14.0))
    gap, overlap = _min_gap(MODEL.ilia["left"], MODEL.vertebrae["S1"], si)
    assert not overlap and 0.9 <= gap <= 1.1  # 2 mm sacroiliac joint


# ----------------------------------------------------------------- determinism, files


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_same_seed_same_image_whatever_the_slab_size():
    kw = dict(centre=MODEL.frames["L2"].origin, matrix=(40, 44), n_slices=12)
    a = roi_phantom(**kw, seed=7)
    b = roi_phantom(**kw, seed=7, slab_voxels=40 * 44 * 3)
    c = roi_phantom(**kw, seed=8)
    assert _digest(a.volume.hu) == _digest(b.volume.hu)
    assert _digest(a.labels) == _digest(b.labels)
    assert _digest(a.volume.hu) != _digest(c.volume.hu)
    assert np.array_equal(a.labels, c.labels)


@pytest.mark.parametrize("syntax", ["rle", "jpegls_lossless"])
def test_written_series_reads_back_bit_identical(tmp_path, syntax):
    pydicom = pytest.importorskip("pydicom")
    from pipeline.exchange.nifti import read_nifti
    from pipeline.exchange.phantom_files import write_phantom

    ph = roi_phantom(MODEL.frames["L1"].origin, matrix=(36, 40), n_slices=6, seed=3)
    paths = write_phantom(ph, tmp_path / "out", transfer_syntax=syntax)
    files = sorted(paths["dicom"].iterdir())
    assert len(files) == 6 and not any(p.name.startswith(".") for p in files)
    dss = [pydicom.dcmread(p) for p in files]
    dss.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    hu = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss])
    assert np.array_equal(hu, ph.volume.hu)
    np.testing.assert_allclose([float(v) for v in dss[0].ImagePositionPatient], ph.volume.affine[:3, 3], atol=1e-6)
    assert [float(v) for v in dss[0].ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    labels, aff = read_nifti(paths["labels"])
    assert np.array_equal(np.transpose(labels, (2, 1, 0)), ph.labels)
    np.testing.assert_allclose(aff[:, [2, 1, 0, 3]], ph.volume.affine, atol=1e-6)
    defect, _ = read_nifti(paths["defect"])
    assert np.array_equal(np.transpose(defect, (2, 1, 0)).astype(bool), ph.defect)
    truth = json.loads(paths["truth"].read_text())
    assert truth["fracture"] == ph.truth["fracture"]
    assert str(dss[0].PatientName) == "PHANTOM^OSTEOPRINT"
