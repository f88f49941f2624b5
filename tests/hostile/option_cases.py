"""Option cases of the hostile corpus: impossible values, refused before any work
(a few, such as a level absent from the scan, only after segmenting; still nothing
written)."""

from __future__ import annotations

from .cases import Case, Inputs, junk_file, on_small


def _option(name, cls_commands, expect, *options):
    return Case(name, "options", on_small(*options), cls_commands, 2, expect, True)


MR = ("model", "run")
SR = ("scaffold", "run")
OPTION_CASES = [
    _option("hu-min-above-max", MR, "--hu-min 500: is not below --hu-max 200", "--hu-min", "500", "--hu-max", "200"),
    _option("hu-min-nan", MR, "--hu-min nan: is not a finite number", "--hu-min", "nan"),
    _option("hu-min-soft-tissue", MR, "--hu-min 50: must be at least 100", "--hu-min", "50"),
    _option("hu-max-inf", MR, "--hu-max inf: is not a finite", "--hu-max", "inf"),
    _option("hu-min-above-preset", MR, "upper limit", "--hu-min", "5000"),
    _option("decimate-1.5", MR, "--decimate 1.5", "--decimate", "1.5"),
    _option("decimate-negative", MR, "--decimate -0.1", "--decimate", "-0.1"),
    _option("levels-empty-item", MR, "--levels L1,,L2", "--levels", "L1,,L2"),
    _option("levels-unknown", MR + ("guide",), "X9 is not a vertebra name", "--levels", "X9"),
    _option("porosity-1.5", SR, "--porosity 1.5: must be below 1", "--porosity", "1.5"),
    _option("porosity-0", SR, "--porosity 0", "--porosity", "0"),
    _option("porosity-nan", SR, "--porosity nan", "--porosity", "nan"),
    _option("porosity-text", SR, "invalid float value: 'abc'", "--porosity", "abc"),
    _option("cell-0", SR, "--cell 0", "--cell", "0"),
    _option("cell-huge", SR, "--cell 1e+09", "--cell", "1e9"),
    _option("voxel-tiny", SR, "--voxel 1e-05", "--voxel", "0.00001"),
    _option("grade-bogus", SR, "--grade bogus", "--grade", "bogus"),
    _option("grade-out-of-range", SR, "graded porosity must be between 0 and 1", "--grade", "boundary:0.6,1.4"),
    _option("lattice-unknown", SR, "--lattice nosuch: unknown lattice", "--lattice", "nosuch"),
    _option("material-unknown", SR, "invalid choice: 'gold'", "--material", "gold"),
    _option("defect-bad-sphere", SR, "--defect sphere:1,2,3", "--defect", "sphere:1,2,3"),
    _option("defect-negative-radius", SR, "radius must be > 0", "--defect", "sphere:0,0,0,-5"),
    _option("defect-missing-mask", SR, "no such mask file", "--defect", "/nowhere/mask.nii.gz"),
    _option("level-bad", SR, "--level Q1", "--level", "Q1"),
    _option("rim-negative", SR, "--rim -1", "--rim", "-1"),
    _option("clearance-5", ("guide",), "--clearance 5", "--clearance", "5"),
    _option("drill-0", ("guide", "run", "check-guide"), "--drill 0", "--drill", "0"),
    _option("sleeve-1000", ("guide", "run"), "--sleeve-length 1000", "--sleeve-length", "1000"),
    _option("plan-missing", ("guide", "run"), "/nowhere/plan.json: no such file", "--plan", "/nowhere/plan.json"),
    _option("guide-levels-semicolon", ("run",), "--guide-levels L1;L2", "--guide-levels", "L1;L2"),
    _option("guide-levels-bad", ("run",), "L9 is not a vertebra name", "--guide-levels", "L9"),
    _option("guide-clearance-negative", ("run",), "--guide-clearance -1", "--guide-clearance", "-1"),
    _option("guide-process-unknown", ("guide", "run", "check-guide"), "invalid choice", "--guide-process", "glue"),
    _option("seed-negative", ("phantom",), "--seed -1", "--seed", "-1"),
    _option(
        "unknown-flag",
        ("model", "bone", "run", "phantom", "demo"),
        "unrecognized arguments: --frobnicate",
        "--frobnicate",
    ),
    Case(
        "plan-not-json",
        "options",
        lambda d, b: Inputs(str(b.small), ("--plan", junk_file(d, "p.json", b"{not json"))),
        ("guide", "run"),
        2,
        "not a JSON file",
        True,
    ),
    Case(
        "guide-not-stl",
        "options",
        lambda d, b: Inputs(str(b.small), ("--guide", junk_file(d, "g.stl", b"solid x\n"))),
        ("check-guide",),
        2,
        "not a readable STL",
        True,
    ),
    # A level that is named correctly but absent from the scan: found after segmenting,
    # still nothing written.
    Case("guide-level-absent", "options", on_small("--guide-levels", "T3"), ("run",), 2, "T3 not in this scan"),
]
