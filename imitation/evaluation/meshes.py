"""Light visual meshes for videos: a copy of a robot's URDF whose visual meshes are decimated.

On a CPU the rasterizer's time goes into the robot's triangles: the Go2's visual meshes hold about 400k
triangles per robot, and a video shows three or four robots. A tenth of the triangles renders about four
times faster and is not told apart at a video's scale (docs/evaluation.md, Videos). Physics never sees these
meshes: the sim uses the URDF itself.

The copy lives in a cache folder named by the URDF's content and the kept fraction, so it is made once per
machine (a second or two) and reused by every process. Each visual mesh is loaded with trimesh, its vertices
merged (COLLADA files split them at every normal seam, which decimation would tear open), decimated with
fast_simplification, and written as glTF with its parts' base colours. Collision meshes and every other
element of the URDF are left as they are.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from ..sim import cache_dir

# Parts with fewer triangles are kept whole (a foot's dozens of triangles are not worth simplifying).
MIN_FACES = 200


def cache_root() -> Path:
    return cache_dir() / "light-meshes"


def light_urdf(urdf: str | Path, fraction: float = 0.1, cache: str | Path | None = None) -> Path:
    """The URDF `urdf` with every visual mesh decimated to about `fraction` of its triangles (cached)."""
    urdf = Path(urdf).resolve()
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    text = urdf.read_bytes()
    key = hashlib.sha256(text + f"|{fraction}|{MIN_FACES}".encode()).hexdigest()[:16]
    folder = Path(cache or cache_root()) / f"{urdf.stem}-{key}"
    target = folder / urdf.name
    if target.is_file():
        return target
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        _write_light_copy(urdf, tmp, fraction)
        try:
            tmp.rename(folder)          # atomic: another process may have made it meanwhile
        except OSError:
            if not target.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_light_copy(urdf: Path, out: Path, fraction: float) -> None:
    tree = ET.parse(urdf)
    made: dict[Path, str] = {}
    for mesh in tree.getroot().iterfind(".//visual/geometry/mesh"):
        name = mesh.get("filename", "")
        src = (urdf.parent / name).resolve() if "://" not in name else None
        if src is None or not src.is_file():
            continue                    # package:// and other schemes: left to the loader, undecimated
        if src not in made:
            made[src] = f"{len(made):02d}_{src.stem}.glb"
            decimate_mesh(src, out / made[src], fraction)
        mesh.set("filename", made[src])
    tree.write(out / urdf.name, encoding="utf-8", xml_declaration=True)


def decimate_mesh(src: Path, dst: Path, fraction: float) -> tuple[int, int]:
    """Write `src` (any mesh file trimesh reads) to `dst` (.glb) with about `fraction` of its triangles, each
    part keeping its base colour; returns (triangles before, after)."""
    import fast_simplification
    import numpy as np
    import trimesh

    scene = trimesh.Scene()
    before = after = 0
    for part in trimesh.load(src, force="scene").dump(concatenate=False):  # node transforms applied
        part.merge_vertices(merge_tex=True, merge_norm=True)
        vertices, faces = part.vertices, part.faces
        before += len(faces)
        if len(faces) > MIN_FACES and fraction < 1.0:
            vertices, faces = fast_simplification.simplify(np.asarray(vertices, np.float32), faces,
                                                           target_reduction=1.0 - fraction)
        after += len(faces)
        light = trimesh.Trimesh(vertices, faces, process=False)
        color = _base_color(part)
        if color is not None:
            light.visual = trimesh.visual.TextureVisuals(material=trimesh.visual.material.PBRMaterial(
                baseColorFactor=color, metallicFactor=0.0, roughnessFactor=0.8))
        scene.add_geometry(light)
    scene.export(dst)
    return before, after


def _base_color(part):
    material = getattr(part.visual, "material", None)
    color = getattr(material, "main_color", None)
    if color is None and getattr(part.visual, "kind", None) in ("face", "vertex"):
        color = part.visual.face_colors[0]
    return None if color is None else [int(c) for c in color]
