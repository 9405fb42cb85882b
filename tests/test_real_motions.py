"""Real motion files: motion_imitation's dog clips (motions/, Laikago) import as they are, and small
files of the kinds that library has and this project has no copy of: a hop-turn whose calf passes the
Go2 limit by 0.26 rad, a front leg reaching out with a near-straight knee, a spin that turns each cycle.
Angles past a Go2 limit are clamped and reported (retarget/methods.py); broken files are still refused.
Expected numbers come from the raw files and from the motions as constructed here, not from the
importer. No genesis, no torch.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.interpolate import CubicHermiteSpline
from scipy.spatial.transform import Rotation

from retarget.clip import cycle_delta, read_clip, write_clip
from retarget.errors import InputError
from retarget.importer import load_motion
from retarget.keyframes import load_keyframes
from retarget.kinematics import feet_body, feet_world, ik_world
from retarget.mapping import load_mapping
from retarget.quality import format_report, quality_report
from test_importers import (LAIKAGO_OFFSET, LAIKAGO_SCALE, LAIKAGO_SIGN, LAIKAGO_TOE, MAPPING, R_FOOT,
                            ROBOT, stance_speed, to_laikago, trot, write_mi)

DATA = Path(__file__).resolve().parent.parent / "motions"
FPS = 60.0
CALF_LIMIT = ROBOT.upper[2]          # -0.838 rad: the Go2's straightest knee
L1 = L2 = 0.213                      # Go2 thigh, calf (m)
LAIKAGO_L1, LAIKAGO_L2 = 0.2522, 0.2510
# Laikago's hip centre seen from the root its files store (pybullet's base position, the chassis's
# centre of mass): (front hips 0.242889 + rear hips -0.194401) / 2 - 0.043794 ahead, 0.03 below.
LAIKAGO_HIP_CENTRE = np.array([(0.242889 - 0.194401) / 2 - 0.043794, 0.0, -0.03])
# The same Go2 with calves free to straighten: the angles a source asks for before any clamping.
LOOSE = dataclasses.replace(ROBOT, upper=np.where(np.arange(12) % 3 == 2, 0.0, ROBOT.upper))


def raw_frames(path: Path) -> np.ndarray:
    return np.array(json.loads(Path(path).read_text())["Frames"], float)


def go2_angles(frames: np.ndarray) -> np.ndarray:
    """A Laikago file's joint columns as Go2 angles, before clamping (the conventions of test_importers)."""
    return frames[:, 7:19] * LAIKAGO_SIGN + LAIKAGO_OFFSET


def excess_of(q: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(q - ROBOT.upper, ROBOT.lower - q), 0.0)


def planar_foot(thigh, calf, l1=L1, l2=L2):
    """Foot (x, z) from the thigh joint in the leg's plane, written out independently of retarget.kinematics."""
    return -np.array([l1 * np.sin(thigh) + l2 * np.sin(thigh + calf), l1 * np.cos(thigh) + l2 * np.cos(thigh + calf)])


def reach(d_calf, l1=L1, l2=L2):
    return float(np.hypot(*planar_foot(0.0, d_calf, l1, l2)))


# ---------------------------------------------------------------- motions made here, in Go2 angles

def hop_turn(n=100, takeoff=62, flight=15, turn=0.5):
    """Crouch, push off with the legs stretched (the FL foot set 14.6 cm forward, so its knee would
    straighten to -0.58 rad at take-off, frame 62), turn 0.5 rad in a 0.25 s flight, land, stand."""
    t = np.arange(n) / FPS
    t0, t1 = takeoff / FPS, (takeoff + flight) / FPS
    z_to, z_land, g, T = 0.40, 0.38, 9.81, (t1 - takeoff / FPS)
    v0 = (z_land - z_to + 0.5 * g * T**2) / T
    pre, fl, post = t <= t0, (t > t0) & (t < t1), t >= t1
    z = np.empty(n)
    z[pre] = CubicHermiteSpline([0.0, 0.25, 0.6, t0], [0.30, 0.30, 0.24, z_to], [0, 0, 0, v0])(t[pre])
    tau = t[fl] - t0
    z[fl] = z_to + v0 * tau - 0.5 * g * tau**2
    z[post] = CubicHermiteSpline([t1, t1 + 0.25, t[-1] + 1e-9], [z_land, 0.27, 0.30], [v0 - g * T, 0, 0])(t[post])
    rot = Rotation.from_euler("z", (turn * np.clip((t - t0) / T, 0, 1))[:, None])
    pos = np.stack([0 * t, 0 * t, z], -1)
    nominal = feet_body(ROBOT, ROBOT.default_pose)
    nominal[:, 2] = 0.0
    nominal[1] += [0.146, 0.03, 0.0]
    before = nominal + [0, 0, R_FOOT]
    after = Rotation.from_euler("z", turn).apply(nominal) + [0, 0, R_FOOT]
    feet = np.where(pre[:, None, None], before, after)
    s = ((t[fl] - t0) / T)[:, None, None]                 # in flight: body-frame feet drawn up and across
    body = (1 - s) * (before - pos[takeoff]) + s * Rotation.from_euler("z", turn).inv().apply(after - [0, 0, z_land])
    body[..., 2] += 0.08 * np.sin(np.pi * s[..., 0])
    feet[fl] = np.einsum("nij,nkj->nki", rot[fl].as_matrix(), body) + pos[fl][:, None]
    quat = rot.as_quat(scalar_first=True)
    ik = ik_world(LOOSE, feet, pos, quat)
    assert ik.ok.all()
    return pos, quat, ik.q


def straight_knee_reach(n=41, peak=20, thigh=-0.6, calf=-0.70):
    """Stand on three legs while FR reaches forward through the air, its knee straightening to `calf`
    (0.14 rad straighter than the Go2 allows) at frame `peak`; hip 0 throughout."""
    pos = np.tile([0.0, 0.0, 0.30], (n, 1))
    quat = np.tile([1.0, 0, 0, 0], (n, 1))
    nominal = feet_body(ROBOT, ROBOT.default_pose)
    nominal[:, 2] = R_FOOT - 0.30
    nominal[:, 1] = ROBOT.hip_offset[:, 1] + ROBOT.thigh_offset[:, 1]  # under the thigh joints: hips at 0
    q = np.tile(ik_world(ROBOT, nominal[None] + pos[:1, None], pos[:1], quat[:1]).q, (n, 1))
    k = np.arange(n)
    s = np.where(np.abs(k - peak) < peak - 9, np.sin(np.pi * (k - 10) / (2 * (peak - 10))) ** 2, 0.0)
    q[:, 1] += s * (thigh - q[:, 1])
    q[:, 2] += s * (calf - q[:, 2])
    return pos, quat, q


def spin_root(t, turn_rate=0.6):
    """Trotting in place while turning left at `turn_rate` rad/s."""
    yaw = turn_rate * t
    return np.stack([0 * t, 0 * t, 0.30 + 0 * t], -1), Rotation.from_euler("z", yaw[:, None])


# ---------------------------------------------------------------- the real files

@pytest.mark.parametrize("name", ["dog_pace.txt", "dog_trot.txt"])
def test_real_gait_file_imports(name, tmp_path):
    path = DATA / name
    frames = raw_frames(path)
    clip = load_motion(path, ROBOT)                        # Laikago, assumed for motion_imitation files
    report = quality_report(clip, ROBOT)
    s = clip.retarget_settings

    assert clip.num_frames == len(frames) and clip.fps == pytest.approx(1 / 0.01667)
    assert clip.loop_mode == "wrap" and clip.cycle_offset_position and not clip.cycle_offset_rotation
    assert s["source_robot"] == "laikago" and s["method"] == "joints"
    # Clamping: exactly the frames the file puts past a Go2 limit (none in these two gaits)
    expected = (excess_of(go2_angles(frames)) > 1e-4).any(axis=1).sum()
    assert report["clamping"]["clamped_frames"] == expected == 0
    assert report["clamping"]["source_frames"] == len(frames)
    assert report["clamping"]["planted_foot_missed_frames"] == 0
    # Standing height: the file's, scaled above the toe-centre plane, and a Go2's (0.3-0.4 m)
    height = LAIKAGO_SCALE * (frames[:, 2] - LAIKAGO_TOE) + R_FOOT + s["ground_shift"]
    np.testing.assert_allclose(clip.root_pos[:, 2], height, atol=1e-6)
    assert abs(s["ground_shift"]) < 0.01 and 0.33 < clip.root_pos[:, 2].mean() < 0.40
    # One cycle's displacement and speed: the file's, scaled
    disp = LAIKAGO_SCALE * (frames[-1, :2] - frames[0, :2])
    np.testing.assert_allclose(report["cycle"]["displacement_m"], disp, atol=1e-6)
    assert report["cycle"]["mean_speed_m_s"] == pytest.approx(np.linalg.norm(disp) / clip.duration, rel=1e-6)
    assert 0.8 < report["cycle"]["mean_speed_m_s"] < 1.6
    # The feet follow from the stored angles, stand on the ground and do not skate in stance
    np.testing.assert_allclose(clip.foot_pos, feet_world(ROBOT, clip.root_pos, clip.root_quat, clip.dof_pos), atol=1e-9)
    assert np.all(clip.dof_pos >= ROBOT.lower) and np.all(clip.dof_pos <= ROBOT.upper)
    assert clip.foot_pos[..., 2].min() >= R_FOOT - 1e-9
    assert clip.foot_contact.any(axis=0).all() and stance_speed(clip) < 0.01
    text = format_report(report)
    assert "0 of %d source frames" % len(frames) in text and "position" in text

    write_clip(clip, tmp_path / "gait.h5")
    back = read_clip(tmp_path / "gait.h5", ROBOT)
    assert (back.loop_mode, back.cycle_offset_position, back.cycle_offset_rotation) == ("wrap", True, False)


@pytest.mark.parametrize("name", ["dog_pace.txt", "dog_trot.txt"])
def test_both_methods_agree_on_a_real_file(name):
    """By joints and by scaled feet + Go2 IK, the same file gives nearly the same feet. They differ
    where the legs do: the Go2's hip sits 9.6 cm beside its leg plane, the Laikago's 3.3 cm, so a hip
    turned in by 0.2 rad drops a Go2 foot ~1.5 cm more by joints than the Laikago's (scaled) drops."""
    path = DATA / name
    opts = dict(plant_feet=False, ground_align=False)
    joints = load_motion(path, ROBOT, **opts)
    feet = load_motion(path, ROBOT, method="feet", **opts)
    assert feet.retarget_settings["method"] == "feet" and feet.retarget_settings["clamping"]["clamped_frames"] == 0
    a, b = feet_body(ROBOT, joints.dof_pos), feet_body(ROBOT, feet.dof_pos)
    diff = np.abs(a - b)
    assert diff[..., 0].max() < 0.002 and diff[..., 1].max() < 0.006 and diff[..., 2].max() < 0.03
    assert np.linalg.norm(a - b, axis=-1).mean() < 0.015
    # The feet method puts the Go2's hip centre where the Laikago's is (scaled): the root moves by
    # the scaled offset between the file's root point and the Laikago's hip centre.
    rot = Rotation.from_quat(joints.root_quat, scalar_first=True)
    np.testing.assert_allclose(feet.root_pos - joints.root_pos, rot.apply(LAIKAGO_SCALE * LAIKAGO_HIP_CENTRE),
                               atol=1e-6)
    # With planting and ground alignment the world feet still agree within a few cm
    j2, f2 = load_motion(path, ROBOT), load_motion(path, ROBOT, method="feet")
    world = np.linalg.norm(j2.foot_pos - f2.foot_pos, axis=-1)
    assert world.mean() < 0.025 and world.max() < 0.06


def test_feet_method_is_exact_for_the_robots_own_motions(tmp_path):
    """A Go2 motion read as the Go2 (go2.yaml's legs are the Go2's): feet placed and solved by IK give
    back the angles and root it was made from."""
    t = np.arange(121) / FPS
    pos, quat, q, _ = trot(t)
    rows = np.concatenate([pos, Rotation.from_quat(quat, scalar_first=True).as_quat(), q], 1)
    path = tmp_path / "trot_go2.csv"
    path.write_text("\n".join([",".join(["x", "y", "z", "qx", "qy", "qz", "qw", *ROBOT.joint_names])]
                              + [",".join(f"{v:.9f}" for v in row) for row in rows]) + "\n")
    clip = load_motion(path, ROBOT, method="feet", csv_fps=FPS, plant_feet=False)
    np.testing.assert_allclose(clip.dof_pos, q, atol=1e-6)
    np.testing.assert_allclose(clip.root_pos, pos, atol=1e-6)
    assert clip.retarget_settings["clamping"]["foot_target_missed_frames"] == 0


# ---------------------------------------------------------------- files of that library's other kinds

def test_hop_turn_calf_past_the_limit_is_clamped_and_reported(tmp_path):
    """The library's hop-turn stopped the import at frame 62 (FL_calf_joint 0.26 rad past the Go2
    limit, more than the old 0.1 rad tolerance): now it imports, clamped, with the excess reported."""
    pos, quat, q = hop_turn()
    excess = excess_of(q)
    frame, joint = np.unravel_index(excess.argmax(), excess.shape)
    assert (frame, ROBOT.joint_names[joint]) == (62, "FL_calf_joint") and 0.25 < excess.max() < 0.26
    clamped = (excess > 1e-4).any(axis=1)
    path = write_mi(tmp_path / "hop_turn.txt", *to_laikago(pos, quat, q), dt=1 / FPS, EnableCycleOffsetRotation=True)

    raw = load_motion(path, ROBOT, plant_feet=False)
    c = raw.retarget_settings["clamping"]
    assert c["clamped_frames"] == clamped.sum() == 4
    assert c["clamped_frames_per_joint"] == {"FL_calf_joint": 4}
    assert c["max_excess_rad"] == pytest.approx(excess.max(), abs=1e-5)
    assert (c["max_excess_joint"], c["max_excess_frame"]) == ("FL_calf_joint", 62)
    # the clamped angle is the limit; the other angles are the file's; the feet follow from them
    np.testing.assert_allclose(raw.dof_pos[62, joint], CALF_LIMIT, atol=1e-12)
    np.testing.assert_allclose(np.delete(raw.dof_pos, joint, axis=1), np.delete(q, joint, axis=1), atol=2e-5)
    np.testing.assert_allclose(raw.dof_pos[~clamped], q[~clamped], atol=2e-5)
    np.testing.assert_allclose(raw.foot_pos, feet_world(ROBOT, raw.root_pos, raw.root_quat, raw.dof_pos), atol=1e-9)

    clip = load_motion(path, ROBOT)                        # with contacts and planting, as the CLI runs it
    report = quality_report(clip, ROBOT)
    assert report["clamping"]["clamped_frames"] == 4 and report["joint_limit_violation_frames"] == 0
    assert report["cycle"]["heading_change_deg"] == pytest.approx(np.degrees(0.5), abs=0.01)
    assert clip.cycle_offset_rotation and clip.loop_mode == "wrap"
    assert "0.255 rad (14.6 deg), FL_calf_joint, frame 62" in format_report(report)

    by_feet = load_motion(path, ROBOT, method="feet").retarget_settings["clamping"]
    assert (by_feet["max_excess_joint"], by_feet["max_excess_frame"]) == ("FL_calf_joint", 62)
    assert by_feet["foot_target_missed_frames"] >= 1 and by_feet["max_foot_miss_foot"] == "FL_foot"


@pytest.mark.parametrize("method", ["joints", "feet"])
def test_near_straight_knee_is_clamped(tmp_path, method):
    pos, quat, q = straight_knee_reach()
    excess = excess_of(q)
    assert excess.max() == pytest.approx(-0.70 - CALF_LIMIT) and np.argmax(excess[:, 2]) == 20
    path = write_mi(tmp_path / "reach.txt", *to_laikago(pos, quat, q), dt=1 / FPS, loop="Clamp")
    clip = load_motion(path, ROBOT, method=method, plant_feet=False, ground_align=False)
    c = clip.retarget_settings["clamping"]
    assert clip.loop_mode == "none" and not clip.cycle_offset_position
    assert (c["max_excess_joint"], c["max_excess_frame"]) == ("FR_calf_joint", 20)
    assert list(c["clamped_frames_per_joint"]) == ["FR_calf_joint"]
    hip_to_thigh = ROBOT.hip_offset[0] + ROBOT.thigh_offset[0]
    foot = clip.foot_pos[20, 0] - clip.root_pos[20] - hip_to_thigh
    if method == "joints":
        # clamped to the limit, and the foot where the clamped angles put it
        assert c["clamped_frames"] == (excess > 1e-4).any(axis=1).sum()
        assert c["max_excess_rad"] == pytest.approx(excess.max(), abs=1e-5)
        assert clip.dof_pos[20, 2] == pytest.approx(CALF_LIMIT, abs=1e-12)
        np.testing.assert_allclose(foot[[0, 2]], planar_foot(-0.6, CALF_LIMIT), atol=1e-5)
    else:
        # the scaled Laikago foot, 0.2135 + 0.2125 m legs, is a little further out than the Go2's
        # -0.70 knee: the IK's excess is about the same, and the foot stops on the line to the
        # target, short of it by what the straightest Go2 knee lacks in length
        target = LAIKAGO_SCALE * planar_foot(-0.6, -0.70, LAIKAGO_L1, LAIKAGO_L2)
        assert c["max_excess_rad"] == pytest.approx(excess.max(), abs=0.01)
        assert c["max_foot_miss_m"] == pytest.approx(np.linalg.norm(target) - reach(CALF_LIMIT), abs=1e-4)
        assert c["max_foot_miss_frame"] == 20 and c["max_foot_miss_foot"] == "FR_foot"
        np.testing.assert_allclose(foot[[0, 2]] / np.linalg.norm(foot[[0, 2]]), target / np.linalg.norm(target),
                                   atol=1e-6)
        assert abs(foot[1]) < 1e-9
    np.testing.assert_allclose(clip.foot_pos, feet_world(ROBOT, clip.root_pos, clip.root_quat, clip.dof_pos), atol=1e-9)


def test_spin_turns_each_cycle(tmp_path):
    """A trot in place turning 0.6 rad per 1 s cycle, EnableCycleOffsetRotation on: the clip keeps the
    flags, and one cycle's heading change is the file's (motion_imitation's own computation)."""
    t = np.arange(61) / FPS
    pos, quat, q, _ = trot(t, root=spin_root)
    src_pos, src_quat, src_q = to_laikago(pos, quat, q)
    path = write_mi(tmp_path / "spin.txt", src_pos, src_quat, src_q, dt=1 / FPS, EnableCycleOffsetRotation=True)
    # motion_imitation: heading of (last rotation * first rotation^-1), Laikago base offset and all
    turn = Rotation.from_quat(src_quat[-1]) * Rotation.from_quat(src_quat[0]).inv()
    heading = np.arctan2(*turn.apply([1.0, 0, 0])[[1, 0]])
    assert heading == pytest.approx(0.6, abs=1e-5)

    clip = load_motion(path, ROBOT)
    assert (clip.loop_mode, clip.cycle_offset_position, clip.cycle_offset_rotation) == ("wrap", True, True)
    delta, dheading = cycle_delta(clip.root_pos, clip.root_quat)
    assert dheading == pytest.approx(heading, abs=1e-5) and np.abs(delta).max() < 1e-5
    report = quality_report(clip, ROBOT)
    assert report["cycle"]["heading_change_deg"] == pytest.approx(np.degrees(0.6), abs=1e-3)
    assert report["cycle"]["offset_rotation"] and report["clamping"]["clamped_frames"] == 0
    assert "position, heading" in format_report(report)
    write_clip(clip, tmp_path / "spin.h5")
    back = read_clip(tmp_path / "spin.h5", ROBOT)
    assert (back.cycle_offset_position, back.cycle_offset_rotation) == (True, True)


# ---------------------------------------------------------------- the clip schema and keyframes

def test_clips_without_cycle_attributes_read_as_no_offsets(tmp_path):
    clip = load_motion(DATA / "dog_trot.txt", ROBOT)
    path = tmp_path / "old.h5"
    write_clip(clip, path)
    with h5py.File(path, "a") as f:
        del f.attrs["cycle_offset_position"], f.attrs["cycle_offset_rotation"]
    back = read_clip(path, ROBOT)
    assert (back.cycle_offset_position, back.cycle_offset_rotation) == (False, False)
    with h5py.File(path, "a") as f:
        f.attrs["cycle_offset_rotation"] = "yes"
    with pytest.raises(InputError, match=r"old\.h5: attribute 'cycle_offset_rotation' is 'yes', expected true or "):
        read_clip(path, ROBOT)


def test_keyframes_cycle_offsets(tmp_path):
    base = (Path(__file__).resolve().parent / "bad_inputs" / "good" / "stand.yaml").read_text()
    assert "\nloop:" not in base
    path = tmp_path / "loop.yaml"
    path.write_text(base.replace("keyframes:", "loop: wrap\ncycle_offset_rotation: true\nkeyframes:", 1))
    clip = load_keyframes(path, ROBOT)
    assert (clip.loop_mode, clip.cycle_offset_position, clip.cycle_offset_rotation) == ("wrap", False, True)
    path.write_text(base.replace("keyframes:", "cycle_offset_position: true\nkeyframes:", 1))
    with pytest.raises(InputError, match=r"loop\.yaml: cycle_offset_position: applies to repetitions: give loop: wrap"):
        load_keyframes(path, ROBOT)
    path.write_text(base.replace("keyframes:", "loop: wrap\ncycle_offset_position: 1\nkeyframes:", 1))
    with pytest.raises(InputError, match=r"loop\.yaml: cycle_offset_position: expected true or false"):
        load_keyframes(path, ROBOT)


# ---------------------------------------------------------------- broken real files are still refused

def _spoil(edit):
    def spoil(doc):
        edit(doc["Frames"])
        return json.dumps(doc)
    return spoil


def _set(frame, col, value):
    return _spoil(lambda frames: frames[frame].__setitem__(col, value))


BROKEN = {
    "NaN": (_set(5, 9, float("nan")), r"frame 5: field 'Frames' column 9 \(FR calf\) is NaN, not a finite number"),
    "a number dropped": (_spoil(lambda frames: frames[7].pop()),
                         r"frame 7: field 'Frames' has 18 numbers, expected 19"),
    "non-unit quaternion": (_spoil(lambda f: f[3].__setitem__(slice(3, 7), [1.1 * v for v in f[3][3:7]])),
                            r"frame 3: field 'Frames' root quaternion is not unit length \(norm 1\.1000\)"),
    "zero quaternion": (_spoil(lambda frames: frames[4].__setitem__(slice(3, 7), [0, 0, 0, 0])),
                        r"frame 4: field 'Frames' root quaternion has zero length"),
    "degrees": (_spoil(lambda frames: [f.__setitem__(slice(7, 19), list(np.degrees(f[7:19]))) for f in frames]),
                r"frame 0: joint 'FR_\w+' = .* rad outside .*, more than the 1 rad that is clamped: angles in "
                r"degrees"),
    "not upright": (_spoil(lambda frames: [f.__setitem__(slice(3, 7), [0, 0, 0, 1]) for f in frames]),
                    r"frame 0: field 'root_quat' is 90 deg from upright after converting from source robot 'laikago'"),
    "garbage": (lambda doc: json.dumps(doc)[:900], r"malformed JSON at line 1 column"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_real_file_is_refused(tmp_path, case):
    spoil, message = BROKEN[case]
    path = tmp_path / "dog_trot_broken.txt"
    path.write_text(spoil(json.loads((DATA / "dog_trot.txt").read_text())))
    for method in ("joints", "feet"):
        with pytest.raises(InputError, match=r"dog_trot_broken\.txt: " + message) as err:
            load_motion(path, ROBOT, method=method)
        assert "\n" not in str(err.value)


def test_max_clamp_is_the_boundary_of_clamping(tmp_path):
    """A knee bent 0.9 rad the wrong way past the limit is clamped; 1.1 rad is a file for another robot."""
    pos, quat, q = straight_knee_reach()
    for past, refused in ((0.9, False), (1.1, True)):
        q2 = q.copy()
        q2[5, 2] = CALF_LIMIT + past
        path = write_mi(tmp_path / f"knee_{past}.txt", *to_laikago(pos, quat, q2), dt=1 / FPS)
        if refused:
            with pytest.raises(InputError, match=r"frame 5: joint 'FR_lower_leg_2_upper_leg_joint' = .* gives "
                                                 r"FR_calf_joint = 0\.262 rad, 1\.10 rad outside"):
                load_motion(path, ROBOT)
        else:
            c = load_motion(path, ROBOT, plant_feet=False).retarget_settings["clamping"]
            assert c["max_excess_rad"] == pytest.approx(0.9, abs=1e-5) and c["max_excess_frame"] == 5


def test_method_setting_and_leg_geometry_are_checked(tmp_path):
    with pytest.raises(InputError, match=r"dog_trot\.txt: import setting 'method' is 'ik', expected one of "
                                         r"joints, feet"):
        load_motion(DATA / "dog_trot.txt", ROBOT, method="ik")
    no_legs = tmp_path / "no_legs.yaml"
    no_legs.write_text(MAPPING.split("legs:")[0] + "foot_radius: 0.02\nstand_height: 0.27\n")
    with pytest.raises(InputError, match=r"needs the source's leg geometry: mapping no_legs\.yaml has no 'legs'"):
        load_motion(DATA / "dog_trot.txt", ROBOT, source_robot=no_legs, method="feet", upright_tolerance_deg=180.0)
    bad = tmp_path / "bad_legs.yaml"
    bad.write_text(MAPPING.replace("  calf_length: 0.2\n", "  calf_length: 0.25\n"))
    with pytest.raises(InputError, match=r"bad_legs\.yaml: legs\.thigh_length \+ legs\.calf_length = 0\.4500 m, "
                                         r"but leg_length is 0\.4 m"):
        load_mapping(bad, ROBOT)
    bad.write_text(MAPPING.replace("RL: [-0.195731, 0.044814, -0.000515]", "RL: [-0.195731, 0.044814]"))
    with pytest.raises(InputError, match=r"bad_legs\.yaml: legs\.hip_offset\.RL is \[-0\.195731, 0\.044814\], "
                                         r"expected \[x, y, z\]"):
        load_mapping(bad, ROBOT)
    assert np.allclose(load_mapping("laikago", ROBOT).legs.hip_offset.mean(axis=0), LAIKAGO_HIP_CENTRE, atol=1e-6)


def test_feet_that_float_are_told_and_auto_retargets_by_the_feet():
    # motion_imitation's side steps, mapped joint for joint, lift every foot off the ground (above the contact
    # height) for a while the base does not fall: Laikago's legs are longer than the Go2's. The base's own second
    # difference over that stretch says so; `auto` then takes the feet's paths instead, which keep a foot down.
    from retarget.quality import floating_feet, flight_segments

    path = DATA / "real" / "sidesteps.txt"
    by_joints = load_motion(path, ROBOT, method="joints")
    report = quality_report(by_joints, ROBOT)
    a, b = max(flight_segments(by_joints.foot_contact), key=lambda s: s[1] - s[0])
    assert (b - a) / by_joints.fps >= 0.1
    z = by_joints.root_pos[a + 1:b - 1, 2]
    accel = np.mean(np.diff(z, 2)) * by_joints.fps ** 2
    assert abs(accel + 9.81) > 3.0                                   # not a ballistic flight
    assert floating_feet(report) is not None and "the feet float" in format_report(report)
    auto = load_motion(path, ROBOT)
    assert auto.retarget_settings["method"] == "feet"
    assert auto.retarget_settings["method_chosen"].startswith("feet (auto)")
    assert auto.foot_contact.any(axis=1).all()                       # a foot on the ground in every frame
    assert floating_feet(quality_report(auto, ROBOT)) is None
    # The gaits whose joints keep the feet on the ground keep their joints.
    trot_clip = load_motion(DATA / "dog_trot.txt", ROBOT)
    assert trot_clip.retarget_settings["method"] == "joints"
    assert trot_clip.retarget_settings["method_chosen"] == "joints (auto)"
