"""The ``scaffold`` job: find or take a defect region and fill it with a measured lattice."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bone_quality import scaffold_beside_bone
from ..errors import InputError, NothingToPrint, OptionError
from ..exchange.manifest import merge_prints
from ..exchange.nifti import is_nifti, read_nifti
from ..exchange.stl import write_stl
from ..mesh import check_mesh
from ..printing import deviation_bound, print_record
from ..scaffold import (
    Region,
    ScaffoldMeasurement,
    build_scaffold,
    get_lattice,
    get_material,
    parse_grading,
    parse_primitive,
)
from ..segment import VertebraSegmentation
from . import options as check
from .common import (
    Quiet,
    check_output,
    finish_result,
    read_volume,
    require_vertebrae,
    segment,
    stage_segmentation,
    staged_result,
    start_manifest,
)

#: Self-intersection test above this many triangles is skipped: one marching-cubes
#: surface of one scalar field cannot cross itself, and the test, binned by the
#: sampling grid's voxels, costs about 1.6 s per million triangles (and memory).
SELF_INTERSECTION_TEST_MAX = 8_000_000


@dataclass(frozen=True)
class ScaffoldOptions:
    """Options of the ``scaffold`` job (see ``osteoprint scaffold --help``); ``preset``,
    ``hu_low`` and ``hu_high`` are the segmentation's bone thresholds, as for ``model``."""

    series: str | None = None
    defect: str = "auto"
    level: str | None = None
    lattice: str = "gyroid"
    cell_mm: float = 2.0
    porosity: float = 0.7
    grading: str | None = None
    material: str = "ti6al4v"
    rim_mm: float = 0.0
    clearance_mm: float = 0.0
    bone: str = "none"
    voxel_mm: float | None = None
    dicom: bool = False
    preset: str = "bone"
    hu_low: float | None = None
    hu_high: float | None = None

    def __post_init__(self):
        check.hu_thresholds(self.preset, self.hu_low, self.hu_high)
        spec = self.defect
        if not isinstance(spec, str) or not spec.strip():
            raise OptionError("--defect", spec, "give auto, a mask file or a primitive")
        if spec != "auto":
            if is_nifti(spec):
                if not os.path.isfile(spec):
                    raise OptionError("--defect", spec, "no such mask file")
            else:
                check.parsed("--defect", spec, parse_primitive)
        object.__setattr__(self, "level", check.level("--level", self.level))
        check.parsed("--lattice", self.lattice, get_lattice)
        check.number("--cell", self.cell_mm, 0.2, 20.0, unit="mm")
        check.number("--porosity", self.porosity, 0.0, 1.0, lo_open=True, hi_open=True)
        if self.grading is not None:
            check.parsed("--grade", self.grading, parse_grading)
        check.parsed("--material", self.material, get_material)
        check.number("--rim", self.rim_mm, 0.0, 10.0, unit="mm")
        check.number("--clearance", self.clearance_mm, 0.0, 10.0, unit="mm")
        check.choice("--bone", self.bone, ("none", "subtract", "intersect"))
        if self.voxel_mm is not None:
            check.number("--voxel", self.voxel_mm, 0.01, 2.0, unit="mm")


@dataclass(frozen=True)
class DefectRegion:
    """A region to fill, named for the file and the manifest."""

    name: str
    label: str
    region: Region
    info: dict


def defect_regions(
    volume, seg: VertebraSegmentation | None, options: ScaffoldOptions, fractures=None
) -> list[DefectRegion]:
    """The regions ``options.defect`` asks for, in LPS (pure: no files but a mask file).

    ``fractures`` (from :func:`pipeline.defect.find_compression_fractures`) spares
    finding them again for ``--defect auto``.
    """
    spec = options.defect
    bone = None
    if options.bone != "none":
        if seg is None:
            raise OptionError("--bone", options.bone, "needs the segmentation")  # pragma: no cover - jobs segment first
        bone = seg.labels > 0
    if spec == "auto":
        return _fracture_regions(volume, seg, options, fractures)
    if is_nifti(spec):
        mask, affine = read_nifti(spec)
        mask = mask > 0
        if not mask.any():
            raise InputError(spec, "the defect mask is empty")
        region = Region.from_mask(mask, affine, clearance_mm=options.clearance_mm)
        info = {"source": "mask file", "mask_voxels": int(mask.sum())}
        name = "mask"
    else:
        region = Region.from_spec(spec, clearance_mm=options.clearance_mm)
        info = {"source": "primitive", "primitive": spec.split(":", 1)[0]}
        name = spec.split(":", 1)[0]
    if bone is not None:
        region = region.with_bone(bone, seg.affine, mode=options.bone)
        info["bone"] = options.bone
    return [DefectRegion(name, f"{name} region scaffold", region, info)]


def _fracture_regions(
    volume, seg: VertebraSegmentation, options: ScaffoldOptions, fractures=None
) -> list[DefectRegion]:
    from ..defect import fractures_to_fill

    found = fractures_to_fill(seg, volume, options.level, fractures)
    if options.level and not found[0].any():
        raise NothingToPrint(None, f"{options.level}: no collapse to fill ({found[0].info.reason})")
    if not found:
        raise NothingToPrint(
            None,
            "no compression fracture found (no vertebral body has lost 20 % or more of its height); "
            "give --defect MASK.nii.gz or a primitive to fill a region of your choice",
        )
    out = []
    for f in found:
        region = Region.from_mask(f.mask, f.affine(seg.affine), clearance_mm=options.clearance_mm)
        info = (
            {"level": f.level, "defect_volume_mm3": round(float(f.info.volume_mm3), 1)}
            if options.level
            else f.info.to_dict()
        )
        out.append(
            DefectRegion(
                f"{f.level}-defect", f"{f.level} defect scaffold", region, {"source": "compression fracture", **info}
            )
        )
    return out


def scaffold_record(
    scaffold,
    measured: ScaffoldMeasurement,
    quality,
    *,
    file: str,
    label: str,
    material: str,
    info: dict,
    sha256: str,
    patient_bone: dict | None = None,
    bound=None,
) -> dict:
    """Manifest record of one scaffold print; ``patient_bone`` compares its stiffness
    with this patient's trabecular bone (:func:`pipeline.bone_quality.scaffold_beside_bone`);
    ``bound`` (:class:`~pipeline.printing.DeviationBound`) says where the mesh's
    chord-deviation bound came from."""
    wall = measured.wall_thickness_mm or {}
    pores = measured.pore_diameter_mm or {}
    smallest_wall = wall.get("p05") if wall.get("p05") is not None else (measured.smallest_feature_mm or 0.0)
    design = scaffold.parameters()
    if bound is not None and design.get("mesh_resolution") is not None:
        design["mesh_resolution"] = {**bound.describe(), **design["mesh_resolution"]}
    return print_record(
        scaffold.mesh,
        file=file,
        kind="scaffold",
        label=label,
        sha256=sha256,
        quality=quality,
        purpose=material,
        smallest_feature_mm=float(smallest_wall),
        smallest_pore_mm=None if pores.get("d10") is None else float(pores["d10"]),
        extra={
            "material": get_material(material).label,
            "porosity": measured.porosity,
            "porosity_voxel": measured.porosity_voxel,
            "defect": info,
            "design": design,
            "measured": measured.to_dict(),
            **({"patient_bone": patient_bone} if patient_bone is not None else {}),
        },
    )


def run_scaffold(
    scan: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: ScaffoldOptions = ScaffoldOptions(),
    progress=None,
    *,
    volume=None,
    segmentation: VertebraSegmentation | None = None,
    bone_quality=None,
) -> dict:
    """Fill the defect regions of a scan with scaffolds; write STLs and extend the manifest.

    Writes ``scaffolds/<name>.stl`` and ``bone.json`` and adds ``scaffold`` records
    (each with its stiffness beside the patient's trabecular bone) to
    ``manifest.json`` (creating it, with the segmentation, if absent); the folder's
    result is replaced whole, or not at all. ``volume``, ``segmentation`` and
    ``bone_quality`` spare reading, segmenting and measuring again. The folder's
    ``labels.png``, ``prints.3mf``, ``report.html`` (and DICOM prints with
    ``options.dicom``) are made again for all its prints.
    """
    from .bone import measure, stage_bone
    from .deliver import study_for

    progress = progress or Quiet()
    check_output(out_dir, scan)
    volume = volume if volume is not None else read_volume(scan, options.series, progress)
    study = study_for(scan, volume, options.dicom, progress)
    # Always segmented: the patient's bone density is read per vertebra.
    seg = segmentation if segmentation is not None else segment(volume, options, progress)
    require_vertebrae(seg, scan)
    fractures = None
    if options.defect == "auto" and not options.level:
        from ..defect import find_compression_fractures

        progress.stage("finding compression fractures")
        fractures = find_compression_fractures(seg, volume)
    bone = bone_quality if bone_quality is not None else measure(volume, seg, progress, fractures)
    progress.stage("finding defect regions")
    regions = defect_regions(volume, seg, options, fractures)
    with staged_result(out_dir, scan) as stage:
        manifest = stage_segmentation(stage, start_manifest(volume, stage, progress), seg, volume)
        meshes: dict = {}
        made = make_scaffolds(seg, regions, options, progress, bone=bone)
        manifest = add_scaffolds(stage, manifest, made, options, progress, made=meshes)
        manifest = stage_bone(stage, manifest, bone, volume.info.series_hash)
        manifest = finish_result(
            stage,
            manifest,
            progress=progress,
            deliver={"volume": volume, "segmentation": seg, "meshes": meshes, "study": study},
        )
    return manifest


@dataclass(frozen=True)
class MadeScaffold:
    """One scaffold built, measured and checked for a defect region (no file yet)."""

    item: DefectRegion
    scaffold: object  # pipeline.scaffold.Scaffold
    measured: ScaffoldMeasurement
    quality: object  # pipeline.mesh.MeshQuality
    patient_bone: dict | None


def make_scaffolds(
    seg: VertebraSegmentation | None,
    regions: list[DefectRegion],
    options: ScaffoldOptions,
    progress=None,
    *,
    bone=None,
) -> tuple[MadeScaffold, ...]:
    """Build, measure and check a scaffold per region (no files). With ``bone``
    (:class:`~pipeline.bone_quality.BoneQuality`), each compares its stiffness with
    the patient's trabecular bone."""
    progress = progress or Quiet()
    grading = parse_grading(options.grading) if options.grading else None
    # the mesh follows the design no closer than the printer can print
    bound = deviation_bound(options.material)
    made = []
    for item in regions:
        progress.stage(f"building {options.lattice} scaffold: {item.label}")
        scaffold = build_scaffold(
            item.region,
            options.lattice,
            cell_mm=options.cell_mm,
            porosity=options.porosity,
            grading=grading,
            rim_mm=options.rim_mm,
            voxel_mm=options.voxel_mm,
            deviation_mm=bound.bound_mm,
        )
        for w in scaffold.warnings:
            progress.note(f"warning: {w}")
        progress.stage(f"measuring {item.label}")
        measured = scaffold.measure(material=options.material)
        quality = check_mesh(
            scaffold.mesh,
            self_intersection_test=len(scaffold.mesh.faces) <= SELF_INTERSECTION_TEST_MAX,
            grid_affine=scaffold.grid.affine,
        )
        against = None
        if bone is not None and seg is not None:
            centre = (measured.measurement or {}).get("feature_block_center_lps_mm")
            if centre is None:
                centre = np.mean(np.asarray(item.region.bounds(), float), axis=0)
            against = scaffold_beside_bone(bone, seg, item.info.get("level"), centre, measured.apparent_modulus_gpa)
        made.append(MadeScaffold(item, scaffold, measured, quality, against))
    return tuple(made)


def add_scaffolds(
    stage, manifest: dict, scaffolds: tuple[MadeScaffold, ...], options: ScaffoldOptions, progress=None, *, made=None
) -> dict:
    """Write the scaffolds of :func:`make_scaffolds` into ``stage``; return the
    manifest with their records. The meshes are added to ``made`` (print file ->
    mesh) when given."""
    progress = progress or Quiet()
    bound = deviation_bound(options.material)
    records = []
    for one in scaffolds:
        scaffold, item = one.scaffold, one.item
        rel = f"scaffolds/{item.name}-{scaffold.design.lattice.name}.stl"
        sha = write_stl(stage.path(rel), scaffold.mesh, f"{item.label}, {scaffold.design.lattice.name}")
        if made is not None:
            made[rel] = scaffold.mesh
        if one.patient_bone is not None:
            progress.note(f"{rel}: {one.patient_bone['statement']}")
        records.append(
            scaffold_record(
                scaffold,
                one.measured,
                one.quality,
                file=rel,
                label=item.label,
                material=options.material,
                info=_json_ready(item.info),
                sha256=sha,
                patient_bone=one.patient_bone,
                bound=bound,
            )
        )
        progress.note(
            f"{rel}: porosity {one.measured.porosity:.3f} (target {scaffold.porosity_target:.3f}), "
            f"{len(scaffold.mesh.faces)} triangles"
        )
    manifest = merge_prints(manifest, records)
    manifest["parameters"]["scaffold"] = {
        # A mask's path is the user's free text (folder names can hold a patient's
        # name): the manifest says "mask file"; the defect record counts its voxels.
        "defect": "mask file" if is_nifti(options.defect) else options.defect,
        "level": options.level,
        "lattice": options.lattice,
        "cell_mm": options.cell_mm,
        "porosity": options.porosity,
        "grading": options.grading,
        "material": options.material,
        "rim_mm": options.rim_mm,
        "clearance_mm": options.clearance_mm,
        "bone": options.bone,
        "voxel_mm": options.voxel_mm,
    }
    return manifest


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items() if not isinstance(v, np.ndarray)}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
