"""The HDF5 clip: round trip, velocity consistency, sampling, validation of bad files, atomic writes."""


import h5py
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from retarget.clip import FORMAT_VERSION, Clip, read_clip, write_clip
from retarget.errors import InputError
from retarget.kinematics import feet_world
from retarget.robot import load_robot

G = 9.81


@pytest.fixture(scope="module")
def robot():
    return load_robot()


def make_clip(robot, n=101, fps=50.0):
    """A tumbling, hopping base with swinging joints: every field moves."""
    t = np.arange(n) / fps
    pos = np.stack([0.3 * t, 0.05 * np.sin(3 * t), 0.3 + 1.2 * t - 0.5 * G * t**2], axis=1)
    quat = Rotation.from_euler("ZYX", np.stack([0.5 * t, -6.0 * t, 0.3 * np.sin(2 * t)], 1)).as_quat(scalar_first=True)
    q = robot.default_pose + 0.3 * np.sin(4 * t)[:, None] * np.linspace(0.5, 1, 12)
    q = np.clip(q, robot.lower, robot.upper)
    contact = np.zeros((n, 4), bool)
    contact[:10] = True
    return Clip(fps=fps, root_pos=pos, root_quat=quat, dof_pos=q, foot_pos=feet_world(robot, pos, quat, q),
                foot_contact=contact, joint_names=robot.joint_names, foot_names=robot.foot_names,
                source_file="synthetic", retarget_settings={"fps": fps}, quality={"x": 1.0})


def test_round_trip(robot, tmp_path):
    clip = make_clip(robot)
    write_clip(clip, tmp_path / "c.h5")
    back = read_clip(tmp_path / "c.h5", robot)
    for name, a in clip.arrays().items():
        np.testing.assert_allclose(getattr(back, name), a, err_msg=name)
    assert back.retarget_settings == {"fps": 50.0} and back.quality == {"x": 1.0}
    with h5py.File(tmp_path / "c.h5") as f:
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert f.attrs["quat_convention"] == "wxyz"
        assert list(f.attrs["joint_names"]) == list(robot.joint_names)
        assert f.attrs["duration"] == pytest.approx(2.0)
    assert list(tmp_path.iterdir()) == [tmp_path / "c.h5"]  # no temporary left behind


def test_velocities_agree_with_positions(robot):
    clip = make_clip(robot, n=501, fps=250.0)
    # Linear: the parabola's velocity is exact under central differences.
    t = clip.time
    np.testing.assert_allclose(clip.root_lin_vel[1:-1, 2], 1.2 - G * t[1:-1], atol=1e-9)
    integrated = clip.root_pos[0] + np.concatenate(
        [[np.zeros(3)], np.cumsum(0.5 * (clip.root_lin_vel[1:] + clip.root_lin_vel[:-1]) / clip.fps, axis=0)])
    assert np.abs(integrated - clip.root_pos).max() < 2e-3
    # Angular: integrating the world angular velocity reproduces the attitude.
    r = Rotation.from_quat(clip.root_quat[0], scalar_first=True)
    for k in range(clip.num_frames - 1):
        w = 0.5 * (clip.root_ang_vel[k] + clip.root_ang_vel[k + 1])
        r = Rotation.from_rotvec(w / clip.fps) * r
    final = Rotation.from_quat(clip.root_quat[-1], scalar_first=True)
    assert (r.inv() * final).magnitude() < 1e-2
    # The body pitch rate of the scripted attitude is about -6 rad/s.
    body = Rotation.from_quat(clip.root_quat, scalar_first=True).inv().apply(clip.root_ang_vel)
    assert np.median(body[:, 1]) == pytest.approx(-6.0, abs=0.3)


def test_sample_interpolates_and_holds(robot):
    clip = make_clip(robot)
    s = clip.sample(np.array([[0.0, 0.01], [0.5, 10.0]]))
    assert s["root_pos"].shape == (2, 2, 3) and s["root_quat"].shape == (2, 2, 4)
    np.testing.assert_allclose(s["root_pos"][0, 1], 0.5 * (clip.root_pos[0] + clip.root_pos[1]))
    np.testing.assert_allclose(s["dof_pos"][1, 0], clip.dof_pos[25])
    np.testing.assert_allclose(s["root_pos"][1, 1], clip.root_pos[-1])  # past the end: hold
    half = Rotation.from_quat(s["root_quat"][0, 1], scalar_first=True)
    a, b = (Rotation.from_quat(clip.root_quat[i], scalar_first=True) for i in (0, 1))
    assert (a.inv() * half).magnitude() == pytest.approx(0.5 * (a.inv() * b).magnitude(), rel=1e-6)


def test_resample_keeps_motion(robot):
    clip = make_clip(robot)
    fine = clip.resample(100.0)
    assert fine.num_frames == 201
    np.testing.assert_allclose(fine.root_pos[::2], clip.root_pos, atol=1e-12)


def _write_then(robot, tmp_path, mutate):
    path = tmp_path / "c.h5"
    write_clip(make_clip(robot), path)
    with h5py.File(path, "a") as f:
        mutate(f)
    return path


@pytest.mark.parametrize("mutate, match", [
    (lambda f: f.attrs.__setitem__("format_version", 99), "format_version.*99"),
    (lambda f: f.attrs.__delitem__("format_version"), "format_version"),
    (lambda f: f.__delitem__("dof_vel"), "dataset 'dof_vel' missing"),
    (lambda f: f["dof_pos"].__setitem__((5, 3), np.nan), "dataset 'dof_pos'.*non-finite.*frame 5"),
    (lambda f: f.attrs.__setitem__("joint_names", ["a"] * 12), "joint_names"),
    (lambda f: f.attrs.__setitem__("quat_convention", "xyzw"), "quat_convention"),
    (lambda f: f.attrs.__setitem__("fps", 30.0), "time.*fps"),
    (lambda f: f["root_quat"].__setitem__(7, [2.0, 0, 0, 0]), "root_quat.*frame 7"),
    (lambda f: (f.__delitem__("foot_pos"), f.create_dataset("foot_pos", data=np.zeros((101, 3, 3)))), "foot_pos.*shape"),
])
def test_bad_clip_files(robot, tmp_path, mutate, match):
    path = _write_then(robot, tmp_path, mutate)
    with pytest.raises(InputError, match=match) as e:
        read_clip(path, robot)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("content", [b"", b"\x00\xff garbage \x13" * 50, b"not hdf5 at all\n"])
def test_not_hdf5(robot, tmp_path, content):
    path = tmp_path / "bad.h5"
    path.write_bytes(content)
    with pytest.raises(InputError, match="bad.h5.*not a readable HDF5"):
        read_clip(path, robot)


def test_truncated_hdf5(robot, tmp_path):
    path = tmp_path / "c.h5"
    write_clip(make_clip(robot), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="c.h5"):
        read_clip(path, robot)


def test_write_refuses_nan_and_leaves_nothing(robot, tmp_path):
    clip = make_clip(robot)
    clip.dof_pos[3, 2] = np.inf
    with pytest.raises(InputError, match="dof_pos.*frame 3"):
        write_clip(clip, tmp_path / "c.h5")
    assert list(tmp_path.iterdir()) == []
