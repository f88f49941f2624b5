"""The phantom's ground truth as a JSON-serialisable dict (LPS mm, degrees, HU)."""

from __future__ import annotations

import copy

import numpy as np

from ..volume import axis_codes, voxel_sizes
from .anatomy import DEPTHS, FRACTURE_LEVEL, FRACTURE_LOSS, SPUR_LEVEL, SpineModel
from .levels import DISCS, FACET_GAP, MIN_GAP, endplate_angle
from .pelvis import RIB_GAP, SI_GAP
from .shapes import Intersection, Shape
from .tissues import KVP, NOISE_CORRELATION_PX, PSF_SIGMA_MM, RIND_MM, SCLEROTIC_MM, TISSUES
from .truthgeom import body_heights, ray_exit, volume_and_centroid
from .vertebra import CORTEX_MM

GENERATOR = "osteoprint.phantom 1"


def _r(v, nd=3):
    return [round(float(x), nd) for x in np.ravel(v)]


class _Not(Shape):
    def __init__(self, s):
        self.s = s

    def sdf(self, p):
        return -self.s.sdf(p)


def pedicle_truth(spine: SpineModel, level: str) -> list[dict]:
    """Isthmus centre, axis and size of each pedicle, plus where its axis enters the
    posterior cortex and leaves the anterior cortex of the body."""
    f = spine.frames[level]
    bone = spine.vertebrae[level]
    out = []
    for ped in spine.pedicles.get(level, []):
        c = f.point(ped.centre)
        axis = f.vector(ped.axis)
        entry = ray_exit(bone, c, -axis, step=0.1)
        exit_ = ray_exit(bone, c, axis, step=0.1)
        out.append(
            {
                "side": ped.side,
                "isthmus_centre_lps": _r(c),
                "axis_lps": _r(axis, 5),
                "width_mm": ped.width,
                "height_mm": ped.height,
                "medial_angle_deg": ped.medial_angle,
                "cranial_angle_deg": ped.cranial_angle,
                "entry_point_lps": _r(entry),
                "anterior_cortex_lps": _r(exit_),
                "axis_chord_mm": round(float(np.linalg.norm(exit_ - entry)), 2),
            }
        )
    return out


def level_truth(spine: SpineModel, level: str) -> dict:
    body = spine.bodies[level]
    intact = spine.intact_bodies[level]
    f = intact.frame
    up = f.R[:, 2]
    _, centroid = volume_and_centroid(body, step=0.5)
    sup = ray_exit(body, f.origin, up)
    inf = ray_exit(body, f.origin, -up)
    entry = {
        "name": level,
        "label": spine.label_values[level],
        "body_centroid_lps": _r(centroid),
        "body_axis_lps": _r(up, 5),
        "superior_endplate_centre_lps": _r(sup),
        "inferior_endplate_centre_lps": _r(inf),
        "body_heights_mm": {k: round(v, 2) for k, v in body_heights(body, DEPTHS, intact).items()},
        "trabecular_hu": spine.specs[level].trabecular_hu,
        "endplate_width_mm": spine.specs[level].width,
        "endplate_depth_mm": spine.specs[level].depth,
        "pedicles": pedicle_truth(spine, level),
    }
    if level == FRACTURE_LEVEL:
        entry["intact_body_heights_mm"] = {k: round(v, 2) for k, v in body_heights(intact, DEPTHS).items()}
    return entry


def model_truth(model) -> dict:
    """The scan-independent part of the truth (computed once per model)."""
    cached = getattr(model, "_truth_cache", None)
    if cached is not None:
        return cached
    spine: SpineModel = model.spine
    levels = [level_truth(spine, n) for n in spine.levels]
    fr = levels[[lv["name"] for lv in levels].index(FRACTURE_LEVEL)]
    loss = 1.0 - fr["body_heights_mm"]["anterior"] / fr["intact_body_heights_mm"]["anterior"]
    dvol, dcen = volume_and_centroid(spine.defect, step=0.2)
    spur = Intersection(spine.spur_shape, _Not(spine.intact_bodies[SPUR_LEVEL]))
    svol, scen = volume_and_centroid(spur, step=0.2)
    spur_len = float(spine.intact_bodies[SPUR_LEVEL](spine.spur_tip[None])[0]) + 1.8
    plane = spine.fracture_plane
    s1, l1, t12 = (spine.specs[n] for n in ("S1", "L1", "T12"))
    lordosis = endplate_angle(spine.frames["S1"], s1, "superior") - endplate_angle(spine.frames["L1"], l1, "superior")
    tl = endplate_angle(spine.frames["L1"], l1, "inferior") - endplate_angle(spine.frames["T12"], t12, "superior")
    out = {
        "levels": levels,
        "fracture": {
            "level": FRACTURE_LEVEL,
            "type": "anterior wedge compression (Genant grade 2)",
            "anterior_height_loss_fraction": round(loss, 4),
            "design_loss_fraction": FRACTURE_LOSS,
            "defect_volume_mm3": round(dvol, 1),
            "defect_centroid_lps": _r(dcen),
            "cut_plane_point_lps": _r(plane.point),
            "cut_plane_normal_lps": _r(plane.normal, 5),
            "definition": "intact L1 body minus collapsed L1 body (region above the cut plane inside the intact body)",
        },
        "asymmetric_feature": {
            "level": SPUR_LEVEL,
            "side": "left",
            "centre_lps": _r(scen),
            "tip_lps": _r(spine.spur_tip),
            "protrusion_mm": round(spur_len, 2),
            "volume_mm3": round(svol, 1),
            "description": "osteophyte (bony spur) on the patient-LEFT (+x) superior "
            "anterolateral rim of the L3 body, part of L3's label",
        },
        "alignment": {
            "lordosis_L1_S1_deg": round(lordosis, 2),
            "thoracolumbar_T12_L1_deg": round(tl, 2),
            "sacral_slope_deg": round(endplate_angle(spine.frames["S1"], s1, "superior"), 2),
        },
    }
    model._truth_cache = out
    return out


def build_truth(model, volume, labels, defect, *, noise_hu, supersample, seed) -> dict:
    """Everything a test may compare the pipeline's output with."""
    spine: SpineModel = model.spine
    base = copy.deepcopy(model_truth(model))
    vox = float(np.prod(voxel_sizes(volume.affine)))
    base["fracture"]["defect_voxels"] = int(defect.sum())
    base["fracture"]["defect_volume_on_grid_mm3"] = round(int(defect.sum()) * vox, 1)
    aff = np.asarray(volume.affine)
    return {
        "generator": GENERATOR,
        "units": "mm",
        "coordinate_system": "LPS",
        "label_values": dict(spine.label_values),
        "non_vertebra_bones": {
            "rib_left": 0,
            "rib_right": 0,
            "ilium_left": 0,
            "ilium_right": 0,
            "note": "ribs and iliac bones are bone on the image but label 0 in labels",
        },
        "levels": base["levels"],
        "fracture": base["fracture"],
        "asymmetric_feature": base["asymmetric_feature"],
        "ribs": {"level": "T12", "sides": ["left", "right"], "joint_gap_mm": RIB_GAP, "label": 0},
        "pelvis": {"bones": ["ilium_left", "ilium_right"], "sacroiliac_gap_mm": SI_GAP, "label": 0},
        "joints": {"facet_gap_mm": FACET_GAP, "min_gap_between_vertebrae_mm": MIN_GAP},
        "discs": [{"upper": u, "lower": lo, "height_mm": h, "wedge_deg": w} for (u, lo), (h, w) in DISCS.items()],
        "alignment": base["alignment"],
        "geometry": {
            "shape": list(volume.shape),
            "array_axes": ["slice", "row", "column"],
            "spacing_mm": _r(voxel_sizes(aff), 6),
            "affine": [[round(float(v), 6) for v in row] for row in aff],
            "image_position_patient_first": _r(aff[:3, 3], 6),
            "image_orientation_patient": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            "axis_codes": axis_codes(aff),
        },
        "bone_density": {
            "trabecular_hu": {n: spine.specs[n].trabecular_hu for n in spine.levels},
            "texture_amplitude_hu": TISSUES["trabecular"][1],
            "sclerotic_band_hu": TISSUES["sclerotic"][0],
            "sclerotic_band_mm": SCLEROTIC_MM,
            "kvp": KVP,
            "contrast": "none",
            "definition": "the HU of a large uniform piece of each body's cancellous bone, before the "
            "fine texture (zero mean), blur and noise; L1's sclerotic band lies beneath its "
            "collapsed endplate",
        },
        "image": {
            "tissue_hu": {k: v[0] for k, v in TISSUES.items()},
            "cortex_mm": CORTEX_MM,
            "soft_tissue_rind_mm": RIND_MM,
            "noise_hu": float(noise_hu),
            "noise_correlation_px": NOISE_CORRELATION_PX,
            "psf_sigma_mm": PSF_SIGMA_MM,
            "supersample": int(supersample),
            "seed": int(seed),
            "label_rule": "a voxel belongs to a vertebra when at least half of its "
            f"{int(supersample) ** 3} sub-samples are inside it (exactly half: "
            "when its centre is)",
        },
        "sdf_accuracy": "model.spine.vertebra_sdf(level, points) is the Euclidean signed "
        "distance to ~0.01 mm within 3 mm of the surface (rare outliers at "
        "blended junctions); beyond 4 mm it is a lower bound",
    }
