"""How a print gets printed: which process suits it, and its manifest record.

:func:`recommend_process` ranks the process categories for one print;
:func:`print_record` is the manifest entry a lab checks before printing (measured
size, quality and that ranking).

The five categories are the ISO/ASTM 52900 process families used by the review this
project follows (its Table 5): vat photopolymerization, material jetting, binder
jetting, powder bed fusion and material extrusion. All rules live in the two tables
below so that a new print kind (scaffold, guide, ...) extends data, not code:

* ``PROCESSES``: what each category can make (smallest printable wall and pore per
  material class), with the source of each figure.
* ``SUITABILITY``: for a (print kind, purpose or material) pair, how well each
  category serves it (0–1) and why, in words a 3D-printing lab would use.

A category whose minimum feature exceeds the print's measured smallest feature (or
whose minimum pore exceeds the smallest pore of a scaffold) is rejected with score 0
and the reason; everything else keeps its suitability score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .scaffold.materials import get_material

if TYPE_CHECKING:  # annotations only: the table itself needs no mesh code
    import trimesh

    from .mesh import MeshQuality

CATEGORIES = (
    "vat_photopolymerization",
    "material_jetting",
    "binder_jetting",
    "powder_bed_fusion",
    "material_extrusion",
)


@dataclass(frozen=True)
class Process:
    """Capabilities of one process category (lengths in mm)."""

    category: str
    examples: str
    min_feature_mm: dict  # material class -> smallest reliably printed wall/strut
    min_pore_mm: dict  # material class -> smallest open pore that can be cleared
    source: str


_WORKING_MINIMA = (
    "working minima used in osteoprint's scaffold specification (issue 3): vat "
    "photopolymerization ~0.15-0.2 mm, material jetting ~0.25-0.3 mm, binder jetting "
    "~0.5 mm wall and pores >= 0.5 mm for powder removal, laser powder bed fusion "
    "~0.2-0.3 mm, material extrusion ~0.3 mm"
)

PROCESSES: dict[str, Process] = {
    "vat_photopolymerization": Process(
        "vat_photopolymerization",
        "SLA, DLP, LCD; lithography-based ceramic manufacturing",
        {"polymer": 0.2, "ceramic": 0.2},
        {"polymer": 0.2, "ceramic": 0.2},
        _WORKING_MINIMA,
    ),
    "material_jetting": Process(
        "material_jetting",
        "PolyJet, MultiJet (multi-colour, multi-hardness photopolymers)",
        {"polymer": 0.3},
        # Gel-like support fills pores and must be washed out.
        {"polymer": 0.5},
        _WORKING_MINIMA,
    ),
    "binder_jetting": Process(
        "binder_jetting",
        "full-colour gypsum, sintered ceramic or metal powder",
        {"polymer": 0.5, "ceramic": 0.5, "metal": 0.5, "gypsum": 0.5},
        {"polymer": 0.5, "ceramic": 0.5, "metal": 0.5, "gypsum": 0.5},
        _WORKING_MINIMA,
    ),
    "powder_bed_fusion": Process(
        "powder_bed_fusion",
        "laser/electron-beam melting of Ti-6Al-4V or tantalum; SLS/MJF of PA12",
        # Polymer SLS walls below ~0.7 mm break on depowdering (EOS/HP design guides).
        {"metal": 0.3, "polymer": 0.7},
        {"metal": 0.3, "polymer": 0.5},
        _WORKING_MINIMA + "; PA12 SLS/MJF minimum wall ~0.7 mm (EOS, HP MJF design guides)",
    ),
    "material_extrusion": Process(
        "material_extrusion",
        "FDM/FFF filament, melt electrowriting, robocasting of ceramic paste",
        {"polymer": 0.3, "ceramic": 0.3},
        {"polymer": 0.3, "ceramic": 0.3},
        _WORKING_MINIMA,
    ),
}

# (kind, purpose or material) -> (material class, {category: (score 0-1, reason)})
SUITABILITY: dict[tuple[str, str], tuple[str, dict[str, tuple[float, str]]]] = {
    ("anatomical_model", "planning"): (
        "polymer",
        {
            "vat_photopolymerization": (
                0.9,
                "highest accuracy and smoothest surface for a surgical planning model at low to moderate cost",
            ),
            "material_jetting": (
                0.8,
                "very accurate; multi-material if the team wants cortical and cancellous bone told apart, but costly",
            ),
            "powder_bed_fusion": (
                0.7,
                "robust PA12 model with no support marks; can be steam-sterilised for use in theatre",
            ),
            "material_extrusion": (0.6, "cheapest and fastest; layer lines and supports blur fine bony detail"),
            "binder_jetting": (0.5, "full colour possible, but gypsum models are brittle and need infiltration"),
        },
    ),
    ("anatomical_model", "teaching"): (
        "polymer",
        {
            "material_jetting": (
                0.95,
                "multi-colour and multi-hardness in one print: cortex, cancellous bone and pathology distinguishable by touch and colour",
            ),
            "binder_jetting": (
                0.85,
                "full-colour models at moderate cost; brittle, suited to display rather than drilling",
            ),
            "vat_photopolymerization": (0.6, "accurate single-colour models; colour only by painting"),
            "material_extrusion": (0.55, "cheap; dual extrusion gives two colours at most"),
            "powder_bed_fusion": (0.4, "single colour, no hardness variation"),
        },
    ),
    ("anatomical_model", "low_cost"): (
        "polymer",
        {
            "material_extrusion": (
                0.95,
                "lowest cost per model on desktop FDM printers; adequate accuracy for counselling and rehearsal",
            ),
            "vat_photopolymerization": (
                0.75,
                "desktop resin printers are inexpensive and more accurate; resin handling needed",
            ),
            "powder_bed_fusion": (0.45, "service-bureau cost"),
            "binder_jetting": (0.35, "service-bureau cost, fragile parts"),
            "material_jetting": (0.3, "most expensive machines and materials"),
        },
    ),
}

_METAL_SCAFFOLD = {
    "powder_bed_fusion": (
        0.95,
        "laser or electron-beam powder bed fusion is the established route to porous titanium and tantalum implants (clinically used porous Ti cages and cups)",
    ),
    "binder_jetting": (
        0.45,
        "metal binder jetting with sintering can make porous titanium, but shrinkage (~15-20 %) and residual porosity make fine lattices less predictable",
    ),
    "material_extrusion": (0.1, "metal-filled filament with debinding and sintering is experimental for implants"),
}
_CERAMIC_SCAFFOLD = {
    "vat_photopolymerization": (
        0.9,
        "lithography-based ceramic manufacturing gives the finest calcium-phosphate lattices (TPMS included) with dense struts after sintering",
    ),
    "binder_jetting": (
        0.8,
        "binder jetting of calcium-phosphate powder needs no supports and leaves microporosity that aids resorption; pores must stay >= 0.5 mm for depowdering",
    ),
    "material_extrusion": (
        0.6,
        "robocasting (direct ink writing) of calcium-phosphate paste suits strut lattices; overhanging TPMS walls need support",
    ),
    "powder_bed_fusion": (0.15, "laser sintering of calcium phosphates cracks from thermal shock"),
}
_POLYMER_SCAFFOLD = {
    "material_extrusion": (
        0.95,
        "melt extrusion is the standard route to resorbable polymer scaffolds (low melt temperature, medical-grade filament)",
    ),
    "powder_bed_fusion": (0.6, "selective laser sintering of polymer powder makes porous scaffolds without supports"),
    "vat_photopolymerization": (
        0.35,
        "photocurable versions of the polymer (e.g. PCL methacrylate) are still experimental",
    ),
    "material_jetting": (0.1, "no implant-grade jetting material for this polymer"),
    "binder_jetting": (0.05, "binder-jetted polymer parts are weak and need infiltration"),
}
_SCAFFOLD_MATERIAL_CLASS = {
    "ti6al4v": "metal",
    "tantalum": "metal",
    "hydroxyapatite": "ceramic",
    "beta-tcp": "ceramic",
    "pcl": "polymer",
    "pla": "polymer",
    "peek": "polymer",
}
for _material, _cls in _SCAFFOLD_MATERIAL_CLASS.items():
    SUITABILITY[("scaffold", _material)] = (
        _cls,
        {"metal": _METAL_SCAFFOLD, "ceramic": _CERAMIC_SCAFFOLD, "polymer": _POLYMER_SCAFFOLD}[_cls],
    )
SUITABILITY[("scaffold", "peek")] = (
    "polymer",
    {
        **_POLYMER_SCAFFOLD,
        "powder_bed_fusion": (
            0.85,
            "PEEK laser sintering (high-temperature SLS) is used for implant-grade porous PEEK",
        ),
        "material_extrusion": (
            0.75,
            "high-temperature extrusion of PEEK works but needs a heated chamber for strength",
        ),
    },
)

SUITABILITY[("guide", "surgical_guide")] = (
    "polymer",
    {
        "vat_photopolymerization": (
            0.95,
            "surgical-guide resins (biocompatible, ISO 10993) print sleeves to ~0.05-0.1 mm and tolerate steam (134 °C) or H2O2 plasma sterilisation per the resin's datasheet",
        ),
        "powder_bed_fusion": (
            0.85,
            "PA12 guides by SLS/MJF are tough, need no supports and are routinely steam sterilised; slightly rougher bores",
        ),
        "material_jetting": (
            0.5,
            "biocompatible jetting photopolymers are accurate but not steam-sterilisable (H2O2 or ethylene oxide only)",
        ),
        "binder_jetting": (0.05, "binder-jetted parts are porous and brittle: not for sterile surgical use"),
        "material_extrusion": (
            0.05,
            "rejected for steam sterilisation: PLA/PETG filament prints deform at 121-134 °C, losing the sleeve alignment",
        ),
    },
)


def purposes(kind: str) -> list[str]:
    """Purposes or materials that have rules for print ``kind``."""
    return [p for k, p in SUITABILITY if k == kind]


def min_feature_mm(process: str, material_class: str) -> float:
    """Smallest wall or strut ``process`` prints reliably in ``material_class``, mm
    (0 when the table has no figure for that material)."""
    return float(PROCESSES[process].min_feature_mm.get(material_class, 0.0))


def recommend_process(
    kind: str,
    purpose: str,
    *,
    smallest_feature_mm: float,
    smallest_pore_mm: float | None = None,
    extra_reasons: dict[str, list[str]] | None = None,
) -> list[dict]:
    """Rank the five process categories for one print, best first.

    Parameters
    ----------
    kind : str
        Print kind: ``"anatomical_model"``, ``"scaffold"``, ``"guide"``.
    purpose : str
        Intended use or material with rules in ``SUITABILITY`` for this kind.
    smallest_feature_mm : float
        Measured thinnest wall/strut of the print, mm.
    smallest_pore_mm : float, optional
        Measured smallest pore (scaffolds), mm.
    extra_reasons : dict, optional
        Additional reasons per category from the caller (e.g. sterilisation notes).

    Returns
    -------
    list of dict
        ``{"category", "score", "feasible", "reasons"}`` for all five categories,
        ranked by score (ties keep the table's order).
    """
    key = (kind, purpose)
    if key not in SUITABILITY:
        known = ", ".join(purposes(kind)) or "none"
        raise ValueError(f"no printing rules for {kind} with purpose/material {purpose!r} (known: {known})")
    material_class, table = SUITABILITY[key]
    ranked = []
    for category in CATEGORIES:
        score, why = table.get(category, (0.0, f"not a process for {purpose}"))
        process = PROCESSES[category]
        reasons = [why]
        feasible = score > 0
        min_feature = process.min_feature_mm.get(material_class)
        if min_feature is None:
            feasible = False
            reasons.append(f"{category.replace('_', ' ')} does not print {material_class} material")
        elif smallest_feature_mm < min_feature:
            feasible = False
            reasons.append(
                f"rejected: thinnest feature {smallest_feature_mm:.2f} mm is below this process's "
                f"minimum {min_feature:.2f} mm"
            )
        else:
            reasons.append(f"thinnest feature {smallest_feature_mm:.2f} mm >= process minimum {min_feature:.2f} mm")
        min_pore = process.min_pore_mm.get(material_class)
        if smallest_pore_mm is not None and min_pore is not None:
            if smallest_pore_mm < min_pore:
                feasible = False
                reasons.append(
                    f"rejected: smallest pore {smallest_pore_mm:.2f} mm is below the {min_pore:.2f} mm "
                    "needed to clear powder, resin or support"
                )
            else:
                reasons.append(f"smallest pore {smallest_pore_mm:.2f} mm >= {min_pore:.2f} mm needed to clear it")
        reasons.extend((extra_reasons or {}).get(category, []))
        ranked.append(
            {
                "category": category,
                "score": round(float(score) if feasible else 0.0, 3),
                "feasible": bool(feasible),
                "reasons": reasons,
            }
        )
    order = {c: i for i, c in enumerate(CATEGORIES)}
    ranked.sort(key=lambda r: (-r["score"], order[r["category"]]))
    return ranked


def print_record(
    mesh: trimesh.Trimesh,
    *,
    file: str,
    kind: str,
    label: str,
    sha256: str,
    quality: MeshQuality,
    purpose: str,
    smallest_feature_mm: float,
    smallest_pore_mm: float | None = None,
    extra: dict | None = None,
) -> dict:
    """Manifest entry for one exported print.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        The exported mesh, vertices in LPS mm.
    file : str
        Path of the STL relative to the manifest's folder.
    kind : str
        ``"anatomical_model"``, ``"scaffold"`` or ``"guide"``.
    label : str
        What the print is, e.g. ``"L1"`` or ``"L1 defect scaffold"``.
    sha256 : str
        SHA-256 of the STL bytes.
    quality : MeshQuality
        From :func:`pipeline.mesh.check_mesh`.
    purpose : str
        Intended use or material, the key of the process rules.
    smallest_feature_mm, smallest_pore_mm : float
        Measured, mm; decide which processes can print it.
    extra : dict, optional
        Kind-specific measured figures merged into the record.
    """
    lo, hi = np.asarray(mesh.bounds, dtype=float)
    record = {
        "file": file,
        "kind": kind,
        "label": label,
        "units": "mm",
        "coordinate_system": "LPS",
        "sha256": sha256,
        "triangles": int(len(mesh.faces)),
        "volume_mm3": round(float(mesh.volume), 3),
        "surface_area_mm2": round(float(mesh.area), 3),
        "bbox_mm": {"min": [round(float(v), 4) for v in lo], "max": [round(float(v), 4) for v in hi]},
        "watertight": bool(quality.watertight),
        "quality": quality.as_dict(),
        "smallest_feature_mm": round(float(smallest_feature_mm), 3),
        "purpose": purpose,
        "recommended_process": recommend_process(
            kind, purpose, smallest_feature_mm=smallest_feature_mm, smallest_pore_mm=smallest_pore_mm
        ),
    }
    if extra:
        record.update(extra)
    return record


#: The bound is this fraction of the smallest printable feature (wall or pore).
FEATURE_FRACTION = 0.25


@dataclass(frozen=True)
class DeviationBound:
    """How far a scaffold's mesh may deviate from its design.

    Attributes
    ----------
    bound_mm : float
        Largest allowed chord deviation, mm.
    process : str
        Printing process category the bound derives from (best suited to the material).
    smallest_printable_mm : float
        That process's smallest printable wall or pore for the material class, mm.
    rule : str
        The rule in words, for the manifest.
    """

    bound_mm: float
    process: str
    smallest_printable_mm: float
    rule: str

    def describe(self) -> dict:
        return {
            "bound_mm": self.bound_mm,
            "process": self.process,
            "smallest_printable_mm": self.smallest_printable_mm,
            "rule": self.rule,
        }


def deviation_bound(material: str, fraction: float = FEATURE_FRACTION) -> DeviationBound:
    """Chord-deviation bound (mm) for a scaffold of ``material``.

    The process is the best-scored one of :data:`SUITABILITY` for a
    scaffold of this material; its smallest printable feature is the smaller of its
    minimum wall and minimum pore for the material's class.
    """
    mat = get_material(material)
    cls, scores = SUITABILITY[("scaffold", mat.name)]
    best = max(scores, key=lambda c: scores[c][0])
    proc = PROCESSES[best]
    smallest = min(v for v in (proc.min_feature_mm.get(cls), proc.min_pore_mm.get(cls)) if v)
    return DeviationBound(
        bound_mm=fraction * smallest,
        process=best,
        smallest_printable_mm=smallest,
        rule=f"{fraction:g} x the smallest printable wall or pore of the process best suited "
        f"to {mat.label} ({best}: {smallest:g} mm)",
    )
