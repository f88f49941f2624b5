"""The bone-quality lines of a job's summary, from its manifest (for the command line)."""

from __future__ import annotations


def summary_lines(manifest: dict) -> list[str]:
    """The screening flag, the per-level trabecular means and any screw advice, in words.

    Parameters
    ----------
    manifest : dict
        A job's manifest (its ``bone_quality`` block and guide prints are read).

    Returns
    -------
    list of str
        Empty when the manifest has no bone-quality record.
    """
    bone = manifest.get("bone_quality")
    if not bone:
        return []
    s = bone["screening"]
    lines = []
    if s["level"] is None:
        lines.append(f"bone density screening: not assessable ({s['level_choice']})")
    else:
        t = s["thresholds"]
        lines.append(
            f"bone density screening: {s['category_words']} ({s['level']} {s['value_hu']:.0f} HU; "
            f"likely osteoporosis {t['likely_osteoporosis']}, likely normal {t['likely_normal']}, "
            f"Pickhardt et al. 2013; {s['level_choice']}); a screening flag, not a diagnosis"
        )
    values = [
        f"{v['level']} {v['trabecular_mean_hu']:.0f}" + (" (fractured)" if v["fractured"] else "")
        for v in bone["levels"]
        if v["trabecular_mean_hu"] is not None
    ]
    if values:
        lines.append("trabecular mean HU: " + ", ".join(values) + (f" ({bone['file']})" if bone.get("file") else ""))
    for p in manifest.get("prints", []):
        for screw in (p.get("plan") or {}).get("screws", []):
            advice = (screw.get("bone_quality") or {}).get("advice")
            if advice:
                lines.append(f"{screw['id']}: {advice}")
    return lines
