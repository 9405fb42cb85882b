"""Light visual meshes for videos (imitation/evaluation/meshes.py): same robot, a tenth of the triangles."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

trimesh = pytest.importorskip("trimesh")

from imitation.evaluation.meshes import decimate_mesh, light_urdf  # noqa: E402
from retarget.robot import load_robot  # noqa: E402


def _visual_meshes(urdf):
    root = ET.parse(urdf).getroot()
    return [(link.get("name"), m.get("filename")) for link in root.iter("link")
            for m in link.iterfind("visual/geometry/mesh")]


def _faces_and_bounds(path):
    scene = trimesh.load(path, force="scene")
    parts = scene.dump(concatenate=False)
    return sum(len(p.faces) for p in parts), np.array(scene.bounds)


def test_a_colored_sphere_keeps_its_shape_and_colour_with_a_tenth_of_its_faces(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.1)      # 5120 faces
    sphere.visual = trimesh.visual.ColorVisuals(sphere, face_colors=[200, 30, 40, 255])
    src = tmp_path / "ball.ply"
    sphere.export(src)
    before, after = decimate_mesh(src, tmp_path / "ball.glb", 0.1)
    assert before == 5120
    assert 0.07 * before < after < 0.13 * before
    faces, bounds = _faces_and_bounds(tmp_path / "ball.glb")
    assert faces == after
    np.testing.assert_allclose(bounds, [[-0.1] * 3, [0.1] * 3], atol=0.01)
    part = trimesh.load(tmp_path / "ball.glb", force="scene").dump(concatenate=False)[0]
    assert list(part.visual.material.main_color[:3]) == [200, 30, 40]


def test_the_go2s_light_urdf_has_every_link_with_a_tenth_of_the_triangles(tmp_path):
    urdf = load_robot().urdf_path
    light = light_urdf(urdf, 0.1, cache=tmp_path)
    original, decimated = _visual_meshes(urdf), _visual_meshes(light)
    assert [link for link, _ in decimated] == [link for link, _ in original] and len(original) >= 13
    # joints, inertials and collision shapes: untouched
    strip = lambda root: [(e.tag, e.attrib) for e in root.iter() if e.tag != "mesh"]  # noqa: E731
    assert strip(ET.parse(light).getroot()) == strip(ET.parse(urdf).getroot())
    total_before = total_after = 0
    for (_, src), (_, dst) in zip(original, decimated):
        f0, b0 = _faces_and_bounds(urdf.parent / src)
        f1, b1 = _faces_and_bounds(light.parent / dst)
        total_before, total_after = total_before + f0, total_after + f1
        np.testing.assert_allclose(b1, b0, atol=0.006)       # the same part, to within 6 mm
    assert 0.07 * total_before < total_after < 0.13 * total_before
    # made once: a second call reuses the copy; another fraction is another copy
    stamp = light.stat().st_mtime_ns
    assert light_urdf(urdf, 0.1, cache=tmp_path) == light and light.stat().st_mtime_ns == stamp
    assert light_urdf(urdf, 0.2, cache=tmp_path).parent != light.parent
