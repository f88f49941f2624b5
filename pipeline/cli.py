"""Command line: ``osteoprint model|scaffold|guide|bone|run|batch|demo ...``. Thin over
:mod:`pipeline.jobs`.

Conventions: ``--version``; on every command ``-q`` (errors only), ``-v`` (details)
and ``--json`` (the summary as JSON on standard output; progress always goes to
standard error, as a live display only on a terminal). Exit status: see
:data:`EXIT_CODES`. Options are checked when they are parsed, the output place when
the job starts, both before any work. Every failure is one line on stderr: a
user's error names the file or option and why; an internal error names the file
holding its traceback. SIGINT and SIGTERM stop the job and leave no output behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__, interrupts
from .errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_NOTHING_TO_PRINT, EXIT_USAGE, OptionError
from .outcome import OneLineParser, run_command
from .printing import purposes
from .progress import Progress
from .segment import PRESETS
from .summary import emit_json, job_summary, print_checks, print_lines

#: Exit status of every command (also in ``osteoprint --help`` and the README).
EXIT_CODES = {
    0: "success",
    EXIT_FAILED: "finished, but something failed: a check-guide check, or a batch scan",
    EXIT_USAGE: "bad input, option or output place: one line says which file or option and why; nothing written",
    EXIT_NOTHING_TO_PRINT: "the scan was read but the job found nothing to make (no vertebra, no fracture, no "
    "screw at the levels asked for); nothing written",
    EXIT_INTERNAL: "internal error (a bug in osteoprint): one line names the file holding the traceback; "
    "please report it; nothing written",
    130: "interrupted (SIGINT, Ctrl-C); nothing written",
    143: "terminated (SIGTERM); nothing written",
}


SCAN_HELP = "DICOM folder, a DICOM file of the series, or a NIfTI CT (.nii/.nii.gz)"
#: Processes a drill guide can be checked against (resin, PA12, jetted resin).
GUIDE_PROCESSES = ["vat_photopolymerization", "powder_bed_fusion", "material_jetting"]


def _add_scan(p: argparse.ArgumentParser, output_help: str | None) -> None:
    """The scan to read, which series of it, and the output (required unless ``output_help`` is None)."""
    p.add_argument("scan", help=SCAN_HELP)
    if output_help is not None:
        p.add_argument("-o", "--output", required=True, help=output_help)
    p.add_argument(
        "--series",
        help="series to use when the folder holds several: its 12-hex hash, SeriesNumber or 1-based index (default: the CT axial series with the most slices)",
    )
    if output_help is not None:
        p.add_argument(
            "--dicom",
            action="store_true",
            help="also write every print as a DICOM Encapsulated STL instance (OUT/dicom/) in the CT's study and frame of reference, for PACS; these files carry the patient's identifiers (every other output stays free of them)",
        )


def _add_threshold_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default="bone",
        choices=sorted(PRESETS),
        help="bone threshold preset: "
        + "; ".join(f"{k} {v[0]:.0f}..{v[1]:.0f} HU ({v[2]})" for k, v in PRESETS.items())
        + " (default: bone)",
    )
    p.add_argument(
        "--hu-min",
        type=float,
        help="lower HU threshold, overrides the preset's (at least 100: below it soft tissue counts as bone)",
    )
    p.add_argument(
        "--hu-max", type=float, help="upper HU threshold, overrides the preset's (above the lower one, at most 40000)"
    )


def _thresholds(args) -> dict:
    """The segmentation's thresholds as job options."""
    return {"preset": args.preset, "hu_low": args.hu_min, "hu_high": args.hu_max}


def _add_model_options(p: argparse.ArgumentParser) -> None:
    _add_threshold_options(p)
    p.add_argument("--levels", help="comma-separated levels to mesh, e.g. L1,L2 (default: all found)")
    p.add_argument(
        "--purpose",
        default="planning",
        choices=purposes("anatomical_model"),
        help="intended use of the models, drives the printing-process recommendation (default: planning)",
    )
    p.add_argument(
        "--decimate",
        type=float,
        default=0.5,
        help="fraction of triangles to remove when the surface stays within 0.1 mm and watertight; 0 keeps all (default: 0.5)",
    )


def _model_options(args):
    from .jobs import ModelOptions

    return ModelOptions(
        series=getattr(args, "series", None),
        preset=args.preset,
        hu_low=args.hu_min,
        hu_high=args.hu_max,
        levels=args.levels,
        purpose=args.purpose,
        decimate=args.decimate,
        dicom=args.dicom,
    )


def _progress(args) -> Progress:
    return Progress(0 if args.quiet else 2 if args.verbose else 1)


def _finish_job(args, progress: Progress, manifest: dict, kind: str | None = None) -> int:
    """Tell the user what the job made: lines on stderr, the JSON summary with --json."""
    interrupts.ignore()  # the result is in place: a Ctrl-C now would only cut the summary short
    out = Path(args.output)
    print_lines(manifest, out, progress, kind)
    if args.json:
        emit_json(job_summary(args.command, manifest, out))
    return 0


def _run_job(args, job) -> int:
    progress = _progress(args)
    try:
        manifest = job(progress)
    finally:
        progress.close()
    return _finish_job(args, progress, manifest)


def cmd_bone(args) -> int:
    from .jobs import BoneOptions, run_bone

    options = BoneOptions(series=args.series, dicom=args.dicom)
    return _run_job(args, lambda progress: run_bone(args.scan, args.output, options, progress))


def cmd_model(args) -> int:
    from .jobs import run_model

    options = _model_options(args)
    return _run_job(args, lambda progress: run_model(args.scan, args.output, options, progress))


def _add_scaffold_options(p: argparse.ArgumentParser) -> None:
    from .scaffold import MATERIALS, lattice_names

    p.add_argument(
        "--defect",
        default="auto",
        help="what to fill: 'auto' (compression fractures found by body-height loss, Genant grade >= 1), a NIfTI mask aligned to the scan (MASK.nii.gz), or a primitive in LPS mm: sphere:X,Y,Z,R | box:X0,Y0,Z0,X1,Y1,Z1 | cylinder:X0,Y0,Z0,X1,Y1,Z1,R (default: auto)",
    )
    p.add_argument(
        "--level", help="with --defect auto: fill this level's collapse (e.g. L1) even if it is graded below fracture"
    )
    p.add_argument(
        "--lattice",
        default="gyroid",
        help="lattice: "
        + ", ".join(lattice_names())
        + "; a bare TPMS name (gyroid, schwarz-p, diamond) is its skeletal network (default: gyroid, whose 0.6 mm struts at 2 mm cells and 70 %% porosity suit titanium powder bed fusion)",
    )
    p.add_argument(
        "--cell",
        type=float,
        default=2.0,
        help="unit cell size, mm, 0.2-20 (default: 2.0; gyroid titanium implants use 1-2.5 mm)",
    )
    p.add_argument(
        "--porosity",
        type=float,
        default=0.7,
        help="target porosity, fraction of the region, strictly between 0 and 1 (default: 0.7; 0.6-0.8 is the usual band)",
    )
    p.add_argument(
        "--grade",
        help="porosity grading instead of --porosity: 'boundary:P_EDGE,P_CORE[,DEPTH_MM]' (denser where it meets bone) or 'linear:AXIS,P0,P1' with AXIS one of L,P,S",
    )
    p.add_argument(
        "--material",
        default="ti6al4v",
        choices=sorted(MATERIALS),
        help="scaffold material: drives the stiffness estimate and the printing-process recommendation (default: ti6al4v)",
    )
    p.add_argument(
        "--rim",
        type=float,
        default=0.0,
        help="solid rim thickness along the region boundary, mm, 0-10; vented so it never seals the pores (default: none)",
    )
    p.add_argument(
        "--clearance",
        type=float,
        default=0.0,
        help="gap left between scaffold and surrounding bone, mm, 0-10 (default: 0)",
    )
    p.add_argument(
        "--bone",
        default="none",
        choices=["none", "subtract", "intersect"],
        help="combine a mask or primitive with the segmented vertebrae: subtract bone (fill only the void) or intersect (replace bone) (default: none)",
    )
    p.add_argument(
        "--voxel",
        type=float,
        help="sampling voxel for the lattice, mm, 0.01-2 (default: automatic, >= 4 voxels across the thinnest wall)",
    )


def _scaffold_options(args):
    from .jobs.scaffold import ScaffoldOptions

    return ScaffoldOptions(
        series=args.series,
        defect=args.defect,
        level=args.level,
        lattice=args.lattice,
        cell_mm=args.cell,
        porosity=args.porosity,
        grading=args.grade,
        material=args.material,
        rim_mm=args.rim,
        clearance_mm=args.clearance,
        bone=args.bone,
        voxel_mm=args.voxel,
        dicom=args.dicom,
        **_thresholds(args),
    )


def cmd_scaffold(args) -> int:
    from .jobs.scaffold import run_scaffold

    options = _scaffold_options(args)
    return _run_job(args, lambda progress: run_scaffold(args.scan, args.output, options, progress))


def _add_guide_options(p: argparse.ArgumentParser) -> None:
    from .guide import GuideDesign

    p.add_argument(
        "--levels",
        help="comma-separated vertebrae to plan screws in and guide, e.g. L3,L4 (default for 'guide': every named level but S1; for 'run': one level next to the fracture)",
    )
    p.add_argument(
        "--plan",
        help="a screw plan JSON (see docs/plan-format.md) to check and build the guide from instead of planning",
    )
    p.add_argument(
        "--clearance",
        type=float,
        default=GuideDesign.clearance_mm,
        help=f"gap between the guide's underside and the bone at the contact pads, mm (default: {GuideDesign.clearance_mm})",
    )
    p.add_argument(
        "--sleeve-length",
        type=float,
        default=GuideDesign.sleeve_length_mm,
        help=f"drill sleeve length, mm (default: {GuideDesign.sleeve_length_mm})",
    )
    p.add_argument(
        "--drill",
        type=float,
        default=GuideDesign.drill_diameter_mm,
        help=f"drill or K-wire diameter the sleeves guide, mm; the bore adds a small clearance (default: {GuideDesign.drill_diameter_mm})",
    )
    p.add_argument(
        "--guide-process",
        default="vat_photopolymerization",
        choices=GUIDE_PROCESSES,
        help="printing process the guide's walls are checked against (default: vat_photopolymerization, surgical-guide resin)",
    )


def _guide_options(args, levels: str | None = None, clearance: float | None = None):
    """Guide options from ``guide`` arguments, or from ``run``'s (whose --levels and
    --clearance belong to the model and the scaffold; errors name run's flags)."""
    from .jobs.guide import GuideOptions

    run = hasattr(args, "guide_levels")
    try:
        return GuideOptions(
            series=args.series,
            levels=levels if run else args.levels,
            plan=args.plan,
            clearance_mm=args.clearance if clearance is None else clearance,
            sleeve_length_mm=args.sleeve_length,
            drill_mm=args.drill,
            process=args.guide_process,
            material="PA12" if args.guide_process == "powder_bed_fusion" else "surgical-guide resin",
            dicom=bool(getattr(args, "dicom", False)),
            **_thresholds(args),
        )
    except OptionError as exc:
        if run and exc.option in ("--levels", "--clearance"):
            raise OptionError(
                {"--levels": "--guide-levels", "--clearance": "--guide-clearance"}[exc.option], exc.value, exc.problem
            ) from None
        raise


def cmd_guide(args) -> int:
    from .jobs.guide import run_guide

    options = _guide_options(args)
    return _run_job(args, lambda progress: run_guide(args.scan, args.output, options, progress))


def cmd_check_guide(args) -> int:
    from .jobs.guide import run_check_guide

    progress = _progress(args)
    try:
        result = run_check_guide(
            args.scan,
            args.plan,
            args.guide,
            args.output,
            progress,
            series=args.series,
            drill_mm=args.drill,
            clearance_mm=args.clearance,
            process=args.guide_process,
            **_thresholds(args),
        )
    finally:
        progress.close()
    interrupts.ignore()
    report = result.to_dict()
    if args.json:
        emit_json({"status": "ok", "command": "check-guide", **report})
    else:
        print_checks(report)
    return 0 if result.passed else EXIT_FAILED


def cmd_run(args) -> int:
    from .jobs.run import run_all

    model, scaffold = _model_options(args), _scaffold_options(args)
    guide = _guide_options(args, levels=args.guide_levels, clearance=args.guide_clearance)
    return _run_job(args, lambda progress: run_all(args.scan, args.output, model, scaffold, guide, progress))


def cmd_phantom(args) -> int:
    from .jobs.phantom import run_phantom

    if not 0 <= args.seed < 2**32:
        raise OptionError("--seed", args.seed, f"must be between 0 and {2**32 - 1}")
    progress = _progress(args)
    try:
        paths = run_phantom(args.output, seed=args.seed, transfer_syntax=args.transfer_syntax, progress=progress)
    finally:
        progress.close()
    interrupts.ignore()
    for name, path in paths.items():
        if name != "dicom_files":
            progress.note(f"{name}: {path}")
    if args.json:
        emit_json(
            {
                "status": "ok",
                "command": "phantom",
                "output": str(args.output),
                **{k: str(v) for k, v in paths.items() if k != "dicom_files"},
            }
        )
    return 0


def cmd_demo(args) -> int:
    from .jobs.demo import sample_scan
    from .jobs.run import run_all

    return _run_job(args, lambda progress: run_all(sample_scan(progress), args.output, progress=progress))


def cmd_batch(args) -> int:
    from .jobs.batch import run_batch

    model = _model_options(args)
    progress = _progress(args)
    try:
        summary = run_batch(
            args.scans,
            args.output,
            job=args.job,
            model=model,
            dicom=args.dicom,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=progress,
        )
    finally:
        progress.close()
    interrupts.ignore()
    progress.note(
        f"{summary['succeeded']} of {len(summary['cases'])} scans done, {summary['failed']} failed; "
        f"see {Path(args.output) / 'batch.json'}"
    )
    if args.json:
        emit_json({"status": "ok" if summary["failed"] == 0 else "failed", "command": "batch", **summary})
    return 0 if summary["failed"] == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="osteoprint",
        description="Plan 3D prints of patient-specific spinal implants from CT. "
        "All STL files are binary, in millimetres, in DICOM patient coordinates (LPS, stated as "
        "SPACE=LPS in each header), so they line up with the scan in 3D Slicer or any DICOM-aware viewer. "
        "Every job also writes report.html, prints.3mf and, for a segmentation, labels.png.",
        epilog="exit status: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"osteoprint {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    talk = common.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress")
    talk.add_argument(
        "-v", "--verbose", action="store_true", help="more detail: each file skipped, each vertebra meshed"
    )
    common.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON on standard output (progress stays on standard error)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, **kwargs):
        return sub.add_parser(name, parents=[common], epilog=parser.epilog, **kwargs)

    p = command(
        "model",
        help="scan -> one watertight STL per labelled vertebra + label map + manifest",
        description="Read a DICOM folder (any file names, several series allowed) or a NIfTI CT, "
        "segment and label the vertebrae, and write OUT/vertebrae/<LEVEL>.stl, "
        "OUT/segmentation.nii.gz and OUT/manifest.json.",
    )
    _add_scan(p, "output folder (created if missing)")
    _add_model_options(p)
    p.set_defaults(func=cmd_model)

    p = command(
        "scaffold",
        help="fill defect regions (e.g. a compression fracture) with a porous lattice scaffold",
        description="Find compression fractures (or take a mask or primitive), fill each region with a "
        "TPMS or strut lattice whose level is solved for the target porosity on the real region, "
        "measure porosity, pores and walls, and write OUT/scaffolds/<name>.stl plus manifest entries.",
    )
    _add_scan(p, "output folder (created if missing); its manifest is extended")
    _add_threshold_options(p)
    _add_scaffold_options(p)
    p.set_defaults(func=cmd_scaffold)

    p = command(
        "guide",
        help="plan pedicle screws and build patient-specific drill guides, with all checks",
        description="Plan pedicle-screw trajectories per vertebra and side (or take --plan), size them from "
        "the screw catalogue, build a drill guide per vertebra and check plan and guide geometry. Writes "
        "OUT/plan.json, OUT/guides/<LEVEL>-guide.stl and manifest entries of kind 'guide'.",
    )
    _add_scan(p, "output folder (created if missing); its manifest is extended")
    _add_threshold_options(p)
    _add_guide_options(p)
    p.set_defaults(func=cmd_guide)

    p = command(
        "bone",
        help="trabecular bone density per vertebra and an osteoporosis screening flag",
        description="Segment the vertebrae and measure each body's trabecular bone (away from cortex "
        "and endplates, without the basivertebral vein, fracture zones and sclerotic bone): mean and "
        "median HU, voxel count and a radiologist-style oval ROI at mid-body. Flags likely osteoporosis "
        "by L1 (else L2, else T12) <= 110 HU, indeterminate to 160 HU, likely normal above (Pickhardt "
        "et al., Ann Intern Med 2013): a screening flag, not a diagnosis. Writes OUT/bone.json and the "
        "manifest's bone_quality block.",
    )
    _add_scan(p, "output folder (created if missing); its manifest is extended")
    p.set_defaults(func=cmd_bone)

    p = command(
        "check-guide",
        help="check a screw plan and a drill-guide STL (from any tool) against the scan",
        description="Check a plan (breach grade, wall margins, sizes, angles, clashes) and a guide STL "
        "(sleeve alignment recovered from the mesh, play, interference, contact, walls, drill path). "
        "Prints a table, writes the JSON report with -o, exits 0 when every check passes, 1 otherwise.",
    )
    _add_scan(p, None)
    p.add_argument("--plan", required=True, help="screw plan JSON (docs/plan-format.md)")
    p.add_argument("--guide", required=True, help="drill guide STL, millimetres, DICOM LPS coordinates")
    p.add_argument("-o", "--output", help="write the JSON report here")
    from .guide import GuideDesign

    p.add_argument(
        "--drill",
        type=float,
        default=GuideDesign.drill_diameter_mm,
        help=f"drill or K-wire diameter the sleeves must guide, mm (default: {GuideDesign.drill_diameter_mm})",
    )
    p.add_argument(
        "--clearance",
        type=float,
        default=GuideDesign.clearance_mm,
        help=f"guide-bone clearance it was designed with, mm (default: {GuideDesign.clearance_mm})",
    )
    p.add_argument(
        "--guide-process",
        default="vat_photopolymerization",
        choices=GUIDE_PROCESSES,
        help="printing process whose minimum wall the sleeves are checked against (default: vat_photopolymerization)",
    )
    _add_threshold_options(p)
    p.set_defaults(func=cmd_check_guide)

    p = command(
        "run",
        help="everything for a scan: vertebra models, scaffolds for fractures found, a drill guide",
        description="Read and segment once, then write vertebra models (as 'model'), scaffolds for the "
        "compression fractures found (as 'scaffold --defect auto') and a drill guide (as 'guide').",
    )
    _add_scan(p, "output folder (created if missing)")
    _add_model_options(p)
    _add_scaffold_options(p)
    for action in p._actions:
        if action.dest == "levels":
            action.help = "model option: comma-separated levels to mesh (default: all found)"
    p.add_argument(
        "--guide-levels",
        dest="guide_levels",
        help="comma-separated vertebrae to guide (default: the first intact level below a fracture, else the middle lumbar level)",
    )
    p.add_argument("--plan", help="a screw plan JSON to build the guide from instead of planning")
    from .guide import GuideDesign as _GD

    p.add_argument(
        "--guide-clearance",
        dest="guide_clearance",
        type=float,
        default=_GD.clearance_mm,
        help=f"guide-bone clearance at the contact pads, mm (default: {_GD.clearance_mm})",
    )
    p.add_argument(
        "--sleeve-length",
        type=float,
        default=_GD.sleeve_length_mm,
        help=f"drill sleeve length, mm (default: {_GD.sleeve_length_mm})",
    )
    p.add_argument(
        "--drill",
        type=float,
        default=_GD.drill_diameter_mm,
        help=f"drill or K-wire diameter, mm (default: {_GD.drill_diameter_mm})",
    )
    p.add_argument(
        "--guide-process",
        default="vat_photopolymerization",
        choices=GUIDE_PROCESSES,
        help="printing process the guide is checked against (default: vat_photopolymerization)",
    )
    p.set_defaults(func=cmd_run)

    p = command(
        "phantom",
        help="write the synthetic lumbar-spine CT phantom and its ground truth",
        description="Write OUT_DIR/dicom/ (a CT series, T12-S1 with an L1 wedge fracture) and "
        "OUT_DIR/truth/ (label map, fracture defect mask, landmarks). The pipeline never reads truth/.",
    )
    p.add_argument("output", metavar="OUT_DIR", help="folder to write")
    p.add_argument("--seed", type=int, default=0, help="random seed of the noise and texture (default: 0)")
    p.add_argument(
        "--transfer-syntax",
        default="jpegls_lossless",
        choices=["explicit_le", "implicit_le", "explicit_be", "rle", "jpegls_lossless", "j2k_lossless"],
        help="DICOM encoding of the pixel data (default: jpegls_lossless, as the bundled sample; rle is 1.5x larger)",
    )
    p.set_defaults(func=cmd_phantom)

    p = command(
        "batch",
        help="run a job over many scans, on local worker processes or a Dask cluster",
        description="Run the chosen job on every SCAN into OUT/<scan name>/ (the same outputs as the "
        "single command). A scan that fails is recorded with its one-line reason and never stops the "
        "others; OUT/batch.json lists every case; the exit status is 1 when any failed.",
    )
    p.add_argument("scans", nargs="+", metavar="SCAN", help=SCAN_HELP + "; one per case")
    p.add_argument("-o", "--output", required=True, help="output folder: one subfolder per scan and batch.json")
    p.add_argument(
        "--job",
        default="model",
        choices=["model", "scaffold", "guide", "bone", "run"],
        help="the job to run on each scan, with its default options (default: model)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="local worker processes (default: one per two cores, at most one per 3 GiB of free memory)",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run on an existing Dask distributed cluster instead (its workers must see the scans and OUT at the same paths)",
    )
    p.add_argument(
        "--dicom",
        action="store_true",
        help="also write DICOM Encapsulated STL prints in every case (they carry the patient's identifiers)",
    )
    _add_model_options(p)
    p.set_defaults(func=cmd_batch)

    from .jobs.demo import default_demo_output

    p = command(
        "demo",
        help="run everything on the bundled sample scan",
        description="Run 'osteoprint run' on the bundled synthetic lumbar CT (shipped with the package, "
        "or generated once by the phantom generator) and write the prints, report.html and prints.3mf.",
    )
    p.add_argument(
        "-o",
        "--output",
        default=str(default_demo_output()),
        help="output folder (default: outputs/demo in a checkout, ./osteoprint-demo otherwise)",
    )
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status (:data:`EXIT_CODES`)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (one line)
        if exc.code == 0:
            raise
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    import threading

    handlers = interrupts.install() if threading.current_thread() is threading.main_thread() else {}
    try:
        return run_command(args)
    finally:
        interrupts.restore(handlers)


if __name__ == "__main__":
    sys.exit(main())
