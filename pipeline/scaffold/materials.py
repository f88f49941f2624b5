"""Materials and design targets for bone scaffolds, as data the manifest can quote.

Every number carries its source. Moduli are for the dense (fully solid) material, the
``Es`` of the Gibson-Ashby scaling; printed parts differ with process and build
direction, so treat them as nominal and prefer the supplier's datasheet when known.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline.errors import InputError


@dataclass(frozen=True)
class Material:
    """A printable implant material.

    Attributes
    ----------
    name : str
        Key used on the command line, e.g. ``"ti6al4v"``.
    label : str
        Human name.
    modulus_gpa : float
        Nominal Young's modulus of the dense material, GPa.
    modulus_range_gpa : tuple of 2 floats
        Range reported in the literature, GPa.
    resorbable : bool
    processes : tuple of str
        Usual additive processes.
    source : str
        Where the modulus comes from.
    """

    name: str
    label: str
    modulus_gpa: float
    modulus_range_gpa: tuple[float, float]
    resorbable: bool
    processes: tuple[str, ...]
    source: str

    def describe(self) -> dict:
        d = asdict(self)
        d["modulus_range_gpa"] = list(self.modulus_range_gpa)
        d["processes"] = list(self.processes)
        return d


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material(
            "ti6al4v",
            "Ti-6Al-4V (ELI)",
            110.0,
            (105.0, 120.0),
            False,
            ("LPBF", "EBM"),
            "Niinomi M. Mechanical properties of biomedical titanium alloys. Mater Sci Eng A 1998;243:231-236",
        ),
        Material(
            "tantalum",
            "Tantalum",
            185.0,
            (180.0, 190.0),
            False,
            ("LPBF",),
            "Balla VK et al. Porous tantalum structures for bone implants: fabrication, "
            "mechanical and in vitro biological properties. Acta Biomater 2010;6:3349-3359",
        ),
        Material(
            "hydroxyapatite",
            "Hydroxyapatite (sintered)",
            100.0,
            (80.0, 110.0),
            False,
            ("vat photopolymerisation + sintering", "binder jetting"),
            "Hench LL. Bioceramics: from concept to clinic. J Am Ceram Soc 1991;74:1487-1510",
        ),
        Material(
            "beta-tcp",
            "beta-tricalcium phosphate (sintered)",
            60.0,
            (33.0, 88.0),
            True,
            ("vat photopolymerisation + sintering", "robocasting"),
            "dense beta-TCP, materials-database values (e.g. Ansys Granta EduPack 55-88 GPa; "
            "33 GPa also reported); wide spread with sintering density",
        ),
        Material(
            "pcl",
            "Polycaprolactone",
            0.35,
            (0.2, 0.44),
            True,
            ("extrusion", "SLS"),
            "Eshraghi S, Das S. Mechanical and microstructural properties of "
            "polycaprolactone scaffolds ... by selective laser sintering. "
            "Acta Biomater 2010;6:2467-2476",
        ),
        Material(
            "pla",
            "Polylactic acid",
            3.5,
            (3.0, 4.0),
            True,
            ("extrusion",),
            "Farah S, Anderson DG, Langer R. Physical and mechanical properties of PLA, and "
            "their functions in widespread applications. Adv Drug Deliv Rev 2016;107:367-392",
        ),
        Material(
            "peek",
            "Polyether ether ketone",
            3.6,
            (3.0, 4.0),
            False,
            ("extrusion", "SLS"),
            "Kurtz SM, Devine JN. PEEK biomaterials in trauma, orthopedic, and spinal "
            "implants. Biomaterials 2007;28:4845-4869",
        ),
    )
}


def get_material(name: str) -> Material:
    """Material by key (case-insensitive); ``InputError`` if unknown."""
    key = str(name).strip().lower().replace("_", "-").replace(" ", "")
    key = {
        "ti64": "ti6al4v",
        "ti-6al-4v": "ti6al4v",
        "ta": "tantalum",
        "ha": "hydroxyapatite",
        "tcp": "beta-tcp",
        "b-tcp": "beta-tcp",
        "betatcp": "beta-tcp",
    }.get(key, key)
    if key not in MATERIALS:
        raise InputError(None, f"unknown material {name!r}; choose one of {', '.join(MATERIALS)}")
    return MATERIALS[key]


# Design targets, each with its source; the manifest and the recommendation table
# quote these rather than restating numbers.
DESIGN_TARGETS: dict[str, dict] = {
    "porosity_band": {
        "value": [0.60, 0.80],
        "unit": "fraction",
        "source": "Karageorgiou V, Kaplan D. Porosity of 3D biomaterial scaffolds and "
        "osteogenesis. Biomaterials 2005;26:5474-5491",
    },
    "pore_size_min": {
        "value": 0.300,
        "unit": "mm",
        "source": "Karageorgiou & Kaplan 2005 (pores > 300 um recommended for new bone formation and capillaries)",
    },
    "cancellous_pore_size": {
        "value": [0.300, 0.600],
        "unit": "mm",
        "source": "Karageorgiou & Kaplan 2005 (trabecular bone pore range quoted there)",
    },
    "gyroid_ti_cell": {
        "value": [1.0, 2.5],
        "unit": "mm",
        "source": "osteoprint default for LPBF Ti-6Al-4V gyroid scaffolds: cells in this "
        "range give 0.3-1 mm pores at 60-80 % porosity with walls >= 0.2 mm "
        "(checked by measure_scaffold); typical of published LPBF TPMS scaffolds",
    },
    "vertebral_cancellous_modulus": {
        "value": [0.1, 1.0],
        "unit": "GPa",
        "source": "human vertebral trabecular bone, apparent modulus; e.g. Morgan EF, "
        "Bayraktar HH, Keaveny TM. Trabecular bone modulus-density relationships "
        "depend on anatomic site. J Biomech 2003;36:897-904",
    },
}

GIBSON_ASHBY = {
    "C": 1.0,
    "n": 2.0,
    "form": "E/Es = C * (relative density)^n",
    "source": "Gibson LJ, Ashby MF. Cellular Solids: Structure and Properties, 2nd ed. "
    "Cambridge University Press 1997 (open cells, bending-dominated)",
    "note": "first-order estimate; stretching-dominated lattices (octet, sheet TPMS) are "
    "stiffer than this, skeletal TPMS and struts close to it",
}
