"""Genant's semi-quantitative grading of vertebral compression fractures.

Genant HK, Wu CY, van Kuijk C, Nevitt MC. *Vertebral fracture assessment using a
semiquantitative technique.* J Bone Miner Res 1993;8(9):1137-1148. A vertebra is
graded by its estimated reduction in anterior, middle or posterior height,
judged against the same vertebra's other heights and against its neighbours:

=====  ========  ====================
grade  name      height reduction
=====  ========  ====================
0      normal    < 20 %
1      mild      20-25 %
2      moderate  25-40 %
3      severe    > 40 %
=====  ========  ====================

Morphology: *wedge* (anterior height reduced), *biconcave* (middle height
reduced), *crush* (posterior height reduced as well, the whole body).

How the expected (pre-fracture) heights are estimated here, in the spirit of the
quantitative morphometry that accompanies the semi-quantitative reading (ratios
Ha/Hp and Hm/Hp against the same vertebra, Hp against its neighbours):

* *posterior*: interpolated between the nearest unfractured neighbours' posterior
  heights (above and below, weighted by how many levels away they are);
* *anterior* and *middle*: the vertebra's own reference posterior height times the
  neighbours' Ha/Hp and Hm/Hp ratios, so the natural wedging of the region (thoracic
  kyphosis, lumbar lordosis, the lens-shaped endplates) is expected, not graded.
  The reference posterior height is the vertebra's own unless that itself has lost
  20 % or more against the neighbours (a crush), then the neighbours' estimate.

A first pass grades every level against its nearest measured neighbour on each
side (up to ``MAX_NEIGHBOUR_STEPS`` levels away); the second pass uses only
neighbours the first pass found unfractured, so adjacent fractures do not hide
each other (with none left, the first pass's neighbours stand).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Upper bounds of height loss for grades 0, 1 and 2 (Genant 1993); above: grade 3.
GRADE_LIMITS = (0.20, 0.25, 0.40)
GRADE_NAMES = ("normal", "mild", "moderate", "severe")
#: How far (levels) to look for an unfractured neighbour.
MAX_NEIGHBOUR_STEPS = 2
#: Shape ratios used when a level has no neighbour to compare with: a body of
#: equal anterior and posterior height, middle height lower by the endplate
#: concavities (~1 mm each on a ~25 mm body).
DEFAULT_RATIOS = {"anterior": 1.0, "middle": 0.92}


@dataclass(frozen=True)
class FractureGrading:
    """Genant grade of one level with the numbers behind it.

    Attributes
    ----------
    level : str
    heights_mm, expected_mm : dict
        Measured and expected anterior/middle/posterior heights, mm.
    restored_mm : dict
        Heights the restored body should have (the envelope's target), mm: the
        expected anterior and middle heights and the reference posterior height.
    loss : dict
        Height-loss fraction per position, ``1 - measured / expected`` (negative
        when taller than expected).
    grade : int
        0-3 (Genant 1993).
    grade_name : str
    morphology : str
        "wedge", "biconcave" or "crush" ("none" for grade 0).
    neighbours : tuple of str
        Levels the expectation was drawn from.
    note : str
    """

    level: str
    heights_mm: dict
    expected_mm: dict
    restored_mm: dict
    loss: dict
    grade: int
    grade_name: str
    morphology: str
    neighbours: tuple
    note: str = ""

    @property
    def max_loss(self) -> float:
        return max(self.loss.values())

    def as_dict(self) -> dict:
        r2 = lambda d: {k: round(float(v), 2) for k, v in d.items()}  # noqa: E731
        return {
            "level": self.level,
            "heights_mm": r2(self.heights_mm),
            "expected_heights_mm": r2(self.expected_mm),
            "restored_heights_mm": r2(self.restored_mm),
            "height_loss_fraction": {k: round(float(v), 4) for k, v in self.loss.items()},
            "genant_grade": self.grade,
            "genant_grade_name": self.grade_name,
            "morphology": self.morphology,
            "compared_with": list(self.neighbours),
            "note": self.note,
        }


def genant_grade(loss: float) -> tuple[int, str]:
    """Grade (0-3) and its name for a height-loss fraction (Genant 1993)."""
    for grade, limit in enumerate(GRADE_LIMITS):
        if loss < limit:
            return grade, GRADE_NAMES[grade]
    return 3, GRADE_NAMES[3]


def morphology(loss: dict) -> str:
    """Wedge, biconcave or crush from the loss per position (Genant 1993)."""
    if loss["posterior"] >= GRADE_LIMITS[0]:
        return "crush"
    return "wedge" if loss["anterior"] >= loss["middle"] else "biconcave"


def _neighbours(order: list, i: int, usable, positions: dict) -> list:
    """``(name, weight)`` of the nearest usable level on each side of ``order[i]``.

    Distances are counted in spinal levels (``positions``), so a level missing from
    ``order`` still counts as a step.
    """
    here = positions[order[i]]
    found = []
    for side in (-1, 1):
        cands = [
            (abs(positions[order[j]] - here), j)
            for j in range(len(order))
            if j != i
            and np.sign(positions[order[j]] - here) == side
            and abs(positions[order[j]] - here) <= MAX_NEIGHBOUR_STEPS
            and usable(j)
        ]
        if cands:
            d, j = min(cands)
            found.append((order[j], d))
    if len(found) == 2:
        # Linear interpolation between the two: the nearer one weighs more.
        (n1, d1), (n2, d2) = found
        return [(n1, d2 / (d1 + d2)), (n2, d1 / (d1 + d2))]
    return [(n, 1.0) for n, _ in found]


def _grade_one(name: str, h: dict, refs: list, heights: dict) -> FractureGrading:
    if refs:
        hp_exp = sum(w * heights[r]["posterior"] for r, w in refs)
        ratios = {k: sum(w * heights[r][k] / heights[r]["posterior"] for r, w in refs) for k in ("anterior", "middle")}
        note = ""
    else:
        hp_exp = h["posterior"]
        ratios = dict(DEFAULT_RATIOS)
        note = "no neighbouring vertebra to compare with: own posterior height and typical shape used"
    crushed = 1.0 - h["posterior"] / hp_exp >= GRADE_LIMITS[0]
    ref = hp_exp if crushed else h["posterior"]
    expected = {"anterior": ref * ratios["anterior"], "middle": ref * ratios["middle"], "posterior": hp_exp}
    restored = {"anterior": expected["anterior"], "middle": expected["middle"], "posterior": ref}
    loss = {k: 1.0 - h[k] / expected[k] for k in ("anterior", "middle", "posterior")}
    grade, grade_name = genant_grade(max(loss.values()))
    return FractureGrading(
        level=name,
        heights_mm=dict(h),
        expected_mm=expected,
        restored_mm=restored,
        loss=loss,
        grade=grade,
        grade_name=grade_name,
        morphology=morphology(loss) if grade else "none",
        neighbours=tuple(r for r, _ in refs),
        note=note,
    )


def grade_levels(heights: dict, positions: dict | None = None) -> dict:
    """Genant grade of every level from its heights and its neighbours'.

    Parameters
    ----------
    heights : dict
        Level name -> ``{"anterior", "middle", "posterior"}`` heights (mm) or
        :class:`~pipeline.defect.heights.BodyHeights`, in spinal order (superior
        first).
    positions : dict, optional
        Level name -> position along the spine (0, 1, 2, ... superior first), so that
        a level left unmeasured still counts as a step between its neighbours.
        Default: consecutive.

    Returns
    -------
    dict
        Level name -> :class:`FractureGrading`, same order.
    """
    table = {n: (h.heights if hasattr(h, "heights") else dict(h)) for n, h in heights.items()}
    order = list(table)
    positions = {n: i for i, n in enumerate(order)} if positions is None else positions
    first = {
        name: _grade_one(name, table[name], _neighbours(order, i, lambda j: True, positions), table)
        for i, name in enumerate(order)
    }
    out = {}
    for i, name in enumerate(order):
        refs = _neighbours(order, i, lambda j: first[order[j]].grade == 0, positions)
        if not refs:
            refs = _neighbours(order, i, lambda j: True, positions)
        out[name] = _grade_one(name, table[name], refs, table)
    return out


def deficits_mm(grading: FractureGrading) -> dict:
    """Height missing at each position against the restored body, mm (>= 0)."""
    return {k: max(0.0, grading.restored_mm[k] - grading.heights_mm[k]) for k in grading.heights_mm}


def has_collapse(grading: FractureGrading, min_loss: float) -> bool:
    return bool(np.isfinite(grading.max_loss) and grading.max_loss >= min_loss)
