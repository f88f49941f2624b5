"""Segmentation and level naming on every real CT this machine can find.

Cases (each skipped with a reason when its data is absent):

* ``j2k``: the shared 20-slice Siemens slab (T11/T12), against TotalSegmentator's
  labels of exactly that series (``example_seg_dicom.nii.gz``).
* ``ge``: the shared GE full-spine CT (C7-coccyx, 2.5 mm), against the approximate
  body z ranges of its README (no voxel labels: names are checked by position).
* ``ts-torso``: TotalSegmentator's 3 mm torso example (T11-S1) with that project's
  own vertebra labels (``spine_report/example_ct_report/totalseg.nii.gz``).
* ``ts-abdomen``: the 90 mm crop of the same torso (T11-L2) with its labels.
* ``ts-chest``: TotalSegmentator's 1.5 mm contrast chest CT (no vertebra labels:
  found and named only).
* derived variants of the real scans, the kinds of scan users bring: a
  spine-targeted 105 mm field of view, a sagittal stack, feet-first order, 3 mm
  slices, a 110 mm crop around L3, and a no-spine crop (the thighs).

The reference labels are a model's output (TotalSegmentator), not manual truth, but
an independent, widely used one. TotalSegmentator's examples come from the project's
source distribution on PyPI, fetched once into ``bench/cache/``.

Prints per case: vertebrae found, their names, Dice per reference vertebra (best
overlapping label), the Dice of all vertebra voxels together, names right/wrong, and
seconds. Usage::

    python bench/bench_real_ct.py [CASE ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
SHARED = HERE.parents[1] / "shared" / "data"
CACHE = HERE / "cache" / "totalsegmentator"
VERSION = "2.18.0"
REF = f"totalsegmentator-{VERSION}/tests/reference_files/"

#: TotalSegmentator "total" class values of the vertebrae (v2 class map).
TS_LEVELS = {26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1"}
TS_LEVELS.update({32 + i: f"T{12 - i}" for i in range(12)})
TS_LEVELS.update({44 + i: f"C{7 - i}" for i in range(7)})

#: Approximate body z ranges (mm) of the GE full-spine CT, from ../shared/data/README.md.
GE_BODIES = {
    "L5": (202, 233),
    "L4": (238, 268),
    "L3": (272, 300),
    "L2": (305, 333),
    "L1": (337, 364),
    "T12": (368, 394),
    "T1": (610, 628),
}


@dataclass
class Case:
    name: str
    volume: object
    labels: np.ndarray | None = None  # reference labels on the volume's grid (TS values)
    bodies: dict = field(default_factory=dict)  # level -> (z0, z1) mm of the body
    targets: tuple = ()  # reference levels the issue scores
    expect_spine: bool = True


def ts_file(member: str) -> Path:
    out = CACHE / member.replace("/", "__")
    if out.is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"totalsegmentator-{VERSION}.tar.gz"
    if not sdist.is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                f"totalsegmentator=={VERSION}",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(CACHE),
                "-q",
            ],
            check=True,
        )
    with tarfile.open(sdist) as tar:
        out.write_bytes(tar.extractfile(REF + member).read())
    return out


def _read(path):
    from pipeline.exchange.scan import load_scan

    return load_scan(path)[0]


def _ref(path, volume):
    from pipeline.exchange.nifti import read_nifti
    from pipeline.volume import reorient

    lab, aff = read_nifti(path)
    lab, aff, _ = reorient(lab, aff, "SPL")
    _, vol_aff, undo = reorient(volume.hu, volume.affine, "SPL")
    if lab.shape != _.shape or not np.allclose(aff, vol_aff, atol=1e-3):
        raise RuntimeError(f"{path}: reference labels are not on the scan's grid")
    return np.ascontiguousarray(undo(lab)).astype(np.int16)


def _with(volume, hu, affine):
    from dataclasses import replace

    return replace(volume, hu=np.ascontiguousarray(hu), affine=np.asarray(affine, float))


def case_j2k():
    vol = _read(SHARED / "real_ct_siemens_j2k")
    return [Case("j2k", vol, _ref(ts_file("example_seg_dicom.nii.gz"), vol), targets=("T12",))]


def case_ts():
    torso = _read(ts_file("example_ct.nii.gz"))
    lab = _ref(ts_file("spine_report/example_ct_report/totalseg.nii.gz"), torso)
    small = _read(ts_file("example_ct_sm.nii.gz"))
    lab_sm = _ref(ts_file("example_seg.nii.gz"), small)
    lab_sm = np.where(np.isin(lab_sm, list(TS_LEVELS)), lab_sm, 0).astype(np.int16)
    chest = _read(ts_file("aorta_report/example_ct.nii.gz"))
    return [
        Case("ts-torso", torso, lab, targets=("T12", "L1", "L2", "L3", "L4", "L5", "S1")),
        Case("ts-abdomen", small, lab_sm, targets=("T12", "L1", "L2")),
        Case("ts-chest", chest),
    ]


def case_ge():
    vol = _read(SHARED / "real_ct_ge_fullspine")
    return [Case("ge", vol, bodies=GE_BODIES)]


def variants(base: Case) -> list[Case]:
    """Scans of the same patient as users bring them (exact geometry kept)."""
    from pipeline.volume import crop_affine, reorient

    out = []
    vol = base.volume
    hu, aff, _ = reorient(vol.hu, vol.affine, "SPL")
    lab = None if base.labels is None else reorient(base.labels, vol.affine, "SPL")[0]
    # Feet-first: slices stored from the feet up.
    ff = (slice(None, None, -1), slice(None), slice(None))
    ff_aff = aff.copy()
    ff_aff[:3, 3] = aff[:3, 3] + aff[:3, 0] * (hu.shape[0] - 1)
    ff_aff[:3, 0] = -aff[:3, 0]
    out.append(
        Case(
            base.name + "/feet-first",
            _with(vol, hu[ff], ff_aff),
            None if lab is None else lab[ff],
            base.bodies,
            base.targets,
        )
    )
    # Sagittal stack: slices along left-right, rows head to foot, columns front to back.
    sag = np.transpose(hu, (2, 0, 1))[:, ::-1, :]
    sag_aff = np.eye(4)
    sag_aff[:3, 0] = aff[:3, 2]
    sag_aff[:3, 1] = -aff[:3, 0]
    sag_aff[:3, 2] = aff[:3, 1]
    sag_aff[:3, 3] = aff[:3, 3] + aff[:3, 0] * (hu.shape[0] - 1)
    sag_lab = None if lab is None else np.transpose(lab, (2, 0, 1))[:, ::-1, :]
    out.append(Case(base.name + "/sagittal", _with(vol, sag, sag_aff), sag_lab, base.bodies, base.targets))
    # Spine-targeted reconstruction: 105 mm field of view centred on the spine, with
    # scanner padding outside the reconstruction circle.
    from scipy import ndimage

    spine = np.isin(lab, list(TS_LEVELS)) if lab is not None else None
    if spine is None or not spine.any():
        sp = np.linalg.norm(aff[:3, :3], axis=0)
        bone = ndimage.uniform_filter((hu > 200).astype(np.float32), (1, 9, 9)).sum(axis=0)
        h, w = hu.shape[1:]
        yy, xx = np.mgrid[:h, :w]
        bone = bone * (np.abs(xx - w / 2) < 40 / sp[2])
        cy, cx = np.unravel_index(np.argmax(bone), bone.shape)
        cy = cy - int(15 / sp[1])
    else:
        cy, cx = [int(v) for v in np.argwhere(spine).mean(axis=0)[1:]]
    sp = np.linalg.norm(aff[:3, :3], axis=0)
    r = [int(52.5 / sp[1]), int(52.5 / sp[2])]
    box = (slice(None), slice(max(cy - r[0], 0), cy + r[0]), slice(max(cx - r[1], 0), cx + r[1]))
    narrow = hu[box].copy()
    yy, xx = np.mgrid[: narrow.shape[1], : narrow.shape[2]]
    outside = ((yy - narrow.shape[1] / 2) * sp[1]) ** 2 + ((xx - narrow.shape[2] / 2) * sp[2]) ** 2 > 52.5**2
    narrow[:, outside] = -2048
    n_aff = crop_affine(aff, [0, box[1].start, box[2].start])
    out.append(
        Case(
            base.name + "/fov105",
            _with(vol, narrow, n_aff),
            None if lab is None else lab[box],
            base.bodies,
            base.targets,
        )
    )
    # 3 mm slices (a routine abdomen reconstruction): slab-averaged and resampled.
    if sp[0] < 2.9:
        z_new = np.arange(0, (hu.shape[0] - 1) * sp[0], 3.0) / sp[0]
        smooth = ndimage.uniform_filter1d(hu.astype(np.float32), max(int(round(3.0 / sp[0])), 1), axis=0)
        thick = ndimage.map_coordinates(
            smooth, np.meshgrid(z_new, np.arange(hu.shape[1]), np.arange(hu.shape[2]), indexing="ij"), order=1
        )
        t_aff = aff.copy()
        t_aff[:3, 0] = aff[:3, 0] * (3.0 / sp[0])
        t_lab = None
        if lab is not None:
            t_lab = lab[np.rint(z_new).astype(int)]
        out.append(
            Case(
                base.name + "/3mm", _with(vol, np.rint(thick).astype(np.int16), t_aff), t_lab, base.bodies, base.targets
            )
        )
    return out


def ge_extra(base: Case) -> list[Case]:
    from pipeline.volume import crop_affine, reorient

    hu, aff, _ = reorient(base.volume.hu, base.volume.affine, "SPL")
    z = aff[2, 3] + np.arange(hu.shape[0]) * aff[2, 0]
    l3 = (z >= 231) & (z <= 341)  # 110 mm around L3 (L2-L4 whole)
    k = np.flatnonzero(l3)
    crop = Case(
        "ge/L3-110mm", _with(base.volume, hu[k[0] : k[-1] + 1], crop_affine(aff, [k[0], 0, 0])), bodies=base.bodies
    )
    legs = np.flatnonzero(z < 60)
    thighs = Case(
        "ge/thighs",
        _with(base.volume, hu[legs[0] : legs[-1] + 1], crop_affine(aff, [legs[0], 0, 0])),
        expect_spine=False,
    )
    return [crop, thighs]


def score(case: Case, seg) -> dict:
    from pipeline.volume import index_to_lps

    ours = seg.labels
    rows = []
    if case.labels is not None:
        ref = case.labels
        for value in sorted(set(np.unique(ref).tolist()) - {0}):
            name = TS_LEVELS.get(value)
            if name is None:
                continue
            r = ref == value
            hit = ours[r]
            hit = hit[hit > 0]
            if hit.size == 0:
                rows.append((name, int(r.sum()), "-", 0.0))
                continue
            k = int(np.bincount(hit).argmax())
            o = ours == k
            rows.append((name, int(r.sum()), seg.levels.get(k, "?"), 2 * np.count_nonzero(o & r) / (o.sum() + r.sum())))
    union = None
    if case.labels is not None:
        a, b = ours > 0, np.isin(case.labels, list(TS_LEVELS))
        union = 2 * np.count_nonzero(a & b) / max(a.sum() + b.sum(), 1)
    right = wrong = 0
    wrong_names = []
    if case.labels is not None and seg.named:
        # Each named vertebra of ours against the reference vertebra holding most
        # of its voxels (a sliver of a neighbour at the scan's edge is not a name).
        for value, name in seg.levels.items():
            if name.startswith("V"):
                continue
            o = ours == value
            hit = case.labels[o]
            hit = hit[np.isin(hit, list(TS_LEVELS))]
            if hit.size < 0.3 * o.sum():
                continue
            truth = TS_LEVELS[int(np.bincount(hit).argmax())]
            if truth == name:
                right += 1
            else:
                wrong += 1
                wrong_names.append(f"{name}(is {truth})")
    elif case.bodies and seg.named:
        # README ranges are approximate (+-10 mm): a name is right when its body's
        # middle lies in its own range +-10 mm, wrong when it lies in another's +-6 mm.
        centre = {}
        for value, name in seg.levels.items():
            pts = index_to_lps(seg.affine, np.argwhere(ours == value))
            front = pts[pts[:, 1] <= np.percentile(pts[:, 1], 30)]
            centre[name] = float(np.median(front[:, 2]))

        def placed(level):
            return level in centre and case.bodies[level][0] - 10 <= centre[level] <= case.bodies[level][1] + 10

        for name, zc in centre.items():
            if name.startswith("V"):
                continue
            if name in case.bodies and placed(name):
                right += 1
                continue
            # In another level's range: wrong unless our vertebra of that name sits there.
            others = [
                lv for lv, (z0, z1) in case.bodies.items() if lv != name and z0 - 6 <= zc <= z1 + 6 and not placed(lv)
            ]
            if others or name in case.bodies:
                wrong += 1
                wrong_names.append(f"{name}@z{zc:.0f}" + (f"(in {others[0]})" if others else ""))
    target = [d for n, _, _, d in rows if n in case.targets]
    return {
        "rows": rows,
        "union": union,
        "right": right,
        "wrong": wrong,
        "wrong_names": wrong_names,
        "mean_target": float(np.mean(target)) if target else None,
    }


def run(case: Case) -> dict:
    from pipeline.segment import segment_vertebrae

    t0 = time.perf_counter()
    try:
        seg = segment_vertebrae(case.volume)
    except Exception as exc:  # a bench reports and goes on
        print(f"{case.name}: FAILED {type(exc).__name__}: {exc}")
        return {}
    seconds = time.perf_counter() - t0
    s = score(case, seg)
    names = list(seg.levels.values())
    ok = (len(names) > 0) == case.expect_spine
    print(
        f"\n== {case.name}: {case.volume.shape} spacing {tuple(round(v, 2) for v in case.volume.spacing)}, "
        f"{seconds:.1f} s; {len(names)} vertebrae{'' if ok else ' (WRONG: expected none)' if names else ' (none found)'}"
    )
    print(f"   names: {' '.join(names) or '-'} ({'named' if seg.named else 'unnamed'}: {seg.evidence})")
    for w in seg.warnings:
        print(f"   warning: {w}")
    if s["rows"]:
        print("   " + "  ".join(f"{n}:{got}={d:.2f}" for n, _, got, d in s["rows"]))
    if s["union"] is not None:
        mt = "" if s["mean_target"] is None else f", mean Dice over {'/'.join(case.targets)} {s['mean_target']:.3f}"
        print(f"   union Dice {s['union']:.3f}{mt}")
    print(f"   names right {s['right']}, wrong {s['wrong']} {' '.join(s['wrong_names'])}")
    s["seconds"] = seconds
    s["names"] = names
    return s


def case_phantom():
    """The bundled phantom against its own truth (VerSe values mapped to the TS map)."""
    from pipeline.exchange.nifti import read_nifti
    from pipeline.volume import reorient

    root = HERE.parent / "sample_scans" / "lumbar_phantom"
    vol = _read(root / "dicom")
    lab, aff = read_nifti(root / "truth" / "labels.nii.gz")
    lab, lab_aff, _ = reorient(lab, aff, "SPL")
    _, vol_aff, undo = reorient(vol.hu, vol.affine, "SPL")
    if not np.allclose(lab_aff, vol_aff, atol=1e-3):
        raise RuntimeError("phantom truth is not on the scan's grid")
    lab = np.ascontiguousarray(undo(lab))
    verse_to_ts = {19: 32, 20: 31, 21: 30, 22: 29, 23: 28, 24: 27, 26: 26}
    ts = np.zeros(lab.shape, dtype=np.int16)
    for verse, value in verse_to_ts.items():
        ts[lab == verse] = value
    return [Case("phantom", vol, ts, targets=("T12", "L1", "L2", "L3", "L4", "L5", "S1"))]


LOADERS = {"phantom": case_phantom, "j2k": case_j2k, "ts": case_ts, "ge": case_ge}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", help="case name prefixes (default: all)")
    ap.add_argument("--no-variants", action="store_true")
    args = ap.parse_args()
    cases: list[Case] = []
    for key, loader in LOADERS.items():
        try:
            base = loader()
        except Exception as exc:
            print(f"{key}: skipped ({type(exc).__name__}: {exc})")
            continue
        cases.extend(base)
        if not args.no_variants:
            for c in base:
                if c.name in ("ge", "ts-torso", "j2k"):
                    cases.extend(variants(c))
                if c.name == "ge":
                    cases.extend(ge_extra(c))
    if args.cases:
        cases = [
            c
            for c in cases
            if any(
                c.name == p
                or c.name.startswith(p + "/")
                or c.name == p.rstrip("*")
                or (p.endswith("*") and c.name.startswith(p[:-1]))
                for p in args.cases
            )
        ]
    wrong = 0
    for c in cases:
        wrong += run(c).get("wrong", 0)
    print(f"\nvertebrae named wrong across all cases: {wrong}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
