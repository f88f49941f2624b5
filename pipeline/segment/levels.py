"""Naming vertebral levels from the landmarks the scan shows, or not at all.

A wrong level name is the most dangerous thing osteoprint can print (wrong-level
surgery is a known never-event), so a name needs evidence and the evidence is
cross-checked:

* **S1**: the highest vertebra joined to both ilia (sacroiliac joints);
* **T12**: the lowest vertebra carrying ribs, with a complete rib-free vertebra
  below it in the scan;
* **T1**: the highest vertebra carrying ribs on both sides, with a complete rib-free
  vertebra (C7) above it in the scan.

Each anchor implies every name. When two or more anchors are seen they must agree,
and so must the counts between them (five lumbar vertebrae between T12 and S1,
twelve rib-bearing vertebrae from T1 to T12); then the names are *certain*. One
anchor alone names the vertebrae, marked uncertain: transitional anatomy (a sixth
lumbar vertebra, 11 or 13 rib pairs; together ~10-15 % of people) cannot be ruled
out. Anchors that disagree, or none, leave the vertebrae unnamed (V1..Vn), with
the reason.

Label values follow the VerSe challenge convention so that label maps compare
directly with public reference segmentations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .landmarks import Landmarks

#: VerSe label values: C1-C7 = 1-7, T1-T12 = 8-19, L1-L6 = 20-25, S1 = 26, T13 = 28.
VERSE_LABELS: dict[str, int] = {
    **{f"C{i}": i for i in range(1, 8)},
    **{f"T{i}": 7 + i for i in range(1, 13)},
    **{f"L{i}": 19 + i for i in range(1, 7)},
    "S1": 26,
    "T13": 28,
}
_ORDER = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)] + ["S1"]
#: Unnamed vertebrae V1..Vn get 100 + i.
UNNAMED_BASE = 100


@dataclass(frozen=True)
class LevelNames:
    """Names of n vertebrae (superior first) and why.

    Attributes
    ----------
    names : list of str
        Level names, or V1..Vn.
    named : bool
    certain : bool
        Two or more landmarks agree.
    evidence : str
        The anchors the names follow, in words.
    anchors : dict
        Anchor name ("S1", "T12", "T1") -> vertebra index (1-based) it was seen at.
    per_vertebra : list of dict
        For each vertebra: its ribs and pelvis contacts (sides), the anchor it is.
    warnings : list of str
    """

    names: list
    named: bool
    certain: bool
    evidence: str
    anchors: dict
    per_vertebra: list
    warnings: list


def name_levels(n: int, marks: Landmarks, complete: list[bool], heights_mm: list[float] | None = None) -> LevelNames:
    """Names for ``n`` vertebrae (superior first) from their landmarks.

    ``complete[i]`` says whether vertebra i+1 lies wholly in the scan (both its
    discs seen): only a complete vertebra can testify that it carries no rib.
    ``heights_mm`` (disc to disc): counting stops at a vertebra far taller or
    shorter than its neighbours outside the stretch the anchors vouch for (two
    vertebrae taken as one, or one split, would shift every name beyond it).
    """
    warnings: list[str] = []
    ribbed = [bool(marks.rib_sides(k)) for k in range(1, n + 1)]
    anchors: dict[str, int] = {}
    # S1: highest vertebra joined to the pelvis on both sides, at the foot of the spine.
    on_pelvis = [k for k in range(max(n - 1, 1), n + 1) if len(marks.pelvis_sides(k)) == 2]
    if on_pelvis:
        anchors["S1"] = on_pelvis[0]
    # T12: lowest rib-bearing vertebra with a complete rib-free vertebra below it.
    rib_levels = [k for k in range(1, n + 1) if ribbed[k - 1]]
    if rib_levels:
        lowest = rib_levels[-1]
        if lowest < n and complete[lowest]:
            anchors["T12"] = lowest
        highest = rib_levels[0]
        if highest > 1 and complete[highest - 2] and len(marks.rib_sides(highest)) == 2:
            anchors["T1"] = highest
    per = [
        {
            "ribs": sorted(marks.rib_sides(k)),
            "pelvis": sorted(marks.pelvis_sides(k)),
            "anchor": next((a for a, i in anchors.items() if i == k), None),
        }
        for k in range(1, n + 1)
    ]
    if not anchors:
        warnings.append(
            "levels not named: none of the landmarks that fix a level (the first or lowest ribs with a "
            "rib-free vertebra beside them, the sacrum joined to both ilia) is in the scan; vertebrae are "
            "called V1..Vn from head to foot"
        )
        return LevelNames(_unnamed(n), False, False, "no landmark", anchors, per, warnings)
    implied = {a: _count_from(n, k, a) for a, k in anchors.items()}
    first = next(iter(implied.values()))
    if any(names != first for names in implied.values()):
        said = "; ".join(f"{a} at vertebra {k} (top = {implied[a][0]})" for a, k in anchors.items())
        warnings.append(
            f"levels not named: the landmarks disagree ({said}): transitional anatomy (a sixth lumbar "
            "vertebra, 11 or 13 rib pairs) or a missed vertebra; vertebrae are called V1..Vn from head to foot"
        )
        return LevelNames(_unnamed(n), False, False, "landmarks disagree", anchors, per, warnings)
    if "T1" in anchors and "T12" in anchors:
        count = sum(ribbed[anchors["T1"] - 1 : anchors["T12"]])
        if count != 12:
            warnings.append(
                f"levels not named: {count} rib-bearing vertebrae from the first to the lowest ribs "
                "(12 expected); vertebrae are called V1..Vn"
            )
            return LevelNames(_unnamed(n), False, False, "rib count not 12", anchors, per, warnings)
    words = {
        "S1": "the sacrum (S1, joined to both ilia)",
        "T12": "the lowest ribs (T12)",
        "T1": "the first ribs (T1, a rib-free C7 above)",
    }
    evidence = " and ".join(words[a] for a in anchors)
    certain = len(anchors) >= 2
    if certain:
        evidence = f"named from {evidence}, which agree"
    else:
        evidence = f"named from {evidence} alone"
        warnings.append(
            f"levels named from one landmark ({words[next(iter(anchors))]}): a transitional spine "
            "(six lumbar vertebrae, 11 or 13 rib pairs) would shift every name; check them on labels.png"
        )
    names = list(first)
    if heights_mm is not None:
        lo, hi = min(anchors.values()), max(anchors.values())
        odd = irregular(heights_mm)
        above = [k for k in odd if k < lo]
        below = [k for k in odd if k > hi]
        stop_top = max(above) if above else 0
        stop_bottom = min(below) if below else n + 1
        if above or below:
            cut = [names[k - 1] for k in range(1, n + 1) if k <= stop_top or k >= stop_bottom]
            warnings.append(
                f"not named: {', '.join(cut)}: counting from the landmarks would cross a vertebra far taller "
                "or shorter than its neighbours (two vertebrae taken as one, or one split)"
            )
            names = [name if stop_top < k < stop_bottom else f"V{k}" for k, name in enumerate(names, start=1)]
    return LevelNames(names, True, certain, evidence, anchors, per, warnings)


def _unnamed(n: int) -> list[str]:
    return [f"V{i}" for i in range(1, n + 1)]


def _count_from(n: int, anchor: int, anchor_name: str) -> list[str]:
    """Names counting from vertebra ``anchor`` (1-based) named ``anchor_name``."""
    base = _ORDER.index(anchor_name)
    names = []
    for k in range(1, n + 1):
        pos = base + (k - anchor)
        names.append(_ORDER[pos] if 0 <= pos < len(_ORDER) else f"V{k}")
    return names


def irregular(heights_mm: list[float]) -> list[int]:
    """Vertebrae (1-based) over 1.6 times or under 0.55 times the median height of the
    two vertebrae on either side (whole ones only)."""
    h = np.asarray(heights_mm, dtype=float)
    out = []
    for i in range(len(h)):
        nb = [h[j] for j in (i - 2, i - 1, i + 1, i + 2) if 0 <= j < len(h) and np.isfinite(h[j])]
        if not nb or not np.isfinite(h[i]):
            continue
        ref = float(np.median(nb))
        if h[i] > 1.6 * ref or h[i] < 0.55 * ref:
            out.append(i + 1)
    return out


def spacing_warnings(heights_mm: list[float], names: list[str]) -> list[str]:
    """Warn where one vertebra is unusually tall or short against its neighbours.

    Vertebral heights change slowly along the spine; one far taller than its
    neighbours suggests two vertebrae taken as one (a missed disc), one far shorter
    a fracture or a split; either shifts every name counted across it.
    """
    h = np.asarray(heights_mm, dtype=float)
    if len(h) < 3:
        return []
    odd = []
    for i in range(len(h)):
        nb = [h[j] for j in (i - 1, i + 1) if 0 <= j < len(h)]
        ref = float(np.median(nb))
        if h[i] > 1.6 * ref:
            odd.append(f"{names[i]} {h[i]:.0f} mm (neighbours {ref:.0f} mm)")
    if not odd:
        return []
    return [
        f"unusually tall vertebra ({'; '.join(odd)}): two vertebrae may have been taken as one, "
        "which would shift the names counted across it; check labels.png"
    ]


def label_value(name: str, index: int) -> int:
    """Label value for a level name (VerSe), or 100 + index for V1..Vn."""
    return VERSE_LABELS.get(name, UNNAMED_BASE + index)
