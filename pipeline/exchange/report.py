"""``report.html``: one self-contained page a lab can open from a USB stick.

Everything is inline: pictures are base64 ``data:`` URIs, styles are in the page,
there is no script, and a Content-Security-Policy forbids the browser to load
anything else. Built from the manifest (the single source of the figures) plus the
label picture and one thumbnail per print; no patient identifiers, since the
manifest has none.
"""

from __future__ import annotations

import base64
import json
from html import escape

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
KIND_NAMES = {"anatomical_model": "vertebra model", "scaffold": "scaffold", "guide": "drill guide"}
STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:1.5rem;color:#1d2329;max-width:1200px}
h1{font-size:1.5rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccd;padding-bottom:.2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}td,th{border:1px solid #d5d9de;padding:.25rem .45rem;vertical-align:top;text-align:left}
th{background:#f1f3f5}.num{text-align:right;font-variant-numeric:tabular-nums}.ok{color:#1a7f37;font-weight:600}
.bad{color:#c62828;font-weight:700}.muted{color:#667}.cards{display:flex;flex-wrap:wrap;gap:.8rem}
.card{border:1px solid #d5d9de;border-radius:6px;padding:.5rem;width:270px}.card img{width:256px;height:256px;display:block}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;vertical-align:middle;margin-right:.3rem}
pre{background:#f6f8fa;padding:.6rem;font-size:.78rem;overflow:auto;max-height:30rem}
img.labels{max-width:100%;border:1px solid #ccd}ul{margin:.3rem 0}
"""


def print_order(record: dict):
    """Vertebrae from head to foot (by label value), then scaffolds, then guides."""
    kind = {"anatomical_model": 0, "scaffold": 1, "guide": 2}.get(record["kind"], 3)
    return kind, record.get("label_value") or 0, record["file"]


def _img(png: bytes | None, alt: str, cls: str = "") -> str:
    if not png:
        return f'<p class="muted">({escape(alt)}: no picture)</p>'
    data = base64.b64encode(png).decode("ascii")
    klass = f' class="{cls}"' if cls else ""
    return f'<img{klass} alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _num(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return escape(str(value))


def _flag(ok) -> str:
    if ok is None:
        return '<span class="muted">–</span>'
    return '<span class="ok">yes</span>' if ok else '<span class="bad">NO</span>'


def _table(header: list[str] | None, rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    if header is None:
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tbody>{body}</tbody></table>"
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _process_name(category: str) -> str:
    return category.replace("_", " ")


def _best(record: dict) -> dict:
    return record["recommended_process"][0]


def _card(record: dict, png: bytes | None, colour) -> str:
    lo, hi = record["bbox_mm"]["min"], record["bbox_mm"]["max"]
    size = " × ".join(f"{b - a:.0f}" for a, b in zip(lo, hi))
    best = _best(record)
    process = _process_name(best["category"]) if best["score"] > 0 else "none can print it as designed"
    swatch = '<span class="swatch" style="background:rgb({},{},{})"></span>'.format(*colour)
    return (
        f'<div class="card">{_img(png, record["label"])}'
        f'<div>{swatch}<b>{escape(record["label"])}</b> <span class="muted">{escape(KIND_NAMES.get(record["kind"], record["kind"]))}</span></div>'
        f'<div class="muted">{escape(record["file"])}</div>'
        f"<div>{_num(record['triangles'])} triangles · {record['volume_mm3'] / 1000:.2f} cm³ · {size} mm</div>"
        f"<div>watertight: {_flag(record['watertight'])} · print by <b>{escape(process)}</b></div></div>"
    )


def _quality_rows(prints: list[dict]) -> list[list[str]]:
    rows = []
    for p in prints:
        q = p.get("quality") or {}
        rows.append(
            [
                escape(p["label"]),
                _flag(p["watertight"]),
                _flag(q.get("edge_manifold")),
                _flag(q.get("winding_consistent")),
                _num(q.get("self_intersections")),
                _num(q.get("components")),
                _num(p["triangles"]),
                _num(p["volume_mm3"] / 1000),
                _num(p["surface_area_mm2"] / 100),
                _num(p.get("smallest_feature_mm")),
            ]
        )
    return rows


def _checks(prints: list[dict]) -> str:
    parts = []
    models = [p for p in prints if p["kind"] == "anatomical_model"]
    if models:
        rows = [
            [
                escape(p["label"]),
                _num(p.get("mesh_to_mask_volume_ratio"), 3),
                '<span class="bad">cut by the scan edge: incomplete</span>'
                if p.get("cut_by_scan_edge")
                else '<span class="ok">complete</span>',
            ]
            for p in models
        ]
        parts.append("<h3>Vertebra models</h3>" + _table(["print", "mesh / label volume", "in the scan"], rows, {1}))
    for p in prints:
        if p["kind"] == "scaffold":
            m = p.get("measured") or {}
            design = p.get("design") or {}
            wall, pore = m.get("wall_thickness_mm") or {}, m.get("pore_diameter_mm") or {}
            rows = [
                [
                    "porosity",
                    _num(m.get("porosity"), 3),
                    _num(design.get("porosity_target", design.get("porosity")), 3),
                ],
                ["wall thickness p05, mm", _num(wall.get("p05")), ""],
                ["pore diameter d10, mm", _num(pore.get("d10")), ""],
                ["interconnected pore fraction", _num(m.get("interconnected_pore_fraction"), 3), ""],
                ["closed pores", _num(m.get("closed_pores")), "0"],
            ]
            parts.append(f"<h3>{escape(p['label'])}</h3>" + _table(["measured", "value", "target"], rows, {1, 2}))
        elif p["kind"] == "guide":
            checks = list(p.get("plan_checks") or []) + list(p.get("guide_checks") or [])
            rows = [
                [
                    escape(str(c.get("name", ""))),
                    escape(str(c.get("subject", ""))),
                    f"{_num(c.get('value'), 3)} {escape(str(c.get('unit') or ''))}",
                    f"{escape(str(c.get('comparison', '')))} {_num(c.get('threshold'), 3)}",
                    _flag(c.get("passed")),
                ]
                for c in checks
            ]
            verdict = _flag(p.get("checks_passed"))
            parts.append(
                f"<h3>{escape(p['label'])}: all checks passed {verdict}</h3>"
                + _table(["check", "subject", "value", "threshold", "passed"], rows)
            )
    return "".join(parts) or '<p class="muted">No checks beyond mesh quality.</p>'


def _bone(bone: dict) -> str:
    """The bone-quality block: the screening statement and the per-level densities."""
    s = bone["screening"]
    rows = [
        [
            escape(v["level"]),
            _num(v["trabecular_mean_hu"], 0),
            _num(v["trabecular_median_hu"], 0),
            _num((v.get("oval_roi") or {}).get("mean_hu"), 0),
            escape(str(v.get("category") or "")),
            '<span class="bad">fractured</span>' if v["fractured"] else "",
        ]
        for v in bone["levels"]
    ]
    return (
        f"<p><b>{escape(s.get('category_words') or str(s.get('category')))}</b> · {escape(s['statement'])}</p>"
        + _table(["level", "trabecular mean HU", "median HU", "oval ROI mean HU", "category", ""], rows, {1, 2, 3})
    )


def _processes(prints: list[dict]) -> str:
    out = []
    for p in prints:
        rows = [
            [
                escape(_process_name(r["category"])),
                _num(r["score"]),
                _flag(r.get("feasible", r["score"] > 0)),
                "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in r["reasons"]) + "</ul>",
            ]
            for r in p["recommended_process"]
        ]
        out.append(
            f"<details{' open' if len(prints) <= 3 else ''}><summary><b>{escape(p['label'])}</b>: "
            f"{escape(_process_name(_best(p)['category']))} ({escape(p.get('purpose', ''))})</summary>"
            + _table(["process", "score", "feasible", "reasons"], rows, {1})
            + "</details>"
        )
    return "".join(out)


def report_html(
    manifest: dict, *, label_png: bytes | None, thumbnails: dict, colours: dict, files: dict | None = None
) -> bytes:
    """The report page (UTF-8 bytes).

    Parameters
    ----------
    manifest : dict
        The job's manifest (validated; no identifiers).
    label_png : bytes or None
        ``labels.png`` (sagittal and coronal label check), if the folder has a
        segmentation.
    thumbnails : dict
        Print file -> PNG bytes.
    colours : dict
        Print file -> RGB, as in the 3MF file and the label picture.
    files : dict, optional
        Other outputs to list, name -> description.
    """
    inp = manifest["input"]
    prints = sorted(manifest["prints"], key=print_order)
    seg = manifest.get("segmentation") or {}
    counts = {}
    for p in prints:
        counts[KIND_NAMES.get(p["kind"], p["kind"])] = counts.get(KIND_NAMES.get(p["kind"], p["kind"]), 0) + 1
    warnings = list(inp.get("warnings", [])) + list(manifest.get("warnings", []))
    summary = [
        ["scan", f"series {escape(inp['series_hash'])} · {escape(inp.get('description') or inp['modality'])}"],
        [
            "grid",
            f"{' × '.join(str(n) for n in inp['shape'])} voxels of {' × '.join(f'{s:g}' for s in inp['spacing_mm'])} mm, axes {escape(inp['orientation'])}",
        ],
        ["prints", escape(", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items()) or "none")],
        ["all watertight", _flag(all(p["watertight"] for p in prints) if prints else None)],
        [
            "levels",
            escape(seg.get("naming_evidence", "no segmentation"))
            + ("" if seg.get("levels_named", True) else " (<b>not named</b>)"),
        ],
        ["warnings", str(len(warnings))],
    ]
    sections = [
        f'<h1>osteoprint report</h1><p class="muted">osteoprint {escape(manifest["tool"]["version"])} · '
        f"units {escape(manifest['units'])} · coordinates DICOM {escape(manifest['coordinate_system'])} (patient left, posterior, head)</p>",
        _table(None, summary),
        "<h2>Vertebra labels</h2>"
        + (
            _img(label_png, "sagittal and coronal label check", "labels")
            + '<p class="muted">Check that every vertebra is outlined and named right: '
            "head up; sagittal with the front on the left, coronal with the patient's right on the left.</p>"
            if label_png
            else '<p class="muted">No segmentation in this folder.</p>'
        ),
        '<h2>Prints</h2><div class="cards">'
        + "".join(_card(p, thumbnails.get(p["file"]), colours.get(p["file"], (200, 190, 170))) for p in prints)
        + "</div>"
        '<p class="muted">Pictures: seen from the patient\'s front left, head up.</p>',
        "<h2>Measured quality</h2>"
        + _table(
            [
                "print",
                "watertight",
                "edge manifold",
                "consistent winding",
                "self-intersections",
                "parts",
                "triangles",
                "volume cm³",
                "area cm²",
                "thinnest feature mm",
            ],
            _quality_rows(prints),
            {4, 5, 6, 7, 8, 9},
        ),
        "<h2>Checks</h2>" + _checks(prints),
        *(["<h2>Bone quality</h2>" + _bone(manifest["bone_quality"])] if manifest.get("bone_quality") else []),
        "<h2>Recommended printing process</h2>" + _processes(prints),
        "<h2>Warnings</h2>"
        + (
            "<ul>" + "".join(f"<li>{escape(w)}</li>" for w in warnings) + "</ul>"
            if warnings
            else '<p class="muted">None.</p>'
        ),
        "<h2>Parameters</h2><pre>" + escape(json.dumps(manifest.get("parameters", {}), indent=2)) + "</pre>",
    ]
    if files:
        sections.append(
            "<h2>Files</h2>" + _table(["file", "what it is"], [[escape(k), escape(v)] for k, v in files.items()])
        )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>osteoprint report {escape(inp['series_hash'])}</title><style>{STYLE}</style></head><body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    return page.encode("utf-8")
