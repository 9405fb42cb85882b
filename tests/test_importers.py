"""Importers for motion_imitation JSON and CSV files (retarget/formats, retarget/mapping.py,
retarget/importer.py). Inputs are made here from synthetic Go2 motions built with the leg IK, written
out in Laikago, A1 and Go2 conventions, so the right answer is known exactly. No genesis, no torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from retarget.clip import Clip, read_clip, sha256_of, write_clip
from retarget.errors import InputError
from retarget.formats import detect_format
from retarget.importer import load_motion
from retarget.kinematics import feet_body, feet_world, ik_world
from retarget.mapping import load_mapping
from retarget.robot import PROJECT_ROOT, load_robot

ROBOT = load_robot()
R_FOOT = ROBOT.foot_radius

# The conventions, written out independently of configs/mappings/*.yaml so the files are checked too.
LAIKAGO_SIGN = np.array([-1, 1, 1, 1, 1, 1, -1, 1, 1, 1, 1, 1], float)   # right hips turn about -x
LAIKAGO_OFFSET = np.tile([0.0, 0.5989, -0.5112], 4)                      # Go2 = sign * Laikago + offset
LAIKAGO_ROT = Rotation.from_euler("xyz", [90, 0, 90], degrees=True)      # stored = attitude * this
LAIKAGO_SCALE, LAIKAGO_TOE = ROBOT.leg_length / 0.5032, 0.03
A1_SCALE, A1_TOE = ROBOT.leg_length / 0.4, 0.02
LAIKAGO_NAMES = [f"{leg}_{j}" for leg in ("FR", "FL", "RR", "RL")
                 for j in ("hip_motor_2_chassis_joint", "upper_leg_2_hip_motor_joint", "lower_leg_2_upper_leg_joint")]


# ---------------------------------------------------------------- synthetic Go2 motions

def _root(t):
    """A trotting base: forward at 0.5 m/s, turning slowly, with a little bob and pitch."""
    pos = np.stack([0.5 * t, 0.02 * np.sin(2 * np.pi * t), 0.30 + 0.005 * np.sin(8 * np.pi * t)], -1)
    rot = Rotation.from_euler("ZYX", np.stack([0.1 * t, 0.03 * np.sin(4 * np.pi * t), 0 * t], -1))
    return pos, rot


def trot(t, period=0.5, duty=0.6, lift=0.06, root=_root):
    """Go2 trot (root_pos, root_quat wxyz, dof_pos, stance mask) at times t: stance feet fixed in the
    world under their hips at mid-stance, swing feet on an arc to the next foothold. `root(t)` gives
    the base's (positions, Rotation)."""
    nominal = feet_body(ROBOT, ROBOT.default_pose)
    nominal[:, 2] = R_FOOT - 0.30
    offsets = np.array([0.0, 0.5, 0.5, 0.0])             # FR, FL, RR, RL: diagonal pairs
    cyc = t[:, None] / period + offsets                  # (N, 4)
    k, phase = np.floor(cyc), cyc - np.floor(cyc)

    def foothold(kk):                                    # world foothold of cycle kk, (N, 4, 3)
        tm = (kk + duty / 2 - offsets) * period
        p, r = root(tm.reshape(-1))
        f = r.apply(np.tile(nominal, (len(t), 1))) + p
        f[:, 2] = R_FOOT
        return f.reshape(len(t), 4, 3)

    here, nxt = foothold(k), foothold(k + 1)
    s = np.clip((phase - duty) / (1 - duty), 0, 1)[..., None]
    ease = 0.5 - 0.5 * np.cos(np.pi * s)
    feet = np.where(phase[..., None] < duty, here, (1 - ease) * here + ease * nxt)
    feet[..., 2] += lift * np.sin(np.pi * s[..., 0]) * (phase >= duty)
    pos, rot = root(t)
    quat = rot.as_quat(scalar_first=True)
    ik = ik_world(ROBOT, feet, pos, quat)
    assert ik.ok.all()
    return pos, quat, ik.q, phase < duty


def hop(t):
    """Hop in place: stand, crouch, a 0.46 s flight (apex 0.115 m above standing), land, recover."""
    z = np.full_like(t, 0.30)
    crouch = (t > 0.2) & (t < 0.55)
    z[crouch] = 0.30 - 0.06 * np.sin(np.pi * (t[crouch] - 0.2) / 0.35)
    tau = t - 0.55
    flight = (tau > 0) & (tau < 2 * 1.5 / 9.81)
    z[flight] = 0.30 + 1.5 * tau[flight] - 4.905 * tau[flight] ** 2
    land = (tau >= 2 * 1.5 / 9.81) & (t < 1.3)
    z[land] = 0.30 - 0.04 * np.sin(np.pi * (t[land] - t[land][0]) / (1.3 - t[land][0]))
    pos = np.stack([0 * t, 0 * t, z], -1)
    quat = np.tile([1.0, 0, 0, 0], (len(t), 1))
    nominal = feet_body(ROBOT, ROBOT.default_pose)
    nominal[:, 2] = R_FOOT - 0.30
    feet = pos[:, None, :] + nominal
    feet[..., 2] = np.maximum(feet[..., 2], R_FOOT)
    ik = ik_world(ROBOT, feet, pos, quat)
    assert ik.ok.all()
    return pos, quat, ik.q


# ---------------------------------------------------------------- writers in source conventions

def to_laikago(pos, quat, q):
    src_pos = pos / LAIKAGO_SCALE
    src_pos[:, 2] = (pos[:, 2] - R_FOOT) / LAIKAGO_SCALE + LAIKAGO_TOE
    src_quat = (Rotation.from_quat(quat, scalar_first=True) * LAIKAGO_ROT).as_quat()  # x y z w
    return src_pos, src_quat, (q - LAIKAGO_OFFSET) * LAIKAGO_SIGN


def to_a1(pos, quat, q):
    src_pos = pos / A1_SCALE
    src_pos[:, 2] = (pos[:, 2] - R_FOOT) / A1_SCALE + A1_TOE
    return src_pos, Rotation.from_quat(quat, scalar_first=True).as_quat(), q.copy()


def write_mi(path, pos, quat_xyzw, joints, dt, extra_cols=0, loop="Wrap", **keys):
    frames = np.concatenate([pos, quat_xyzw, joints, np.zeros((len(pos), extra_cols))], 1)
    doc = {"LoopMode": loop, "FrameDuration": dt, "EnableCycleOffsetPosition": True,
           "EnableCycleOffsetRotation": False, **keys, "Frames": np.round(frames, 6).tolist()}
    Path(path).write_text(json.dumps(doc, indent=1))
    return path


def write_csv(path, pos, quat_xyzw, joints, joint_names, time=None, order=None):
    cols = ["x", "y", "z", "qx", "qy", "qz", "qw", *joint_names]
    data = np.concatenate([pos, quat_xyzw, joints], 1)
    if time is not None:
        cols, data = ["time", *cols], np.concatenate([time[:, None], data], 1)
    order = np.arange(len(cols)) if order is None else np.asarray(order)
    lines = [",".join(np.array(cols)[order])] + [",".join(f"{v:.7f}" for v in row[order]) for row in data]
    Path(path).write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def trot60():
    t = np.arange(121) / 60.0
    return t, trot(t)


@pytest.fixture
def laikago_file(tmp_path, trot60):
    t, (pos, quat, q, _) = trot60
    return write_mi(tmp_path / "trot_laikago.txt", *to_laikago(pos, quat, q), dt=1 / 60)


# ---------------------------------------------------------------- checks on an imported clip

def quat_angle_deg(a, b):
    ra, rb = Rotation.from_quat(a, scalar_first=True), Rotation.from_quat(b, scalar_first=True)
    return np.degrees((ra.inv() * rb).magnitude())


def stance_speed(clip: Clip) -> float:
    """Largest foot speed between two consecutive frames that are both in contact (m/s)."""
    c = clip.foot_contact.astype(bool)
    both = c[1:] & c[:-1]
    step = np.linalg.norm(np.diff(clip.foot_pos, axis=0), axis=-1) * clip.fps
    return float(step[both].max())


def check_clean(clip: Clip):
    assert clip.foot_contact.mean() > 0.3, "stance detected"
    assert stance_speed(clip) < 0.02                           # stance feet do not skate
    assert clip.foot_pos[..., 2].min() >= R_FOOT - 0.005       # nor go into the ground
    np.testing.assert_allclose(clip.foot_pos, feet_world(ROBOT, clip.root_pos, clip.root_quat, clip.dof_pos),
                               atol=1e-9)
    assert np.all(clip.dof_pos >= ROBOT.lower - 1e-9) and np.all(clip.dof_pos <= ROBOT.upper + 1e-9)


# ---------------------------------------------------------------- round trips

def test_laikago_motion_imitation_round_trip(laikago_file, trot60):
    t, (pos, quat, q, stance) = trot60
    clip = load_motion(laikago_file, ROBOT, source_robot="laikago")
    assert clip.num_frames == len(t) and clip.fps == pytest.approx(60.0)
    assert clip.loop_mode == "wrap" and clip.joint_names == ROBOT.joint_names
    np.testing.assert_allclose(clip.dof_pos, q, atol=2e-3)
    np.testing.assert_allclose(clip.root_pos, pos, atol=1e-4)
    assert quat_angle_deg(clip.root_quat, quat).max() < 0.01
    check_clean(clip)
    # contacts agree with the true stance except around touch-down / lift-off
    assert np.mean(clip.foot_contact.astype(bool) == stance) > 0.9
    s = clip.retarget_settings
    assert s["source_robot"] == "laikago" and s["format"] == "motion_imitation"
    assert abs(s["ground_shift"]) < 1e-3   # the leg-length scaling alone puts the feet on the ground
    assert s["scale"] == pytest.approx(LAIKAGO_SCALE)
    assert clip.source_file == laikago_file.name and clip.source_sha256 == sha256_of(laikago_file)
    write_clip(clip, laikago_file.with_suffix(".h5"))          # the schema's own validation accepts it
    back = read_clip(laikago_file.with_suffix(".h5"), ROBOT)
    assert back.retarget_settings == s and back.loop_mode == "wrap"


def test_laikago_is_the_default_for_motion_imitation_files(laikago_file, trot60):
    clip = load_motion(laikago_file, ROBOT)
    assert clip.retarget_settings["source_robot"] == "laikago"
    assert clip.retarget_settings["source_robot_assumed"] is True


def test_a1_amp_for_hardware_frames_resampled(tmp_path, trot60):
    """61-number AMP_for_hardware frames (A1 by default), resampled from 60 to 50 frames/s."""
    t, (pos, quat, q, _) = trot60
    path = write_mi(tmp_path / "trot_a1.txt", *to_a1(pos, quat, q), dt=1 / 60, extra_cols=42, MotionWeight=0.5)
    clip = load_motion(path, ROBOT, fps=50)
    assert clip.retarget_settings["source_robot"] == "a1"
    assert clip.retarget_settings["variant"] == "AMP_for_hardware"
    t50 = np.arange(clip.num_frames) / 50.0
    assert clip.num_frames == 101
    pos50, quat50, q50, _ = trot(t50)
    np.testing.assert_allclose(clip.dof_pos, q50, atol=0.01)   # linear interpolation of a 60 Hz trot
    np.testing.assert_allclose(clip.root_pos, pos50, atol=5e-4)
    assert quat_angle_deg(clip.root_quat, quat50).max() < 0.05
    check_clean(clip)


def test_csv_with_time_column_and_any_column_order(tmp_path, trot60):
    t, (pos, quat, q, _) = trot60
    xyzw = Rotation.from_quat(quat, scalar_first=True).as_quat()
    order = np.random.default_rng(0).permutation(20)
    path = write_csv(tmp_path / "trot.csv", pos, xyzw, q, ROBOT.joint_names, time=1.5 + t, order=order)
    clip = load_motion(path, ROBOT)                            # CSV: Go2 names, Go2 conventions
    assert clip.fps == pytest.approx(60.0, rel=1e-6)
    np.testing.assert_allclose(clip.dof_pos, q, atol=2e-3)
    np.testing.assert_allclose(clip.root_pos, pos, atol=1e-4)
    check_clean(clip)


def test_csv_fps_option_and_laikago_joint_names(tmp_path, trot60):
    t, (pos, quat, q, _) = trot60
    src_pos, src_quat, src_q = to_laikago(pos, quat, q)
    path = write_csv(tmp_path / "trot_laikago.csv", src_pos, src_quat, src_q, LAIKAGO_NAMES)
    clip = load_motion(path, ROBOT, source_robot="laikago", csv_fps=60)
    assert clip.fps == 60
    np.testing.assert_allclose(clip.dof_pos, q, atol=2e-3)
    assert load_motion(path, ROBOT, source_robot="laikago").fps == 50   # the default without time or option


def test_headerless_csv_is_positional(tmp_path, trot60):
    t, (pos, quat, q, _) = trot60
    rows = np.concatenate([pos, Rotation.from_quat(quat, scalar_first=True).as_quat(), q], 1)
    path = tmp_path / "beyondmimic.csv"
    np.savetxt(path, rows, delimiter=",", fmt="%.7f")
    clip = load_motion(path, ROBOT, csv_fps=60)
    np.testing.assert_allclose(clip.dof_pos, q, atol=2e-3)


# ---------------------------------------------------------------- joint order, scaling

@pytest.mark.parametrize("column, go2_joint, sign", [(0, "FR_hip_joint", -1), (4, "FL_thigh_joint", 1),
                                                     (8, "RR_calf_joint", 1), (9, "RL_hip_joint", 1),
                                                     (10, "RL_thigh_joint", 1)])
def test_joint_order_laikago_columns(tmp_path, trot60, column, go2_joint, sign):
    """Perturb one source column; exactly the right Go2 joint moves, with the right sign."""
    t, (pos, quat, q, _) = trot60
    src_pos, src_quat, src_q = to_laikago(pos, quat, q)
    base = load_motion(write_mi(tmp_path / "a.txt", src_pos, src_quat, src_q, 1 / 60), ROBOT, plant_feet=False)
    src_q[:, column] += 0.1
    moved = load_motion(write_mi(tmp_path / "b.txt", src_pos, src_quat, src_q, 1 / 60), ROBOT, plant_feet=False)
    delta = moved.dof_pos - base.dof_pos
    j = ROBOT.joint_names.index(go2_joint)
    np.testing.assert_allclose(delta[:, j], sign * 0.1, atol=1e-6)
    assert np.abs(np.delete(delta, j, axis=1)).max() < 1e-9


def test_joint_order_csv_by_name(tmp_path, trot60):
    t, (pos, quat, q, _) = trot60
    xyzw = Rotation.from_quat(quat, scalar_first=True).as_quat()
    names = list(ROBOT.joint_names)[::-1]                      # columns in reverse joint order
    base = load_motion(write_csv(tmp_path / "a.csv", pos, xyzw, q[:, ::-1], names), ROBOT, plant_feet=False)
    q2 = q[:, ::-1].copy()
    q2[:, names.index("RR_thigh_joint")] += 0.1
    moved = load_motion(write_csv(tmp_path / "b.csv", pos, xyzw, q2, names), ROBOT, plant_feet=False)
    delta = moved.dof_pos - base.dof_pos
    j = ROBOT.joint_names.index("RR_thigh_joint")
    np.testing.assert_allclose(delta[:, j], 0.1, atol=1e-6)
    assert np.abs(np.delete(delta, j, axis=1)).max() < 1e-6


@pytest.mark.parametrize("convert, scale, toe", [(to_laikago, LAIKAGO_SCALE, LAIKAGO_TOE), (to_a1, A1_SCALE, A1_TOE)])
def test_root_height_scaling_hop(tmp_path, convert, scale, toe):
    """Root heights scale with leg length above the foot-centre plane: the hop keeps its shape and the
    imported feet land on the ground without any ground shift."""
    t = np.arange(79) / 60.0
    pos, quat, q = hop(t)
    src_pos, src_quat, src_q = convert(pos, quat, q)
    name = "laikago" if convert is to_laikago else "a1"
    clip = load_motion(write_mi(tmp_path / f"hop_{name}.txt", src_pos, src_quat, src_q, 1 / 60, loop="Clamp"),
                       ROBOT, source_robot=name)
    assert clip.loop_mode == "none"
    np.testing.assert_allclose(clip.root_pos[:, 2], R_FOOT + scale * (src_pos[:, 2] - toe), atol=1e-5)
    np.testing.assert_allclose(clip.root_pos[:, 2], pos[:, 2], atol=1e-4)
    assert abs(clip.retarget_settings["ground_shift"]) < 1e-4
    apex = clip.root_pos[:, 2].max() - clip.root_pos[0, 2]
    assert apex == pytest.approx(scale * (src_pos[:, 2].max() - src_pos[0, 2]), abs=1e-5)
    assert apex == pytest.approx(0.1147, abs=1e-3)
    flight = clip.root_pos[:, 2] > 0.30 + 0.03
    assert flight.sum() > 10 and not clip.foot_contact[flight].any()
    check_clean(clip)


def test_ground_align_lifts_a_sunken_clip(tmp_path, trot60):
    t, (pos, quat, q, _) = trot60
    src_pos, src_quat, src_q = to_laikago(pos, quat, q)
    src_pos[:, 2] -= 0.02                                      # the file's feet 2 cm into the ground
    clip = load_motion(write_mi(tmp_path / "low.txt", src_pos, src_quat, src_q, 1 / 60), ROBOT)
    assert clip.retarget_settings["ground_shift"] == pytest.approx(0.02 * LAIKAGO_SCALE, abs=2e-4)
    np.testing.assert_allclose(clip.root_pos, pos, atol=2e-4)
    check_clean(clip)


# ---------------------------------------------------------------- format detection, dispatch

def test_format_detected_by_content(tmp_path, laikago_file, trot60):
    for name in ("motion.json", "motion.txt", "motion.dat"):
        p = tmp_path / name
        p.write_bytes(laikago_file.read_bytes())
        assert detect_format(p) == "motion_imitation"
    t, (pos, quat, q, _) = trot60
    xyzw = Rotation.from_quat(quat, scalar_first=True).as_quat()
    csv_as_txt = write_csv(tmp_path / "table.txt", pos, xyzw, q, ROBOT.joint_names)
    assert detect_format(csv_as_txt) == "csv"
    assert load_motion(csv_as_txt, ROBOT, csv_fps=60).num_frames == len(t)
    assert detect_format(tmp_path / "keys.yaml") == "keyframes"  # by name; not read here


def test_keyframes_dispatch(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("retarget.keyframes")
    fake.load_keyframes = lambda path, robot, fps=None: calls.append((Path(path).name, robot.name, fps)) or "clip"
    monkeypatch.setitem(sys.modules, "retarget.keyframes", fake)
    monkeypatch.setattr(sys.modules["retarget"], "keyframes", fake, raising=False)
    path = tmp_path / "flip.yaml"
    path.write_text("keyframes: []\n")
    assert load_motion(path, ROBOT, fps=50) == "clip"
    assert calls == [("flip.yaml", "go2", 50)]
    with pytest.raises(InputError, match="source-robot does not apply"):
        load_motion(path, ROBOT, source_robot="laikago")
    with pytest.raises(InputError, match=r"flip\.yaml: keyframe files give the go2's own joints and feet; "
                                         r"--method feet does not apply"):
        load_motion(path, ROBOT, method="feet")


def test_wrong_source_robot_is_caught_upright_check(tmp_path, laikago_file, trot60):
    with pytest.raises(InputError, match=r"trot_laikago\.txt: frame 0: field 'root_quat' is 90 deg from upright.*"
                                         r"source robot 'a1'.*--source-robot laikago"):
        load_motion(laikago_file, ROBOT, source_robot="a1")
    t, (pos, quat, q, _) = trot60
    a1_file = write_mi(tmp_path / "trot_a1.txt", *to_a1(pos, quat, q), dt=1 / 60)
    with pytest.raises(InputError, match=r"90 deg from upright.*'laikago' \(assumed for this format\)"
                                         r".*--source-robot a1"):
        load_motion(a1_file, ROBOT)


def test_resample_of_wrapping_clip_keeps_last_frame(laikago_file):
    """Clip.sample wrapped t = duration to frame 0, so resampling a 'wrap' clip lost its last frame."""
    clip = load_motion(laikago_file, ROBOT)
    again = clip.resample(120)
    np.testing.assert_allclose(again.root_pos[-1], clip.root_pos[-1], atol=1e-9)
    np.testing.assert_allclose(clip.sample(np.array([clip.duration + 0.5 / 60]))["root_pos"][0],
                               0.5 * (clip.root_pos[0] + clip.root_pos[1]), atol=1e-9)


def test_retarget_package_imports_neither_genesis_nor_torch():
    code = ("import sys, retarget.importer, retarget.formats, retarget.mapping; "
            "bad = [m for m in ('genesis', 'torch') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)


# ---------------------------------------------------------------- bad input: one line, file, frame, field

GOOD_FRAME = [0.0, 0.0, 0.44, 0.5, 0.5, 0.5, 0.5] + [0.0, 0.27, -0.86] * 4   # a Laikago standing


def mi_doc(frames=None, **over):
    doc = {"LoopMode": "Wrap", "FrameDuration": 0.02, "EnableCycleOffsetPosition": False,
           "EnableCycleOffsetRotation": False, "Frames": frames or [GOOD_FRAME] * 5}
    doc.update(over)
    return json.dumps(doc)


def frames_with(i, j, value, n=5):
    frames = [list(GOOD_FRAME) for _ in range(n)]
    frames[i][j] = value
    return frames


CSV_HEADER = "x,y,z,qx,qy,qz,qw," + ",".join(ROBOT.joint_names)
CSV_ROW = "0,0,0.3,0,0,0,1," + ",".join(f"{v}" for v in ROBOT.default_pose)

BAD_INPUTS = {
    "malformed JSON": ("m.txt", '{"LoopMode": "Wrap", "Frames": [[1, 2,]', r"m\.txt: malformed JSON at line 1 column"),
    "missing key": ("m.txt", json.dumps({"LoopMode": "Wrap", "FrameDuration": 0.02}), r"m\.txt: key 'Frames' missing"),
    "unknown key": ("m.txt", mi_doc(JointOrder=["a"]), r"m\.txt: unknown key 'JointOrder'"),
    "18 numbers": ("m.txt", mi_doc([GOOD_FRAME] * 3 + [GOOD_FRAME[:18]]),
                   r"m\.txt: frame 3: field 'Frames' has 18 numbers, expected 19 \(motion_imitation\) or 61"),
    "first frame 18 numbers": ("m.txt", mi_doc([GOOD_FRAME[:18]] * 3), r"frame 0: field 'Frames' has 18 numbers"),
    "NaN": ("m.txt", mi_doc(frames_with(2, 9, float("nan"))),
            r"m\.txt: frame 2: field 'Frames' column 9 \(FR calf\) is NaN, not a finite number"),
    "Infinity": ("m.txt", mi_doc(frames_with(4, 1, float("inf"))), r"frame 4: field 'Frames' column 1 \(root y\) is Infinity"),
    "string": ("m.txt", mi_doc(frames_with(3, 2, "abc")), r"frame 3: field 'Frames' column 2 \(root z\) is 'abc', not a number"),
    "non-number": ("m.txt", mi_doc(frames_with(1, 8, None)), r"frame 1: field 'Frames' column 8 \(FR thigh\) is null"),
    "zero FrameDuration": ("m.txt", mi_doc(FrameDuration=0), r"m\.txt: field 'FrameDuration' is 0, expected a positive"),
    "negative FrameDuration": ("m.txt", mi_doc(FrameDuration=-0.02), r"field 'FrameDuration' is -0\.02"),
    "bad LoopMode": ("m.txt", mi_doc(LoopMode="Forever"), r"field 'LoopMode' is 'Forever', expected 'Wrap' or 'Clamp'"),
    "zero quaternion": ("m.txt", mi_doc([GOOD_FRAME] * 3 + [GOOD_FRAME[:3] + [0, 0, 0, 0] + GOOD_FRAME[7:]]),
                        r"m\.txt: frame 3: field 'Frames' root quaternion has zero length"),
    "non-unit quaternion": ("m.txt", mi_doc(frames_with(1, 6, 0.0)),
                            r"frame 1: field 'Frames' root quaternion is not unit length \(norm 0\.866"),
    "one frame": ("m.txt", mi_doc([GOOD_FRAME]), r"m\.txt: field 'Frames' has 1 frame\(s\), a motion needs at least 2"),
    "degrees as radians": ("m.txt", mi_doc(frames_with(2, 11, 15.0)),
                           r"m\.txt: frame 2: joint 'FL_upper_leg_2_hip_motor_joint' = 15 gives FL_thigh_joint = "
                           r"15\.599 rad, .* outside .*angles in degrees, or the wrong --source-robot"),
    "centimetres": ("m.txt", mi_doc([GOOD_FRAME[:2] + [44.0] + GOOD_FRAME[3:]] * 3),
                    r"frame 0: field 'root_pos' z is 44, but source robot 'laikago' stands at 0\.44 m"),
    "empty file": ("m.txt", "", r"m\.txt: file is empty"),
    "blank file": ("m.csv", "\n  \n", r"m\.csv: file is empty"),
    "binary garbage": ("m.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"m\.txt: binary content \(NUL byte at offset 8\)"),
    "binary non-UTF-8": ("m.csv", b"\xff\xfe\xfa" * 10, r"m\.csv: binary content \(byte 0xff at offset 0"),
    "CSV unknown joint": ("m.csv", f"{CSV_HEADER.replace('RL_calf_joint', 'RL_knee_joint')}\n{CSV_ROW}\n{CSV_ROW}\n",
                          r"m\.csv: header column 'RL_knee_joint' is not a joint of source robot 'go2'"),
    "CSV missing root column": ("m.csv", f"{CSV_HEADER.replace('qw,', '')}\n{CSV_ROW[:-1]}\n",
                                r"m\.csv: header has no column for qw"),
    "CSV missing joint column": ("m.csv", "\n".join([CSV_HEADER.rsplit(",", 1)[0]] + [CSV_ROW.rsplit(",", 1)[0]] * 3),
                                 r"m\.csv: header has no column for joint\(s\) RL_calf_joint of source robot 'go2'"),
    "CSV ragged row": ("m.csv", f"{CSV_HEADER}\n{CSV_ROW}\n{CSV_ROW},1\n{CSV_ROW}\n",
                       r"m\.csv: frame 1 \(line 3\): row has 20 columns, the header has 19"),
    "CSV not a number": ("m.csv", f"{CSV_HEADER}\n{CSV_ROW}\n{CSV_ROW.replace('0.3', 'abc')}\n",
                         r"m\.csv: frame 1 \(line 3\): column 2 is 'abc', not a number"),
    "CSV NaN": ("m.csv", f"{CSV_HEADER}\n{CSV_ROW}\n{CSV_ROW.replace('0.3', 'nan')}\n",
                r"m\.csv: frame 1: field 'row' column 2 \(z\) is nan"),
    "CSV header only": ("m.csv", CSV_HEADER + "\n", r"m\.csv: field 'rows' has 0 frame\(s\)"),
    "CSV time goes back": ("m.csv", "time," + CSV_HEADER + "\n" + "\n".join(f"{t},{CSV_ROW}" for t in (0, 0.02, 0.01)),
                           r"m\.csv: frame 2: column 'time' is 0\.01, not after the previous frame's 0\.02"),
    "CSV uneven time": ("m.csv", "time," + CSV_HEADER + "\n" + "\n".join(f"{t},{CSV_ROW}" for t in (0, 0.02, 0.04, 0.07)),
                        r"frame 3: column 'time' steps by 0\.03 s"),
    "CSV duplicate column": ("m.csv", f"{CSV_HEADER},x\n{CSV_ROW},0\n{CSV_ROW},0\n", r"header column 'x' appears twice"),
    "not a motion file": ("m.dat", "hello world\n", r"m\.dat: unrecognised motion file"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(tmp_path, case):
    name, content, message = BAD_INPUTS[case]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=message) as err:
        load_motion(path, ROBOT)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.txt: cannot read file"):
        load_motion(tmp_path / "nope.txt", ROBOT)


def test_bad_settings(laikago_file):
    with pytest.raises(InputError, match="unknown import setting 'contact_hieght'"):
        load_motion(laikago_file, ROBOT, contact_hieght=0.05)
    with pytest.raises(InputError, match="import setting 'contact_speed' is -1"):
        load_motion(laikago_file, ROBOT, contact_speed=-1)
    with pytest.raises(InputError, match="unknown source robot 'spot'; known: a1, go2, laikago"):
        load_motion(laikago_file, ROBOT, source_robot="spot")


def test_unreachable_stance_is_clamped_and_reported(laikago_file):
    """Thresholds that call every frame a contact pin each foot where it starts while the body trots
    1 m off: the legs stretch as far as they go towards their pinned feet, and the report says by how
    much they fall short instead of the clip pretending the feet are held."""
    clip = load_motion(laikago_file, ROBOT, contact_height=1.0, contact_speed=100.0)
    c = clip.retarget_settings["clamping"]
    assert clip.foot_contact.all()
    # by the last frame the hips have moved 1 m past feet a leg (0.426 m) reaches around its hip
    start = clip.foot_pos[0, :, 0] - clip.root_pos[0, 0] - ROBOT.hip_offset[:, 0]   # feet vs hips at frame 0
    assert c["max_planted_foot_miss_m"] > (clip.root_pos[-1, 0] - clip.root_pos[0, 0]) - start.max() - ROBOT.leg_length
    assert c["planted_foot_missed_frames"] > clip.num_frames // 2
    assert np.all(clip.dof_pos >= ROBOT.lower) and np.all(clip.dof_pos <= ROBOT.upper)
    np.testing.assert_allclose(clip.foot_pos, feet_world(ROBOT, clip.root_pos, clip.root_quat, clip.dof_pos), atol=1e-9)


# ---------------------------------------------------------------- mapping files

def test_mapping_files_load_and_invert():
    for name in ("laikago", "a1", "go2"):
        m = load_mapping(name, ROBOT)
        q = np.random.default_rng(1).uniform(ROBOT.lower, ROBOT.upper, (7, 12))
        np.testing.assert_allclose(m.joints_to_robot(m.joints_from_robot(q)), q, atol=1e-12)
        pos, quat = np.random.default_rng(2).normal(size=(7, 3)), Rotation.random(7, rng=3).as_quat(scalar_first=True)
        p2, q2 = m.root_to_robot(ROBOT, *m.root_from_robot(ROBOT, pos, quat))
        np.testing.assert_allclose(p2, pos, atol=1e-12)
        assert quat_angle_deg(q2, quat).max() < 1e-6
    laikago = load_mapping("laikago", ROBOT)
    np.testing.assert_allclose(laikago.root_offset.as_quat(), [0.5, 0.5, 0.5, 0.5], atol=1e-12)
    # a Laikago stand (0, 0.27, -0.86) is a Go2 stand with the shank lines in the same directions
    stand = laikago.joints_to_robot(np.tile([0.0, 0.27, -0.86], (1, 4)))[0]
    np.testing.assert_allclose(stand[:3], [0.0, 0.869, -1.371], atol=1e-3)


MAPPING = (PROJECT_ROOT / "configs" / "mappings" / "a1.yaml").read_text()


@pytest.mark.parametrize("edit, message", [
    (lambda s: s + "stand_hieght: 0.3\n", r"unknown key 'stand_hieght'"),
    (lambda s: s.replace("leg_length: 0.4\n", ""), r"key 'leg_length' missing"),
    (lambda s: s.replace("sign: 1, offset: 0.0, aliases: [FR_upper_joint]",
                         "sign: 1, offst: 0.0, aliases: [FR_upper_joint]"), r"joints\[1\]: unknown key 'offst'"),
    (lambda s: s.replace("{source: FL_hip_joint,   target: FL_hip_joint,   sign: 1",
                         "{source: FL_hip_joint,   target: FL_hip_joint,   sign: 2"), r"joints\[3\]\.sign is 2"),
    (lambda s: s.replace("target: FL_hip_joint", "target: FR_hip_joint"), r"joints\[3\]\.target 'FR_hip_joint' is mapped twice"),
    (lambda s: s.replace("target: FL_hip_joint", "target: FL_hip"), r"joints\[3\]\.target 'FL_hip' is not a joint of 'go2'"),
    (lambda s: s.replace("target_robot: go2", "target_robot: a1"), r"key 'target_robot' is 'a1'"),
    (lambda s: s.replace("root_rotation_offset_euler_xyz_deg: [0, 0, 0]", "root_rotation_offset_euler_xyz_deg: [0, 0]"),
     r"'root_rotation_offset_euler_xyz_deg' must be 3 angles"),
])
def test_mapping_validation(tmp_path, edit, message):
    path = tmp_path / "robot.yaml"
    path.write_text(edit(MAPPING))
    with pytest.raises(InputError, match=r"robot\.yaml: .*" + message):
        load_mapping(path, ROBOT)


def test_a_format_is_one_module_that_declares_itself(tmp_path, monkeypatch):
    import retarget.formats as formats

    assert list(formats.FORMATS) == ["motion_imitation", "csv"]          # JSON is asked before CSV
    assert formats.MOTION_SUFFIXES == (".yaml", ".yml", ".txt", ".json", ".csv")
    # A new module in the package is found with nothing else edited, and asked in its rank order.
    (tmp_path / "npz_clip.py").write_text(
        "from retarget.formats.source import Format\n"
        "def load(path, fps=None):\n    raise NotImplementedError\n"
        "FORMAT_SPEC = Format(name='npz', suffixes=('.npz',), claims=lambda s, t: s == '.npz', load=load,\n"
        "                     source_robots={'npz': 'a1'}, rank=5)\n")
    monkeypatch.setattr(formats, "__path__", [*formats.__path__, str(tmp_path)])
    monkeypatch.syspath_prepend(str(tmp_path))
    found = formats._discover()
    assert list(found) == ["npz", "motion_imitation", "csv"]
    monkeypatch.setattr(formats, "FORMATS", found)
    p = tmp_path / "m.npz"
    p.write_bytes(b"PK")
    assert formats.detect_format(p) == "npz"
