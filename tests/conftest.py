"""Shared fixtures: small synthetic CT volumes and DICOM series with known geometry.

Everything here is generic (no test-specific assumptions) so other test modules can
reuse it: a small asymmetric blobs whose blobs sit at known voxel indices, a
factory that writes it as a DICOM series, and a helper to tamper with written files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class Blob:
    """A Gaussian blob of the blobs: centre as a fractional voxel index, peak HU."""

    index: tuple[float, float, float]
    peak_hu: float
    sigma_vox: float


@dataclass(frozen=True)
class Blobs:
    """A small CT volume and the truth about it."""

    hu: np.ndarray  # (slice, row, column), int16 HU
    affine: np.ndarray  # index -> LPS mm
    blobs: tuple[Blob, ...]

    def blob_lps(self, i: int) -> np.ndarray:
        """LPS mm of blob ``i``'s centre under this blobs's affine."""
        return self.affine[:3, :3] @ np.asarray(self.blobs[i].index) + self.affine[:3, 3]


# Blobs at deliberately asymmetric places and with distinct intensities, so any
# flip, transpose or shift of an axis moves at least one of them.
DEFAULT_BLOBS = (
    Blob((5.0, 10.0, 25.0), 1400.0, 1.6),
    Blob((16.0, 29.0, 8.0), 700.0, 2.0),
    Blob((11.0, 14.0, 15.0), 1000.0, 1.3),
)


def make_blobs(shape=(24, 40, 36), affine=None, blobs=DEFAULT_BLOBS) -> Blobs:
    """Soft tissue (40 HU) in air (-1000 HU) with Gaussian bone-like blobs.

    The default affine is a standard axial series (slices towards the head, 2.5 mm;
    rows towards posterior, 0.8 mm; columns towards patient left, 0.7 mm).
    """
    if affine is None:
        affine = np.array(
            [
                [0.0, 0.0, 0.7, -12.0],
                [0.0, 0.8, 0.0, -20.0],
                [2.5, 0.0, 0.0, -130.0],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
    idx = np.indices(shape, dtype=np.float64)
    hu = np.full(shape, 40.0)
    # Air in one corner of every slice only (an in-plane asymmetric body outline).
    hu[:, : shape[1] // 5, : shape[2] // 4] = -1000.0
    for b in blobs:
        r2 = sum((idx[a] - b.index[a]) ** 2 for a in range(3))
        hu += (b.peak_hu - 40.0) * np.exp(-r2 / (2 * b.sigma_vox**2))
    return Blobs(np.rint(hu).astype(np.int16), np.asarray(affine, float), tuple(blobs))


def blob_centroid(hu: np.ndarray, affine: np.ndarray, near_lps, radius_mm=6.0, floor_hu=300.0) -> np.ndarray:
    """Intensity-weighted centre (LPS mm) of voxels above ``floor_hu`` near a point.

    Used to find where a blob landed in a volume read back, independently of how
    the volume is oriented.
    """
    idx = np.indices(hu.shape, dtype=np.float64).reshape(3, -1).T
    lps = idx @ affine[:3, :3].T + affine[:3, 3]
    values = hu.reshape(-1).astype(np.float64) - floor_hu
    near = np.linalg.norm(lps - np.asarray(near_lps, float), axis=1) <= radius_mm
    w = np.where(near & (values > 0), values, 0.0)
    if w.sum() == 0:
        raise AssertionError(f"no blob found near {near_lps}")
    return (lps * w[:, None]).sum(0) / w.sum()


def assert_same_voxels(hu, affine, truth_hu, truth_affine) -> None:
    """Assert two volumes hold identical values at identical LPS voxel centres.

    Works whatever the axis order or direction of either volume (each voxel of
    ``hu`` is mapped through both affines onto ``truth_hu``'s grid).
    """
    idx = np.indices(hu.shape, dtype=np.float64).reshape(3, -1).T
    lps = idx @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    inv = np.linalg.inv(np.asarray(truth_affine, dtype=float))
    back = lps @ inv[:3, :3].T + inv[:3, 3]
    nearest = np.rint(back)
    assert np.max(np.abs(back - nearest)) < 1e-5, "voxel centres do not coincide"
    assert np.all(nearest >= 0) and np.all(nearest < np.array(truth_hu.shape)), "grid extends"
    picked = truth_hu[tuple(nearest.astype(int).T)].reshape(hu.shape)
    assert np.array_equal(picked, hu)


@pytest.fixture
def blobs() -> Blobs:
    """The default small asymmetric blobs (24 x 40 x 36 voxels)."""
    return make_blobs()


@pytest.fixture
def write_ct(tmp_path):
    """Factory ``write_ct(hu, affine, name="series", **write_series_kwargs)``.

    Writes a DICOM series into ``tmp_path/name`` and returns the list of files in
    slice order.
    """
    from pipeline.exchange.dicom_write import write_series

    def _write(hu, affine, name="series", **kwargs):
        return write_series(hu, affine, tmp_path / name, **kwargs)

    return _write


@pytest.fixture
def edit_dicom():
    """Helper ``edit_dicom(path, pixels=None, no_meta=False, **keyword_values)``.

    Rewrites one file in place (uncompressed transfer syntaxes only): sets or
    deletes (value ``None``) elements, optionally replaces the stored pixel array,
    and with ``no_meta=True`` writes a bare dataset without preamble or file meta.
    """
    import pydicom

    def _edit(path, pixels=None, no_meta=False, **changes):
        ds = pydicom.dcmread(path)
        for keyword, value in changes.items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        if pixels is not None:
            little = ds.file_meta.TransferSyntaxUID.is_little_endian
            dtype = np.dtype(pixels.dtype).newbyteorder("<" if little else ">")
            ds.PixelData = np.ascontiguousarray(pixels).astype(dtype).tobytes()
        if no_meta:
            ts = ds.file_meta.TransferSyntaxUID
            del ds.file_meta
            ds.preamble = None
            ds.save_as(
                path, implicit_vr=ts.is_implicit_VR, little_endian=ts.is_little_endian, enforce_file_format=False
            )
        else:
            ds.save_as(path)

    return _edit


@pytest.fixture
def write_enhanced_ct(tmp_path):
    """Factory ``write_enhanced_ct(hu, affine, frame_order=None, name="enhanced.dcm")``.

    Writes an Enhanced CT Image Storage (multi-frame) file whose per-frame
    functional groups carry each frame's position; ``frame_order`` lists which
    slice of ``hu`` goes into each frame (default: slice order). Stored values are
    ``hu + 1024`` (uint16) with the rescale in the shared functional groups.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    def _write(hu, affine, frame_order=None, name="enhanced.dcm"):
        hu = np.asarray(hu)
        affine = np.asarray(affine, dtype=float)
        order = list(range(hu.shape[0])) if frame_order is None else list(frame_order)
        row_cos = affine[:3, 2] / np.linalg.norm(affine[:3, 2])
        col_cos = affine[:3, 1] / np.linalg.norm(affine[:3, 1])

        def item(**kw):
            d = Dataset()
            for k, v in kw.items():
                setattr(d, k, v)
            return d

        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["enhanced", name])
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=["enhanced-series", name])
        ds.StudyInstanceUID = generate_uid(entropy_srcs=["enhanced-study"])
        ds.Modality = "CT"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
        ds.SeriesNumber = 1
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[2]
        ds.NumberOfFrames = len(order)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.SharedFunctionalGroupsSequence = [
            item(
                PixelMeasuresSequence=[
                    item(
                        PixelSpacing=[float(np.linalg.norm(affine[:3, 1])), float(np.linalg.norm(affine[:3, 2]))],
                        SliceThickness=float(np.linalg.norm(affine[:3, 0])),
                    )
                ],
                PlaneOrientationSequence=[item(ImageOrientationPatient=[*row_cos.tolist(), *col_cos.tolist()])],
                PixelValueTransformationSequence=[item(RescaleIntercept=-1024, RescaleSlope=1, RescaleType="HU")],
            )
        ]
        ds.PerFrameFunctionalGroupsSequence = [
            item(PlanePositionSequence=[item(ImagePositionPatient=(affine[:3, 3] + k * affine[:3, 0]).tolist())])
            for k in order
        ]
        ds.PixelData = (hu[order].astype(np.int32) + 1024).astype("<u2").tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = tmp_path / name
        ds.save_as(path, enforce_file_format=True)
        return path

    return _write


@pytest.fixture
def shared_data() -> Path:
    """The read-only shared test data folder (tests using it skip when absent)."""
    return SHARED_DATA


@pytest.fixture
def blobs_factory():
    """:func:`make_blobs` as a fixture, for phantoms with another shape or affine."""
    return make_blobs


@pytest.fixture
def same_voxels():
    """:func:`assert_same_voxels` as a fixture."""
    return assert_same_voxels


@pytest.fixture
def find_blob():
    """:func:`blob_centroid` as a fixture."""
    return blob_centroid


# ---------------------------------------------------------------------------
# The bundled lumbar phantom, read, segmented and analysed once per session.
# Used by the guide tests; generic enough for any test on the sample scan.

SAMPLE_SCAN = Path(__file__).resolve().parents[1] / "sample_scans" / "lumbar_phantom"
LUMBAR = ("L1", "L2", "L3", "L4", "L5")


def _computed_once(tmp_path_factory, name: str, compute):
    """A session result computed once per test run, also under pytest-xdist: the
    first worker to need it computes and stores it, the others load that (the same
    value, not a second computation of it)."""
    import fcntl
    import os
    import pickle

    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return compute()
    shared = tmp_path_factory.getbasetemp().parent  # this run's, common to its workers
    path = shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return pickle.loads(path.read_bytes())
        value = compute()
        path.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        return value


@pytest.fixture(scope="session")
def computed_once(tmp_path_factory):
    """``computed_once(name, compute)``: see :func:`_computed_once`."""
    return lambda name, compute: _computed_once(tmp_path_factory, name, compute)


@pytest.fixture(scope="session")
def lumbar_scan(tmp_path_factory):
    """The bundled phantom CT (JPEG-LS DICOM series) as osteoprint reads it."""
    from pipeline.exchange.scan import load_scan

    return _computed_once(tmp_path_factory, "lumbar_scan", lambda: load_scan(SAMPLE_SCAN / "dicom")[0])


@pytest.fixture(scope="session")
def lumbar_truth():
    """The sample's truth: ``json`` (truth.json), ``levels`` (by name) and the exact
    signed-distance ``model`` it was made from (``model.spine.vertebra_sdf``)."""
    import json

    from pipeline.phantom.scan import default_model

    data = json.loads((SAMPLE_SCAN / "truth" / "truth.json").read_text())
    return {"json": data, "levels": {lv["name"]: lv for lv in data["levels"]}, "model": default_model()}


@pytest.fixture(scope="session")
def lumbar_segmentation(lumbar_scan, tmp_path_factory):
    """osteoprint's segmentation of the sample (levels named T12..S1)."""
    from pipeline.segment import segment_vertebrae

    return _computed_once(tmp_path_factory, "lumbar_segmentation", lambda: segment_vertebrae(lumbar_scan))


@pytest.fixture(scope="session")
def lumbar_truth_labels(lumbar_scan):
    """The sample's truth labels on the scan's own grid (slice, row, column)."""
    from pipeline.exchange.nifti import read_nifti

    stored, affine = read_nifti(SAMPLE_SCAN / "truth" / "labels.nii.gz")
    # Stored (column, row, slice): the same voxels once the axes are reversed.
    assert np.allclose(affine[:, [2, 1, 0, 3]], lumbar_scan.affine, atol=1e-4)
    return np.ascontiguousarray(np.transpose(stored, (2, 1, 0)))


@pytest.fixture(scope="session")
def lumbar_anatomy(lumbar_segmentation, tmp_path_factory):
    """``{level: VertebraAnatomy}`` of L1-L5 of the sample."""
    from pipeline.guide import analyse_segmentation

    return _computed_once(tmp_path_factory, "lumbar_anatomy", lambda: analyse_segmentation(lumbar_segmentation, LUMBAR))


@pytest.fixture(scope="session")
def lumbar_plan(lumbar_scan, lumbar_anatomy, tmp_path_factory):
    """osteoprint's automatic screw plan for L1-L5 of the sample."""
    from pipeline.guide import plan_screws

    return _computed_once(
        tmp_path_factory,
        "lumbar_plan",
        lambda: plan_screws(anatomies=lumbar_anatomy, series_hash=lumbar_scan.info.series_hash),
    )


@pytest.fixture(scope="session")
def lumbar_surfaces():
    """Cache ``{level: SurfaceDistance}`` of the sample's vertebra meshes, filled on use."""
    return {}


@pytest.fixture(scope="session")
def l3_guide(lumbar_plan, lumbar_anatomy, lumbar_segmentation, lumbar_surfaces, computed_once):
    """``(screws, Guide)``: the drill guide for the planned L3 screws (default design)."""
    from pipeline.guide import build_guide

    screws = lumbar_plan.by_level("L3")
    return screws, computed_once(
        "l3_guide", lambda: build_guide(screws, lumbar_anatomy["L3"], lumbar_segmentation, surfaces=lumbar_surfaces)
    )


@pytest.fixture(scope="session")
def l3_perturbed_guide(lumbar_plan, lumbar_anatomy, lumbar_segmentation, lumbar_surfaces, computed_once):
    """L3 guide built with the left sleeve rotated 2 deg about its entry (around the
    vertebra's cranial axis) and the right one moved 1 mm sideways.

    Returns ``(planned screws, Guide, (rotated screw id, moved screw id))``.
    """
    from pipeline.guide import build_guide

    screws = lumbar_plan.by_level("L3")
    a, b = screws
    frame = lumbar_anatomy["L3"].frame
    z, d, t = frame.axes[:, 2], a.direction, np.radians(2.0)
    k = np.cross(z, d)
    k /= np.linalg.norm(k)
    rotated = d * np.cos(t) + np.cross(k, d) * np.sin(t) + k * (k @ d) * (1 - np.cos(t))
    n = np.cross(b.direction, z)
    n /= np.linalg.norm(n)
    guide = computed_once(
        "l3_perturbed_guide",
        lambda: build_guide(
            [a.moved(direction=rotated), b.moved(entry=b.entry + n)],
            lumbar_anatomy["L3"],
            lumbar_segmentation,
            surfaces=lumbar_surfaces,
        ),
    )
    return screws, guide, (a.id, b.id)


@pytest.fixture(scope="session")
def lumbar_bone(lumbar_scan, lumbar_segmentation, tmp_path_factory):
    """osteoprint's bone quality of the sample (fractures found, no new segmentation)."""
    from pipeline.bone_quality import measure_bone_quality

    return _computed_once(
        tmp_path_factory, "lumbar_bone", lambda: measure_bone_quality(lumbar_segmentation, lumbar_scan)
    )


class Segmented(Exception):
    """Raised where a job would segment, by :func:`stop_at_segmentation`."""


@pytest.fixture
def stop_at_segmentation(monkeypatch):
    """``stop_at_segmentation(job_module)``: that job's ``segment`` records the options it
    is called with (the returned list) and raises :class:`Segmented` instead of
    segmenting; what the job does after segmenting is tested elsewhere."""

    def install(module) -> list:
        calls = []

        def segment(volume, options=None, progress=None):
            calls.append(options)
            raise Segmented

        monkeypatch.setattr(module, "segment", segment)
        return calls

    install.Segmented = Segmented
    return install


# ---------------------------------------------------------------------------
# TotalSegmentator's reference files (labels of the shared J2K series and a torso
# CT with its vertebra labels), fetched once from its source distribution on PyPI.

TOTALSEG_VERSION = "2.18.0"
TOTALSEG_CACHE = Path(__file__).resolve().parents[1] / "bench" / "cache" / "totalsegmentator"


@pytest.fixture(scope="session")
def totalseg_reference():
    """Function ``member(relative_path) -> Path`` of a file under the sdist's
    ``tests/reference_files/`` (cached in bench/cache/, shared with bench/); skips
    the test with the reason when the sdist is neither cached nor downloadable."""
    import subprocess
    import sys
    import tarfile

    sdist = TOTALSEG_CACHE / f"totalsegmentator-{TOTALSEG_VERSION}.tar.gz"

    def member(relative: str) -> Path:
        out = TOTALSEG_CACHE / relative
        if out.is_file():
            return out
        if not sdist.is_file():
            TOTALSEG_CACHE.mkdir(parents=True, exist_ok=True)
            try:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        f"totalsegmentator=={TOTALSEG_VERSION}",
                        "--no-deps",
                        "--no-binary",
                        ":all:",
                        "-d",
                        str(TOTALSEG_CACHE),
                        "-q",
                    ],
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
            except (subprocess.SubprocessError, OSError) as exc:
                pytest.skip(
                    f"TotalSegmentator {TOTALSEG_VERSION} reference files not cached in {TOTALSEG_CACHE} "
                    f"and not downloadable from PyPI (offline?): {type(exc).__name__}"
                )
        name = f"totalsegmentator-{TOTALSEG_VERSION}/tests/reference_files/{relative}"
        with tarfile.open(sdist) as tar:
            data = tar.extractfile(name).read()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(out)
        return out

    return member


@pytest.fixture(scope="session")
def small_spine_scan(tmp_path_factory, lumbar_scan):
    """A small real-looking spine scan: the sample cropped to L2-L3 (59 x 160 x 145
    voxels), written as an uncompressed DICOM series; segments in about a second.

    Returns the DICOM folder.
    """
    from pipeline.exchange.dicom_write import write_series
    from pipeline.volume import crop_affine, lps_to_index

    first, last = (int(round(lps_to_index(lumbar_scan.affine, [0.0, 0.0, z])[0])) for z in (-476.0, -402.0))
    box = (slice(first, last), slice(15, 175), slice(45, 190))
    folder = tmp_path_factory.mktemp("small_spine") / "dicom"
    write_series(
        lumbar_scan.hu[box],
        crop_affine(lumbar_scan.affine, [s.start for s in box]),
        folder,
        series_description="osteoprint phantom L2-L3 crop",
        extra={"PatientName": "Test^Phantom", "PatientID": "PHANTOM-0001"},
    )
    return folder


# ---------------------------------------------------------------------------
# Independent readers of osteoprint's outputs (3MF through lib3mf, DICOM through
# dciodvfy), as fixtures for every test that checks those files.


def read_3mf_objects(path):
    """A 3MF file through lib3mf: ``(model, objects)``, each object a dict with name,
    vertices, faces, manifold (lib3mf's own test), metadata {(namespace, name): value}
    and display colour (RGB) of its base material."""
    import lib3mf

    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    model.QueryReader("3mf").ReadFromFile(str(path))
    objects = []
    it = model.GetMeshObjects()
    while it.MoveNext():
        obj = it.GetCurrentMeshObject()
        group = obj.GetMetaDataGroup()
        meta = {}
        for i in range(group.GetMetaDataCount()):
            item = group.GetMetaData(i)
            meta[(item.GetNameSpace(), item.GetName())] = item.GetValue()
        resource, prop, has = obj.GetObjectLevelProperty()
        colour = None
        if has:
            c = model.GetBaseMaterialGroupByID(resource).GetDisplayColor(prop)
            colour = (c.Red, c.Green, c.Blue)
        objects.append(
            {
                "name": obj.GetName(),
                "vertices": np.array([p.Coordinates[:] for p in obj.GetVertices()], dtype=float),
                "faces": np.array([t.Indices[:] for t in obj.GetTriangleIndices()], dtype=np.int64),
                "manifold": obj.IsManifoldAndOriented(),
                "meta": meta,
                "colour": colour,
            }
        )
    return model, objects


@pytest.fixture
def read_3mf():
    """:func:`read_3mf_objects` as a fixture (skips when lib3mf is absent)."""
    pytest.importorskip("lib3mf")
    return read_3mf_objects


@pytest.fixture
def dciodvfy(tmp_path):
    """``dciodvfy(data) -> list of error lines`` of dicom3tools' validator on DICOM
    bytes; skips the test when dciodvfy is not installed."""
    import shutil
    import subprocess

    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")

    def _check(data: bytes) -> list[str]:
        path = tmp_path / "dciodvfy-input.dcm"
        path.write_bytes(data)
        run = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
        return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]

    return _check


# Under pytest-xdist (``make test``: two workers, whole modules each, handed out in
# this order as a worker frees up; ``--no-loadscope-reorder`` keeps it) the module a
# worker takes last decides when the run ends, and a worker that needs a session
# result the other is still computing waits idle. So the first worker starts on the
# sample's chain (read, segmentation, anatomy, plan: the guide-plan tests), the second
# on modules that need none of it (the real series, the phantom generator, the hostile
# corpus, which only reads the sample); then the long modules longest first, and the
# short ones (any order) fill in at the end so that both workers finish together.
LONG_MODULES = (
    "test_guide_plan.py",
    "test_segment_real_ct.py",
    "test_phantom.py",
    "test_corpus.py",
    "test_guide_phantom.py",
    "test_scaffold_defect.py",
    "test_scaffold_build.py",
    "test_guide_job.py",
    "test_commit.py",
    "test_scaffold_measure.py",
    "test_model_phantom.py",
    "test_guide_build.py",
    "test_defect_synthetic.py",
    "test_batch.py",
    "test_segment_phantom_variants.py",
    "test_defect.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_MODULES)))
