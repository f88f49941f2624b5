"""The hostile corpus: each case writes its input into its own folder at test time.

A case says which commands to run on it, the exit status each must give (2: bad
input, option or output place; 3: nothing to print) and a phrase its one-line
error must hold. Classes, worst first: broken intensities, nothing to print,
resource attacks, geometry and format, output place, options, privacy (checked on
every case), smaller items.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import inputs as I

SCAN_COMMANDS = ("model", "scaffold", "guide", "bone", "run", "check-guide")
OUT_COMMANDS = ("model", "scaffold", "guide", "bone", "run", "batch", "phantom", "demo")


@dataclass(frozen=True)
class Bases:
    """What the cases are made from (written once per session)."""

    body: Path  # tiny body series, no bone
    small: Path  # reduced phantom series (a spine)
    plan: Path  # one-screw plan for check-guide
    guide: Path  # closed STL near the plan's entry


@dataclass(frozen=True)
class Inputs:
    scan: str
    options: tuple[str, ...] = ()
    out: str | None = None  # default: the case's out/ folder, holding a previous result
    report: str | None = None  # check-guide -o (default: the case's report.json)


@dataclass(frozen=True)
class Case:
    name: str
    cls: str
    build: Callable[[Path, Bases], Inputs]
    commands: tuple[str, ...]
    code: int
    expect: str
    before_work: bool = False  # must fail before the scan is read
    extra: dict = field(default_factory=dict)


def argv(command: str, inp: Inputs, case_dir: Path, bases: Bases) -> list[str]:
    out = inp.out if inp.out is not None else str(case_dir / "out")
    if command == "check-guide":
        report = inp.report if inp.report is not None else str(case_dir / "report.json")
        return [command, inp.scan, "--plan", str(bases.plan), "--guide", str(bases.guide), "-o", report, *inp.options]
    if command == "batch":
        return [command, inp.scan, "-o", out, *inp.options]
    if command == "phantom":
        return [command, out, *inp.options]
    if command == "demo":
        return [command, "-o", out, *inp.options]
    return [command, inp.scan, "-o", out, *inp.options]


# ------------------------------------------------------------------ builders


def _series(edit=None, **changes):
    """Copy of the body series with elements changed (value None deletes)."""

    def build(d: Path, b: Bases) -> Inputs:
        paths = I.copy_series(b.body, d / "scan")
        if changes:
            I.edit(paths, **changes)
        if edit is not None:
            edit(paths)
        return Inputs(str(d / "scan"))

    return build


def _raw(tag: int, value: bytes, only: int | None = None):
    return _series(edit=lambda p: I.set_raw(p if only is None else [p[only]], tag, "DS", value))


def _pixels(fn):
    """Body series whose stored pixels are ``fn(hu)`` (rescale kept)."""

    def edit(paths):
        hu = I.body_hu()
        I.edit(paths, pixels=fn(hu))

    return _series(edit=edit)


def _nifti(make):
    def build(d: Path, b: Bases) -> Inputs:
        return Inputs(str(make(d)))

    return build


def _body_nifti(fn, dtype=np.float32, **kw):
    return _nifti(
        lambda d: I.write_nifti_array(d / "ct.nii.gz", fn(I.body_hu().astype(np.float64)).astype(dtype), **kw)
    )


def _oblique(axis, degrees):
    def build(d: Path, b: Bases) -> Inputs:
        a = np.asarray(axis, float) / np.linalg.norm(axis)
        k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
        t = np.radians(degrees)
        r = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k
        aff = I.BODY_AFFINE.copy()
        aff[:3, :3] = r @ aff[:3, :3]
        I.write_dicom(I.body_hu(), aff, d / "scan")
        return Inputs(str(d / "scan"))

    return build


def _scaled(column: int | slice, factor: float):
    """The body with voxel steps along some axes scaled (e.g. 90 mm pixels)."""

    def build(d: Path, b: Bases) -> Inputs:
        aff = I.BODY_AFFINE.copy()
        aff[:3, column] *= factor
        I.write_dicom(I.body_hu(), aff, d / "scan")
        return Inputs(str(d / "scan"))

    return build


def _truncate_at_pixels(paths):
    data = paths[3].read_bytes()
    paths[3].write_bytes(data[: data.rindex(b"\xe0\x7f\x10\x00")])


def _rle_65535(d: Path, b: Bases) -> Inputs:
    paths = I.write_dicom(I.body_hu(), I.BODY_AFFINE, d / "scan", transfer_syntax="rle")
    I.edit(paths, Rows=65535, Columns=65535)
    return Inputs(str(d / "scan"))


def _fifo_in(d: Path, b: Bases) -> Inputs:
    I.copy_series(b.body, d / "scan")
    os.mkfifo(d / "scan" / "pipe")
    return Inputs(str(d / "scan"))


def _fifo_scan(d: Path, b: Bases) -> Inputs:
    os.mkfifo(d / "scan.nii.gz")
    return Inputs(str(d / "scan.nii.gz"))


def _broken_link(d: Path, b: Bases) -> Inputs:
    (d / "scan").mkdir()
    os.symlink(d / "nowhere", d / "scan" / "IM0001")
    return Inputs(str(d / "scan"))


def _all_empty(d: Path, b: Bases) -> Inputs:
    for p in I.copy_series(b.body, d / "scan"):
        p.write_bytes(b"")
    return Inputs(str(d / "scan"))


def _empty_folder(d: Path, b: Bases) -> Inputs:
    (d / "scan").mkdir()
    return Inputs(str(d / "scan"))


def _clash(paths):
    """Another image at slice 5's position, with different pixels."""
    import shutil

    shutil.copy(paths[5], paths[0].parent / "clash")
    I.edit([paths[0].parent / "clash"], pixels=[np.full((40, 40), 1100, np.int16)])


def _link_loop(d: Path, b: Bases) -> Inputs:
    (d / "scan").mkdir()
    os.symlink(d / "scan" / "a", d / "scan" / "b")
    os.symlink(d / "scan" / "b", d / "scan" / "a")
    return Inputs(str(d / "scan"))


def _corrupt_headers(paths):
    for p in paths:
        data = bytearray(p.read_bytes())
        data[132:400] = bytes(range(256)) + bytes(12)
        p.write_bytes(bytes(data))


def on_small(*options, out=None, report=None):
    def build(d: Path, b: Bases) -> Inputs:
        o = out(d) if callable(out) else out
        r = report(d, b) if callable(report) else report
        return Inputs(str(b.small), tuple(options), o, r)

    return build


def _file(d: Path, name="taken") -> str:
    (d / name).write_text("a file the user keeps\n")
    return str(d / name)


def _foreign(d: Path) -> str:
    (d / "mine").mkdir()
    (d / "mine" / "notes.txt").write_text("not osteoprint's\n")
    return str(d / "mine")


def _fifo_out(d: Path) -> str:
    os.mkfifo(d / "pipe")
    return str(d / "pipe")


def junk_file(d: Path, name: str, data: bytes) -> str:
    (d / name).write_bytes(data)
    return str(d / name)


# ------------------------------------------------------------------ the corpus

RESCALE_SLOPE, RESCALE_INTERCEPT = 0x00281053, 0x00281052
S = SCAN_COMMANDS
CASES: list[Case] = [
    # Broken intensities: must be refused, never "fixed" into a confident print.
    Case("slope-nan", "intensities", _raw(RESCALE_SLOPE, b"NaN "), S, 2, "RescaleSlope is not a finite number"),
    Case("slope-inf", "intensities", _raw(RESCALE_SLOPE, b"inf "), S, 2, "RescaleSlope is not a finite number"),
    Case("slope-minus-inf", "intensities", _raw(RESCALE_SLOPE, b"-inf"), S, 2, "RescaleSlope is not a finite number"),
    Case("intercept-nan", "intensities", _raw(RESCALE_INTERCEPT, b"nan "), S, 2, "RescaleIntercept is not a finite"),
    Case("slope-garbage", "intensities", _raw(RESCALE_SLOPE, b"abc "), S, 2, "RescaleSlope is not a finite number"),
    Case("slope-nan-one-file", "intensities", _raw(RESCALE_SLOPE, b"NaN ", only=5), S, 2, "IM00006: RescaleSlope"),
    Case("slope-zero", "intensities", _raw(RESCALE_SLOPE, b"0 "), S, 2, "RescaleSlope is 0"),
    Case("slope-1e9", "intensities", _raw(RESCALE_SLOPE, b"1e9 "), S, 2, "Hounsfield"),
    Case("slope-1e-9", "intensities", _raw(RESCALE_SLOPE, b"1e-9"), S, 2, "do not look like CT Hounsfield"),
    Case("intercept-1e7", "intensities", _raw(RESCALE_INTERCEPT, b"1e7 "), S, 2, "Hounsfield"),
    Case(
        "unsigned-no-rescale",
        "intensities",
        _series(
            edit=lambda p: I.edit(
                p,
                RescaleSlope=None,
                RescaleIntercept=None,
                PixelRepresentation=0,
                pixels=np.clip(I.body_hu().astype(int) + 1024, 0, 4095).astype(np.uint16),
            )
        ),
        S,
        2,
        "rescale to HU is missing",
    ),
    Case(
        "signed-no-rescale",
        "intensities",
        _series(RescaleSlope=None, RescaleIntercept=None),
        S,
        2,
        "no RescaleSlope/RescaleIntercept",
    ),
    Case(
        "blank-air",
        "intensities",
        _pixels(lambda hu: np.full(hu.shape, 0, np.uint16)),
        S,
        2,
        "do not look like CT Hounsfield",
    ),
    Case(
        "air-and-bone-only",
        "intensities",
        _pixels(lambda hu: np.where(hu > 300, 2024, 0).astype(np.uint16)),
        S,
        2,
        "soft tissue",
    ),
    Case(
        "blank-water",
        "intensities",
        _pixels(lambda hu: np.full(hu.shape, 1024, np.uint16)),
        S,
        2,
        "do not look like CT Hounsfield",
    ),
    Case(
        "mr-values",
        "intensities",
        _series(
            edit=lambda p: I.edit(
                p,
                RescaleIntercept="0",
                pixels=(np.random.default_rng(1).integers(0, 1800, (12, 40, 40)).astype(np.uint16)),
            )
        ),
        S,
        2,
        "fat, air or lung",
    ),
    Case("nifti-all-nan", "intensities", _body_nifti(lambda a: np.full(a.shape, np.nan)), S, 2, "NaN or infinite"),
    Case(
        "nifti-1pct-nan",
        "intensities",
        _body_nifti(lambda a: np.where(np.random.default_rng(2).random(a.shape) < 0.01, np.nan, a)),
        S,
        2,
        "NaN or infinite",
    ),
    Case("nifti-inf", "intensities", _body_nifti(lambda a: np.where(a > 30, np.inf, a)), S, 2, "NaN or infinite"),
    Case(
        "nifti-unsigned-stored",
        "intensities",
        _body_nifti(lambda a: np.clip(a + 1024, 0, 4095), np.uint16),
        S,
        2,
        "fat, air or lung",
    ),
    Case("nifti-slope-1e9", "intensities", _body_nifti(lambda a: a, np.int16, slope=1e9), S, 2, "Hounsfield"),
    Case(
        "nifti-label-map",
        "intensities",
        _body_nifti(lambda a: (a > 0) * 20, np.uint8),
        S,
        2,
        "do not look like CT Hounsfield",
    ),
    Case("nifti-hu-x1000", "intensities", _body_nifti(lambda a: a * 1000.0), S, 2, "Hounsfield"),
    Case("nifti-blank-zero", "intensities", _body_nifti(lambda a: a * 0), S, 2, "do not look like CT Hounsfield"),
    Case("nifti-constant-air", "intensities", _body_nifti(lambda a: a * 0 - 1000), S, 2, "Hounsfield"),
    Case(
        "nifti-mr-like",
        "intensities",
        _body_nifti(lambda a: np.random.default_rng(3).uniform(0, 1500, a.shape)),
        S,
        2,
        "Hounsfield",
    ),
    # A readable scan that makes no print is a failure.
    Case("no-bone", "nothing to print", _series(), S, 3, "no vertebra found"),
    Case("no-bone-nifti", "nothing to print", _body_nifti(lambda a: a, np.int16), S, 3, "no vertebra found"),
    Case("no-bone-fifo-beside", "nothing to print", _fifo_in, S, 3, "no vertebra found"),
    Case("level-without-collapse", "nothing to print", on_small("--level", "L3"), ("scaffold",), 3, "L3: no collapse"),
    # Resource attacks: declared sizes are checked against the file and memory first.
    Case("rows-65535", "resources", _series(Rows=65535, Columns=65535), S, 2, "declares 65535x65535 pixels"),
    Case("rows-65535-rle", "resources", _rle_65535, S, 2, "of memory"),
    Case(
        "nifti-gz-declares-1024^3",
        "resources",
        _nifti(lambda d: I.nifti_declaring(d / "ct.nii.gz", (1024,) * 3)),
        S,
        2,
        "truncated: 1024x1024x1024 int16 voxels",
    ),
    Case(
        "nifti-declares-1024^3",
        "resources",
        _nifti(lambda d: I.nifti_declaring(d / "ct.nii", (1024,) * 3)),
        S,
        2,
        "truncated: 1024x1024x1024 int16 voxels",
    ),
    Case(
        "nifti-declares-30000^3",
        "resources",
        _nifti(lambda d: I.nifti_declaring(d / "ct.nii.gz", (30000,) * 3, np.float32)),
        S,
        2,
        "of memory",
    ),
    Case("fifo-as-scan", "resources", _fifo_scan, S, 2, "not a regular file"),
    # Geometry and format.
    Case("oblique-45-in-plane", "geometry/format", _oblique((0, 0, 1), 45), S, 2, "oblique, 45 deg"),
    Case("oblique-25-tilt", "geometry/format", _oblique((1, 0, 0), 25), S, 2, "oblique, 25 deg"),
    Case("pixels-90mm", "geometry/format", _scaled(slice(1, 3), 60.0), S, 2, "voxels of 2.5 x 90 x 90 mm"),
    Case("slices-1000mm", "geometry/format", _scaled(0, 400.0), S, 2, "voxels of 1e+03 x 1.5 x 1.5 mm"),
    Case("pixels-1um", "geometry/format", _scaled(slice(1, 3), 1e-3), S, 2, "are not those of a CT"),
    Case("empty-folder", "geometry/format", _empty_folder, S, 2, "folder is empty"),
    Case(
        "mr-only",
        "geometry/format",
        _series(Modality="MR", SOPClassUID="1.2.840.10008.5.1.4.1.1.4"),
        S,
        2,
        "no CT series found",
    ),
    Case(
        "localizers-only", "geometry/format", _series(ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"]), S, 2, "localizer"
    ),
    Case("single-slice", "geometry/format", _series(edit=lambda p: [q.unlink() for q in p[1:]]), S, 2, "single image"),
    Case("two-images-one-position", "geometry/format", _series(edit=_clash), S, 2, "same slice position"),
    Case(
        "gap-of-5-slices",
        "geometry/format",
        _series(edit=lambda p: [q.unlink() for q in p[3:8]]),
        S,
        2,
        "5 missing slices",
    ),
    Case(
        "nan-position",
        "geometry/format",
        _series(ImagePositionPatient=["nan", "0", "0"]),
        S,
        2,
        "images without geometry",
    ),
    Case("zero-pixel-spacing", "geometry/format", _series(PixelSpacing=["0", "0"]), S, 2, "without geometry"),
    Case("corrupt-headers", "geometry/format", _series(edit=_corrupt_headers), S, 2, "no DICOM images found"),
    Case(
        "unsupported-syntax",
        "geometry/format",
        _series(edit=lambda p: I.set_meta(p, "1.2.840.10008.1.2.4.100")),
        S,
        2,
        "not supported",
    ),
    Case("symlink-loop", "geometry/format", _link_loop, S, 2, "no DICOM images found"),
    Case(
        "zip-as-scan",
        "geometry/format",
        _nifti(lambda d: Path(junk_file(d, "scan.zip", b"PK\x03\x04" + bytes(64)))),
        S,
        2,
        "not a DICOM file",
    ),
    Case(
        "nifti-not-gzip",
        "geometry/format",
        _nifti(lambda d: _renamed(I.write_nifti_array(d / "ct.nii", I.body_hu()), "ct.nii.gz")),
        S,
        2,
        "ct.nii.gz",
    ),
    Case(
        "nifti-singular-affine",
        "geometry/format",
        _nifti(
            lambda d: I.nifti_declaring(
                d / "ct.nii.gz", (12, 40, 40), data=I.body_hu(), sform=np.diag([1.0, 0.0, 1.0, 1.0])
            )
        ),
        S,
        2,
        "singular",
    ),
    Case(
        "nifti-nan-affine",
        "geometry/format",
        _nifti(
            lambda d: I.nifti_declaring(d / "ct.nii.gz", (12, 40, 40), data=I.body_hu(), sform=np.full((4, 4), np.nan))
        ),
        S,
        2,
        "not finite",
    ),
    Case("truncated-at-pixels", "geometry/format", _series(edit=_truncate_at_pixels), S, 2, "truncated"),
    Case(
        "truncated-mid-pixels",
        "geometry/format",
        _series(edit=lambda p: p[3].write_bytes(p[3].read_bytes()[:-900])),
        S,
        2,
        "truncated",
    ),
    Case("all-files-empty", "geometry/format", _all_empty, S, 2, "no DICOM images found"),
    Case("broken-link-only", "geometry/format", _broken_link, S, 2, "no DICOM images found"),
    Case(
        "nifti-truncated-gzip",
        "geometry/format",
        _nifti(lambda d: _cut(I.write_nifti_array(d / "ct.nii.gz", I.body_hu()), 0.5)),
        S,
        2,
        "ct.nii.gz",
    ),
    Case(
        "nifti-2d",
        "geometry/format",
        _nifti(lambda d: I.write_nifti_array(d / "ct.nii", I.body_hu()[0])),
        S,
        2,
        "expected a 3-D image",
    ),
    Case(
        "nifti-rgb",
        "geometry/format",
        _nifti(lambda d: I.write_nifti_array(d / "ct.nii", np.zeros((8, 8, 8, 3), np.int16))),
        S,
        2,
        "expected a 3-D image",
    ),
    Case(
        "nifti-complex",
        "geometry/format",
        _nifti(lambda d: I.write_nifti_array(d / "ct.nii", np.zeros((8, 8, 8), np.complex64))),
        S,
        2,
        "not scalar numbers",
    ),
    Case(
        "nifti-empty-file",
        "geometry/format",
        _nifti(lambda d: Path(junk_file(d, "ct.nii.gz", b""))),
        S,
        2,
        "not a readable NIfTI",
    ),
    Case(
        "nifti-zero-dim", "geometry/format", _nifti(lambda d: I.nifti_declaring(d / "ct.nii", (0, 4, 4))), S, 2, "empty"
    ),
    Case(
        "scan-name-with-newline",
        "geometry/format",
        lambda d, b: Inputs(str(d / "no\nscan")),
        S,
        2,
        "no\\nscan: no such file",
    ),
    Case("series-selector-missing", "geometry/format", on_small("--series", "99"), S[:5], 2, "matches no series"),
    # The output place is checked first, before any work.
    Case("out-is-file", "output place", on_small(out=_file), OUT_COMMANDS, 2, "is an existing file", True),
    Case(
        "out-under-file",
        "output place",
        on_small(out=lambda d: _file(d) + "/sub/out"),
        OUT_COMMANDS,
        2,
        "is a file",
        True,
    ),
    Case(
        "out-uncreatable",
        "output place",
        on_small(out="/proc/osteoprint-out"),
        OUT_COMMANDS,
        2,
        "cannot be created",
        True,
    ),
    Case(
        "out-is-input",
        "output place",
        lambda d, b: Inputs(str(b.small), out=str(b.small)),
        S[:5],
        2,
        "input scan",
        True,
    ),
    Case(
        "out-holds-input",
        "output place",
        lambda d, b: Inputs(str(b.small), out=str(b.small.parent)),
        S[:5],
        2,
        "input scan",
        True,
    ),
    Case("out-foreign-folder", "output place", on_small(out=_foreign), OUT_COMMANDS, 2, "holding other files", True),
    Case(
        "out-newline-under-file",
        "output place",
        on_small(out=lambda d: _file(d) + "/new\nline"),
        OUT_COMMANDS,
        2,
        "new\\nline",
        True,
    ),
    Case("out-empty-name", "output place", on_small(out=""), OUT_COMMANDS, 2, "no output folder given", True),
    Case("out-fifo", "output place", on_small(out=_fifo_out), OUT_COMMANDS, 2, "is an existing file", True),
    Case(
        "report-is-folder",
        "output place",
        on_small(report=lambda d, b: str(d)),
        ("check-guide",),
        2,
        "is an existing folder",
        True,
    ),
    Case(
        "report-is-plan",
        "output place",
        on_small(report=lambda d, b: str(b.plan)),
        ("check-guide",),
        2,
        "would overwrite the input",
        True,
    ),
]


def _renamed(path: Path, name: str) -> Path:
    return path.rename(path.with_name(name))


def _cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
