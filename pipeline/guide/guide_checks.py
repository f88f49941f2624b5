"""Checks of a drill guide (osteoprint's or imported) against the plan and the bone.

Nothing is taken from how the guide was made: sleeve axes are recovered from the
mesh itself (:func:`.bore.fit_bore`: cylinders fitted to the bore's faces found
near each planned axis), and the bone is the segmentation (or any signed-distance
callable, negative inside bone, e.g. :func:`mesh_bone` for vertebra meshes).

Resolution: clearance, penetration and contact are exact distances from the
guide's vertices and face centres to the vertebra surface meshes (:mod:`.bone`),
so they resolve hundredths of a mm (of that surface: the segmentation's own error
is ~0.3 mm); sleeve walls and the thinnest wall are exact ray casts (manifold3d);
undercuts are found on the 0.4 mm grid and must be deeper than
``UNDERCUT_DEPTH_MM``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import trimesh

from ..errors import DesignError
from ..geometry.lines import segment_distance
from ..mesh import check_mesh
from .anatomy import VertebraAnatomy
from .bone import Bone, SurfaceDistance, levels_near, segmentation_surfaces
from .bore import fit_bore, ray_thickness, sleeve_wall
from .build import GuideDesign
from .frames import BoneField, LocalGrid, VertebraFrame, resample_mask
from .report import Check, GuideFacts, GuideReport, make_check
from .solids import cylinder, to_manifold

#: Design tolerance of a sleeve axis against its planned trajectory.
MAX_AXIS_ANGLE_DEG = 0.1
MAX_ENTRY_OFFSET_MM = 0.05
SOURCE_ALIGNMENT = (
    "osteoprint design tolerance (issue 4): the CAD error must be negligible against "
    "the ~0.7-1.4 mm entry and ~1.3-3 deg axis deviations reported for printed guides"
)
MAX_TIP_PLAY_MM = 1.0
SOURCE_PLAY = (
    "osteoprint rule: mechanical play of the drill in the sleeve alone moves the screw tip "
    "<= 1 mm (play angle = atan(diametral clearance / sleeve length))"
)
MIN_SLEEVE_WALL_MM = 2.0
SOURCE_SLEEVE_WALL = "osteoprint guide rule (issue 4): sleeve wall >= 2-3 mm; never below the process minimum"
MIN_CONTACT_PATCHES = 3
SOURCE_CONTACT = "osteoprint guide rule (issue 4): >= 3-4 separate contact patches seat the guide in one position only"
SOURCE_INTERFERENCE = "a guide must not penetrate bone (penetration depth <= 0 mm)"
MIN_CLEARANCE_MM = 0.1
SOURCE_CLEARANCE = (
    "osteoprint guide rule (issue 4): designed clearance 0.1-0.3 mm to the bone surface, "
    "measured as the exact distance to the vertebra surface meshes"
)
SOURCE_UNDERCUT = (
    "the guide must come off along its placement direction (posterior) without hitting bone "
    "(bone deeper than 0.3 mm on the way, on the 0.4 mm grid)"
)
#: An undercut shallower than this (mm) is below the grid's resolution.
UNDERCUT_DEPTH_MM = 0.3
SOURCE_THIN = "thinnest wall (5th percentile of inward ray thickness) >= the process's minimum printable wall"


def mesh_bone(meshes, band_mm: float = 2.0) -> Bone:
    """Bone given as closed meshes (e.g. vertebra STLs), as a signed distance (mm,
    negative inside) for :func:`check_guide`.

    Exact within ``band_mm`` of a surface (where every guide check looks); points
    further from every vertex read that (positive) distance, whether inside or out,
    which is all a guide check needs: a guide that reaches deep into bone crosses the
    band on its way, where the distance is exact.
    """
    meshes = [meshes] if isinstance(meshes, trimesh.Trimesh) else list(meshes)
    return Bone(None, [SurfaceDistance(m) for m in meshes], outside_band=band_mm)


def guide_bone(
    segmentation,
    frame: VertebraFrame,
    mesh: trimesh.Trimesh,
    *,
    surfaces: dict | None = None,
    h: float = 0.4,
    margin: float = 6.0,
) -> Bone:
    """All labelled bone around a guide: a grid in ``frame`` plus the surface meshes of
    the levels that reach the guide (added to the ``surfaces`` cache)."""
    local = frame.to_local(mesh.vertices)
    grid = LocalGrid.covering(frame, local.min(0) - margin, local.max(0) + margin + 60.0 * np.array([0, 1, 0]), h)
    field = BoneField.from_mask(grid, resample_mask(segmentation.labels > 0, segmentation.affine, grid))
    lo, hi = mesh.bounds
    near = levels_near(segmentation, lo, hi)
    surfaces = {} if surfaces is None else surfaces
    surfaces.update(segmentation_surfaces(segmentation, [lv for lv in near if lv not in surfaces]))
    return Bone(field, [surfaces[lv] for lv in near])


def _contact(mesh, centre_sdf: np.ndarray, outward, gap_mm: float, tol: float = 0.15, min_patch_mm2: float = 0.5):
    """Faces within ``gap_mm + tol`` of bone and facing it, grouped into patches.

    ``centre_sdf`` is the bone's signed distance at the face centres; ``outward``
    gives the direction away from bone at points (``Bone.outward``)."""
    near = centre_sdf <= gap_mm + tol
    if near.any() and outward is not None:
        g = np.asarray(outward(mesh.triangles_center[near]))
        facing = np.einsum("ij,ij->i", mesh.face_normals[near], g) < -0.5
        idx = np.nonzero(near)[0]
        near[idx[~facing]] = False
    faces = np.nonzero(near)[0]
    if faces.size == 0:
        return 0.0, 0, []
    adj = mesh.face_adjacency
    keep = near[adj[:, 0]] & near[adj[:, 1]]
    groups = trimesh.graph.connected_components(adj[keep], nodes=faces, min_len=1)
    areas = [float(mesh.area_faces[g].sum()) for g in groups]
    patches = [a for a in areas if a >= min_patch_mm2]
    return float(mesh.area_faces[faces].sum()), len(patches), sorted(patches, reverse=True)


def _undercut(mesh, bone, p: np.ndarray):
    """Guide points that meet bone (deeper than ``UNDERCUT_DEPTH_MM``) when lifted along ``p``.

    On a bone grid: 6000 guide vertices, their paths sampled every 0.4 mm for 60 mm.
    Bone given only as meshes (no grid) is measured exactly near its surface, which
    costs more: 2000 vertices, every 0.6 mm.
    """
    grid = bone.coarse if isinstance(bone, Bone) else bone
    n_points, step = (6000, 0.4) if grid is not None else (2000, 0.6)
    grid = bone if grid is None else grid
    sample = mesh.vertices[:: max(1, len(mesh.vertices) // n_points)]
    ts = np.arange(0.3, 60.0, step)
    blocked = np.zeros(len(sample), bool)
    for k in range(0, len(ts), 25):
        seg = sample[:, None, :] + ts[None, k : k + 25, None] * p
        blocked |= (np.asarray(grid(seg)) < -UNDERCUT_DEPTH_MM).any(axis=1)
    return int(blocked.sum()), len(sample)


def _sleeve_checks(screw, fit, manifold, design: GuideDesign, wall_min: float, wall_source: str) -> list:
    sid = screw.id
    ang = float(np.degrees(np.arccos(np.clip(fit["direction"] @ screw.direction, -1, 1))))
    off = float(np.linalg.norm(fit["point"] - screw.entry))
    out = [
        make_check(
            "sleeve_axis_angle",
            ang,
            "deg",
            MAX_AXIS_ANGLE_DEG,
            "<=",
            SOURCE_ALIGNMENT,
            sid,
            fit_rms_mm=fit["rms_mm"],
            bore_vertices=fit["n_vertices"],
        ),
        make_check(
            "sleeve_entry_offset",
            off,
            "mm",
            MAX_ENTRY_OFFSET_MM,
            "<=",
            SOURCE_ALIGNMENT,
            sid,
            note="distance from the planned entry to the recovered bore axis",
        ),
    ]
    length = fit["bottom_t"] - fit["top_t"]
    bore_d = 2 * fit["radius_mm"]
    play = float(np.degrees(np.arctan(max(bore_d - design.drill_diameter_mm, 0.0) / max(length, 1e-6))))
    # The drill pivots about the middle of the sleeve in the worst case.
    lever = -fit["top_t"] - length / 2 + screw.length_mm
    out.append(
        make_check(
            "drill_play_at_tip",
            float(lever * np.tan(np.radians(play))),
            "mm",
            MAX_TIP_PLAY_MM,
            "<=",
            SOURCE_PLAY,
            sid,
            play_angle_deg=play,
            sleeve_length_mm=length,
            bore_diameter_mm=bore_d,
            drill_diameter_mm=design.drill_diameter_mm,
        )
    )
    wall = sleeve_wall(manifold, fit) if manifold is not None else None
    out.append(make_check("sleeve_wall", wall, "mm", wall_min, ">=", wall_source, sid))
    hit = None
    if manifold is not None:
        # The drill (its own diameter) from 20 mm above the sleeve to 5 mm into bone.
        drill = cylinder(
            fit["point"] + (fit["top_t"] - 20.0) * fit["direction"],
            fit["point"] + 5.0 * fit["direction"],
            design.drill_diameter_mm / 2,
            64,
        )
        hit = float((manifold ^ drill).volume())
    out.append(make_check("drill_path_clear", hit, "mm³", 0.0, "<=", "the drill must touch nothing but the bore", sid))
    return out


def check_guide(
    guide_mesh: trimesh.Trimesh,
    screws,
    segmentation=None,
    *,
    bone=None,
    anatomy: VertebraAnatomy | None = None,
    placement_direction=None,
    design: GuideDesign | None = None,
    process: str = "vat_photopolymerization",
    material_class: str = "polymer",
    process_min_wall_mm: float = 0.2,
    quality=None,
    surfaces: dict | None = None,
) -> GuideReport:
    """Check a guide against its planned screws and the bone.

    Parameters
    ----------
    guide_mesh : trimesh.Trimesh
        LPS mm (generated or read from an STL); must be a closed manifold.
    screws : list of Screw
        The planned screws the guide's sleeves must follow.
    segmentation : VertebraSegmentation, optional
        Bone as labelled (all labels); used when ``bone`` is not given.
    bone : callable, optional
        Signed distance of bone (mm, negative inside): ``Guide.bone``, :func:`guide_bone`
        or :func:`mesh_bone`.
    anatomy : VertebraAnatomy, optional
        The vertebra (its frame gives the default placement direction).
    placement_direction : array_like, optional
        LPS unit vector along which the guide comes off (default: posterior of the
        vertebra's frame, else +y).
    design : GuideDesign, optional
        Drill diameter and designed clearance (defaults if not given).
    process, material_class : str
        Printing process and material class the guide is checked against (named in
        the checks' sources).
    process_min_wall_mm : float
        That process's smallest printable wall for that material class, mm
        (:func:`pipeline.printing.min_feature_mm`; the default is vat
        photopolymerization's for polymer): the sleeves and the thinnest wall must
        exceed it. Passed in, since the printing table sits above the stages.
    quality : MeshQuality, optional
        :func:`pipeline.mesh.check_mesh` of the mesh if already measured.
    surfaces : dict, optional
        ``{level: SurfaceDistance}`` cache of vertebra surfaces.

    Returns
    -------
    GuideReport
        ``checks`` (each name, subject, value, unit, threshold, comparison, source,
        passed, details), ``passed``, ``failures`` and ``facts`` (measured figures
        for the print record and the process rule); ``to_dict()`` for JSON.

    A mesh that is not a closed manifold fails ``guide_printable``; its sleeve walls,
    drill paths and thinnest wall are then reported as not measured.
    """
    design = design or GuideDesign()
    frame = anatomy.frame if anatomy is not None else VertebraFrame(np.zeros(3), np.eye(3))
    p = np.asarray(placement_direction if placement_direction is not None else frame.axes[:, 1], float)
    p /= np.linalg.norm(p)
    if bone is None:
        if segmentation is None:
            raise ValueError("give the segmentation or a bone signed-distance callable")
        bone = guide_bone(segmentation, frame, guide_mesh, surfaces=surfaces)
    checks: list[Check] = []
    q = quality if quality is not None else check_mesh(guide_mesh)
    checks.append(
        make_check(
            "guide_printable",
            bool(q.printable),
            "bool",
            True,
            "==",
            "watertight, manifold, no self-intersections (slicer requirement)",
            "guide",
            **q.as_dict(),
        )
    )
    try:
        manifold = to_manifold(guide_mesh)
    except DesignError:  # not a closed solid: walls and the drill path cannot be measured
        manifold = None
    proc_min = float(process_min_wall_mm)
    wall_min = max(MIN_SLEEVE_WALL_MM, proc_min)
    wall_source = f"{SOURCE_SLEEVE_WALL} ({process}, {material_class}: {proc_min} mm)"
    fits = {}
    for s in screws:
        fit = fit_bore(guide_mesh, s.entry, s.direction)
        fits[s.id] = fit
        if fit is None:
            checks.append(
                Check(
                    "sleeve_found",
                    False,
                    "bool",
                    True,
                    "==",
                    SOURCE_ALIGNMENT,
                    False,
                    s.id,
                    {"note": "no bore found within 4 mm of the planned axis"},
                )
            )
            continue
        checks += _sleeve_checks(s, fit, manifold, design, wall_min, wall_source)
    ids = [s.id for s in screws if fits.get(s.id)]
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            a, b = fits[ids[i]], fits[ids[j]]
            gap = segment_distance(
                a["point"] + a["top_t"] * a["direction"],
                a["point"],
                b["point"] + b["top_t"] * b["direction"],
                b["point"],
            )
            checks.append(
                make_check(
                    "sleeve_axes_apart",
                    gap - design.sleeve_outer_diameter_mm,
                    "mm",
                    0.0,
                    ">=",
                    "sleeves must not merge or cross (axis distance minus outer diameter)",
                    f"{ids[i]}/{ids[j]}",
                )
            )
    near = replace(bone, outside_band=1.0) if isinstance(bone, Bone) and bone.coarse is not None else bone
    pts = np.concatenate([guide_mesh.vertices, guide_mesh.triangles_center])
    f = np.asarray(near(pts))
    gap = float(f.min())
    checks.append(
        make_check(
            "bone_penetration",
            max(-gap, 0.0),
            "mm",
            0.0,
            "<=",
            SOURCE_INTERFERENCE,
            "guide",
            deepest_point_lps=pts[int(np.argmin(f))],
        )
    )
    checks.append(
        make_check(
            "bone_clearance",
            gap,
            "mm",
            MIN_CLEARANCE_MM,
            ">=",
            SOURCE_CLEARANCE,
            "guide",
            designed_mm=design.clearance_mm,
            closest_point_lps=pts[int(np.argmin(f))],
        )
    )
    centre_sdf = f[len(guide_mesh.vertices) :]
    area, patches, sizes = _contact(guide_mesh, centre_sdf, getattr(near, "outward", None), max(gap, 0.0))
    checks.append(
        make_check(
            "contact_patches",
            patches,
            "count",
            MIN_CONTACT_PATCHES,
            ">=",
            SOURCE_CONTACT,
            "guide",
            contact_area_mm2=area,
            patch_areas_mm2=sizes[:8],
        )
    )
    blocked, tested = _undercut(guide_mesh, bone, p)
    checks.append(
        make_check(
            "undercut_points",
            blocked,
            "count",
            0,
            "<=",
            SOURCE_UNDERCUT,
            "guide",
            placement_direction_lps=p,
            points_tested=tested,
        )
    )
    thin = ray_thickness(manifold, guide_mesh) if manifold is not None else None
    checks.append(
        make_check(
            "thinnest_wall",
            thin,
            "mm",
            proc_min,
            ">=",
            f"{SOURCE_THIN} ({process}, {material_class}: {proc_min} mm)",
            "guide",
        )
    )
    sleeve_walls = [c.value for c in checks if c.name == "sleeve_wall" and c.value is not None]
    facts = GuideFacts(
        thinnest_wall_mm=thin,
        smallest_sleeve_wall_mm=min(sleeve_walls) if sleeve_walls else None,
        volume_mm3=q.volume_mm3,
        bore_diameter_mm=design.bore_diameter_mm,
        clearance_mm=gap,
        contact_area_mm2=area,
        contact_patches=patches,
    )
    return GuideReport(tuple(checks), facts)


def screws_served(plan, mesh: trimesh.Trimesh, reach_mm: float = 10.0) -> list:
    """The plan's screws whose entry lies within ``reach_mm`` of a vertex of ``mesh``
    (a guide serves the screws whose entry it reaches)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(np.asarray(mesh.vertices))
    return [s for s in plan.screws if tree.query(s.entry)[0] <= reach_mm]
