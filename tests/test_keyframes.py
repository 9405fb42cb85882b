"""Keyframe motions: the shipped backflip and jump measured against physics and the official flip
(docs/facts.md §3), the format's semantics, and one strict error per kind of bad input."""

import hashlib
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.integrate import cumulative_trapezoid
from scipy.spatial.transform import Rotation

from retarget.clip import read_clip, write_clip
from retarget.errors import InputError
from retarget.keyframes import load_keyframes
from retarget.robot import load_robot

G = 9.81
MOTIONS = Path(__file__).resolve().parent.parent / "motions"
ALL = ["FR", "FL", "RR", "RL"]


@pytest.fixture(scope="module")
def robot():
    return load_robot()


@pytest.fixture(scope="module")
def backflip(robot):
    return load_keyframes(MOTIONS / "backflip.yaml", robot)


@pytest.fixture(scope="module")
def jump(robot):
    return load_keyframes(MOTIONS / "jump.yaml", robot)


# ---------------------------------------------------------------------------------------------
# Independent measurements on a clip


def flight(clip):
    """(take-off frame, touch-down frame) of the single flight: no foot on the ground in between."""
    air = np.flatnonzero(~clip.foot_contact.astype(bool).any(axis=1))
    assert len(air) and np.all(np.diff(air) == 1), "expected exactly one flight"
    return air[0], air[-1] + 1


def pitch_deg(clip):
    """Unwrapped pitch from the body x axis (the clips turn about y only); negative = nose up."""
    x_axis = Rotation.from_quat(clip.root_quat, scalar_first=True).as_matrix()[:, :, 0]
    return np.degrees(np.unwrap(np.arctan2(-x_axis[:, 2], x_axis[:, 0])))


def fit_arc(clip):
    """Least-squares parabola through the base height from take-off to touch-down (both on the arc)."""
    i0, i1 = flight(clip)
    t, z = clip.time[i0:i1 + 1], clip.root_pos[i0:i1 + 1, 2]
    coeffs = np.polyfit(t - t[0], z, 2)
    assert np.max(np.abs(np.polyval(coeffs, t - t[0]) - z)) < 1e-9
    return coeffs


def assert_feasible(clip, robot):
    """The requirements every shipped motion meets."""
    dof = clip.dof_pos
    assert np.all(dof >= robot.lower - 1e-9) and np.all(dof <= robot.upper + 1e-9)
    assert np.all(np.abs(clip.dof_vel) < robot.velocity)
    assert clip.foot_pos[..., 2].min() >= robot.foot_radius - 0.005
    stance = clip.foot_contact[1:].astype(bool) & clip.foot_contact[:-1].astype(bool)
    skating = np.linalg.norm(np.diff(clip.foot_pos, axis=0), axis=-1) * clip.fps
    assert skating[stance].max() < 0.02
    # Stance feet rest on the ground.
    assert np.allclose(clip.foot_pos[..., 2][clip.foot_contact.astype(bool)], robot.foot_radius, atol=1e-6)


def assert_ballistic(clip):
    i0, i1 = flight(clip)
    h = 1 / clip.fps
    z = clip.root_pos[:, 2]
    # Second differences over the flight away from its ends, and the fitted parabola.
    acc = np.diff(z[i0:i1 + 1], 2) / h**2
    assert np.allclose(acc, -G, atol=0.05)
    a2, vz0, z0 = fit_arc(clip)
    assert 2 * a2 == pytest.approx(-G, abs=1e-6)
    assert z0 == pytest.approx(z[i0], abs=1e-9)
    # Horizontal motion is uniform in flight.
    xy = clip.root_pos[i0:i1 + 1, :2]
    assert np.allclose(np.diff(xy, 2, axis=0), 0, atol=1e-9)
    # Take-off speed (from the stored velocity of the first frame wholly inside the arc) predicts the apex.
    vz_takeoff = clip.root_lin_vel[i0 + 1, 2] + G * h
    assert vz_takeoff == pytest.approx(vz0, abs=1e-6)
    apex = z[i0] + vz_takeoff**2 / (2 * G)
    assert z[i0:i1].max() <= apex + 1e-9
    assert z[i0:i1].max() >= apex - G * h**2 / 8 - 1e-9  # the apex falls between two frames at worst
    return vz0, apex


# ---------------------------------------------------------------------------------------------
# The backflip


def test_backflip_builds_fast_and_records_its_source(robot):
    path = MOTIONS / "backflip.yaml"
    start = time.perf_counter()
    clip = load_keyframes(path, robot)
    assert time.perf_counter() - start < 2.0
    assert clip.source_file == "backflip.yaml"
    assert clip.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert clip.retarget_settings["format"] == "keyframes"
    assert clip.retarget_settings["fps"] == 50.0
    assert clip.quality == {}
    assert clip.loop_mode == "none" and clip.robot == robot.name
    assert clip.joint_names == robot.joint_names and clip.foot_names == robot.foot_names
    assert clip.num_frames == 101 and clip.duration == pytest.approx(2.0)


def test_backflip_is_feasible(backflip, robot):
    assert_feasible(backflip, robot)
    # Joint speeds peak in the flip's range (the official flip peaks near 16 rad/s), under the URDF limits.
    assert 10 < np.abs(backflip.dof_vel).max() < 20


def test_sagittal_motions_keep_the_hips_straight(backflip, jump, robot):
    # Pure pitch with feet at the stance width: the IK must never abduct a hip (a branch flip of the
    # rear legs' IK near the hip axis once gave a 24 deg one-frame flick at take-off).
    for clip in (backflip, jump):
        assert np.abs(clip.dof_pos[:, 0::3]).max() < 1e-6
        assert np.allclose(np.abs(clip.foot_pos[..., 1]), 0.142, atol=5e-4)


def test_backflip_flight_is_ballistic_and_follows_the_official_timeline(backflip):
    vz0, apex = assert_ballistic(backflip)
    i0, i1 = flight(backflip)
    t = backflip.time
    pitch = pitch_deg(backflip)
    assert t[i0] == pytest.approx(0.56)
    assert vz0 == pytest.approx(1.9, abs=0.1)
    assert apex == pytest.approx(0.77, abs=0.02)
    assert t[i1] - t[i0] == pytest.approx(0.45, abs=0.02)
    assert pitch[i0] == pytest.approx(-95, abs=5)
    assert pitch[i1] == pytest.approx(-320, abs=5)
    # Constant-ish pitch rate through the whole flight, 8-9 rad/s backwards.
    rate = -backflip.root_ang_vel[i0:i1 + 1, 1]
    assert np.all((rate > 8.0) & (rate < 9.5))
    assert np.radians(pitch[i0] - pitch[i1]) / (t[i1] - t[i0]) == pytest.approx(8.9, abs=0.3)


def test_backflip_turns_once_and_stands_still(backflip, robot):
    pitch = pitch_deg(backflip)
    assert pitch[-1] == pytest.approx(-360, rel=0.02)
    turn = cumulative_trapezoid(backflip.root_ang_vel[:, 1], dx=1 / backflip.fps)[-1]
    assert np.degrees(turn) == pytest.approx(-360, rel=0.02)
    assert np.allclose(backflip.root_ang_vel[:, [0, 2]], 0, atol=1e-9)  # no roll or yaw
    # The last 0.5 s: all feet down, nothing moves, upright at the standing height.
    still = backflip.time >= backflip.duration - 0.5
    assert backflip.foot_contact[still].all()
    for name in ("root_lin_vel", "root_ang_vel", "dof_vel"):
        assert np.abs(getattr(backflip, name)[still]).max() < 1e-9
    up = Rotation.from_quat(backflip.root_quat[-1], scalar_first=True).apply([0, 0, 1])
    assert up[2] == pytest.approx(1, abs=1e-9)
    assert backflip.root_pos[-1, 2] == pytest.approx(0.32)


def test_backflip_feet_leave_and_land_front_first(backflip):
    c = backflip.foot_contact.astype(bool)
    front, rear = c[:, :2].all(axis=1), c[:, 2:].all(axis=1)
    t = backflip.time
    assert t[np.argmin(front)] == pytest.approx(0.36)  # front feet leave
    assert t[np.argmin(rear)] == pytest.approx(0.56)   # rear feet leave: take-off
    after = t >= 0.56
    assert t[after][np.argmax(front[after])] == pytest.approx(1.00)
    assert t[after][np.argmax(rear[after])] == pytest.approx(1.14)


def test_contact_holds_from_a_keyframe_until_the_next(backflip):
    def contact_at(t):
        return backflip.foot_contact[int(round(t * backflip.fps))].tolist()

    assert contact_at(0.34) == [1, 1, 1, 1]
    assert contact_at(0.36) == contact_at(0.54) == [0, 0, 1, 1]
    assert contact_at(0.56) == contact_at(0.98) == [0, 0, 0, 0]
    assert contact_at(1.00) == contact_at(1.12) == [1, 1, 0, 0]
    assert contact_at(1.14) == [1, 1, 1, 1]


def test_backflip_passes_through_its_keyframes(backflip):
    frame = {t: int(round(t * backflip.fps)) for t in (0.56, 1.0, 1.14)}
    assert np.allclose(backflip.root_pos[frame[0.56]], [-0.22, 0, 0.58])
    assert np.allclose(backflip.root_pos[frame[1.0]], [-0.54, 0, 0.47])
    assert pitch_deg(backflip)[frame[1.0]] == pytest.approx(-320)
    # World-frame foot targets of the touch-down keyframes are where those feet stay planted.
    land = np.array([[-0.42, -0.142, 0.022], [-0.42, 0.142, 0.022], [-0.86, -0.142, 0.022], [-0.86, 0.142, 0.022]])
    assert np.allclose(backflip.foot_pos[frame[1.0]:, :2], land[:2], atol=1e-9)
    assert np.allclose(backflip.foot_pos[frame[1.14]:], land, atol=1e-9)


def one_sided_rates(x, i, h):
    """Second-order one-sided derivatives of x at frame i from the left and from the right."""
    left = (3 * x[i] - 4 * x[i - 1] + x[i - 2]) / (2 * h)
    right = (-3 * x[i] + 4 * x[i + 1] - x[i + 2]) / (2 * h)
    return left, right


def test_velocities_are_continuous_at_take_off_and_touch_down(backflip):
    i0, i1 = flight(backflip)
    h = 1 / backflip.fps
    a2, vz0, _ = fit_arc(backflip)
    arc_vz = {i0: vz0, i1: vz0 + 2 * a2 * (i1 - i0) * h}
    pitch = np.radians(pitch_deg(backflip))
    flight_rate = (pitch[i1] - pitch[i0]) / ((i1 - i0) * h)
    for i in (i0, i1):
        # Ground side and flight side agree (a kink would differ by ~1 m/s and ~3 rad/s here).
        left, right = one_sided_rates(backflip.root_pos[:, 2], i, h)
        assert left == pytest.approx(arc_vz[i], abs=0.03) and right == pytest.approx(arc_vz[i], abs=0.03)
        left, right = one_sided_rates(pitch, i, h)
        assert left == pytest.approx(right, abs=0.05)
        assert left == pytest.approx(flight_rate, abs=0.05)


def test_stored_velocities_integrate_to_the_positions(backflip):
    h = 1 / backflip.fps
    pos = backflip.root_pos[0] + cumulative_trapezoid(backflip.root_lin_vel, dx=h, axis=0, initial=0)
    error = np.abs(pos - backflip.root_pos)
    # Central differences integrate back with an error of h^2 a / 4 at a frame of acceleration a:
    # under 1 mm in flight (g), about 2 mm at the landing impact (~20 m/s^2).
    accel = np.abs(np.diff(backflip.root_pos, 2, axis=0)).max() / h**2
    assert error.max() <= h**2 * accel / 4 + 1e-12
    i0, i1 = flight(backflip)
    assert error[i0 + 1:i1 - 1].max() < 1e-3 and error.max() < 2.5e-3


def test_angular_velocity_is_the_quaternion_derivative(backflip):
    q = backflip.root_quat.copy()
    # Stored quaternions keep w >= 0; make the sequence continuous before differentiating it.
    flips = np.cumsum(np.r_[0, np.einsum("ij,ij->i", q[1:], q[:-1]) < 0]) % 2
    q[flips == 1] *= -1
    dq = np.gradient(q, 1 / backflip.fps, axis=0)
    w, v = q[:, 0], -q[:, 1:]  # conjugate
    dw, dv = dq[:, 0], dq[:, 1:]
    omega = 2 * (dw[:, None] * v + w[:, None] * dv + np.cross(dv, v))  # vector part of 2 dq q*
    assert np.abs(omega - backflip.root_ang_vel).max() < 0.1
    assert np.abs(backflip.root_ang_vel[:, 1]).max() > 8.5


def test_output_rate_is_a_parameter(robot, backflip):
    fine = load_keyframes(MOTIONS / "backflip.yaml", robot, fps=100.0)
    assert fine.num_frames == 201 and fine.retarget_settings["fps"] == 100.0
    assert_ballistic(fine)
    assert np.allclose(fine.root_pos[::2], backflip.root_pos, atol=1e-9)
    assert np.allclose(fine.root_quat[::2], backflip.root_quat, atol=1e-9)


def test_clip_round_trips_through_hdf5(backflip, robot, tmp_path):
    write_clip(backflip, tmp_path / "backflip.h5")
    back = read_clip(tmp_path / "backflip.h5", robot)
    assert np.array_equal(back.root_pos, backflip.root_pos)
    assert back.retarget_settings == backflip.retarget_settings


def test_retarget_imports_neither_genesis_nor_torch():
    code = (
        "import sys; from retarget.robot import load_robot; from retarget.keyframes import load_keyframes; "
        f"load_keyframes({str(MOTIONS / 'jump.yaml')!r}, load_robot()); "
        "assert 'genesis' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=MOTIONS.parent)


# ---------------------------------------------------------------------------------------------
# The jump


def test_jump_is_a_feasible_ballistic_forward_jump(jump, robot):
    assert_feasible(jump, robot)
    vz0, apex = assert_ballistic(jump)
    i0, i1 = flight(jump)
    assert vz0 == pytest.approx(1.61, abs=0.01)
    assert apex == pytest.approx(0.49, abs=0.01)
    assert jump.root_pos[i1, 0] - jump.root_pos[i0, 0] == pytest.approx(0.35)
    assert jump.root_lin_vel[i0 + 1, 0] == pytest.approx(0.35 / 0.34)
    # All four feet leave and land together; the jump ends standing still with no net turn.
    assert jump.foot_contact[i0 - 1].all() and jump.foot_contact[i1].all()
    assert abs(pitch_deg(jump)[-1]) < 1e-6
    assert np.abs(jump.root_lin_vel[jump.time >= jump.duration - 0.5]).max() < 1e-9


# ---------------------------------------------------------------------------------------------
# Format semantics on a small hop


def hop():
    """Stand, crouch, hop straight up for 0.2 s, land, stand."""
    base = lambda z: {"pos": [0.0, 0.0, z], "rpy": [0, 0, 0]}  # noqa: E731
    return {
        "format": "go2-keyframes/1",
        "keyframes": [
            {"t": 0.0, "contact": list(ALL), "base": base(0.32), "pose": "stand"},
            {"t": 0.3, "contact": list(ALL), "base": base(0.24)},
            {"t": 0.5, "contact": [], "base": base(0.34)},
            {"t": 0.6, "contact": [], "pose": "crouch"},
            {"t": 0.7, "contact": list(ALL), "base": base(0.33), "pose": "stand"},
            {"t": 1.0, "contact": list(ALL), "base": base(0.32)},
        ],
    }


def write(tmp_path, doc, name="motion.yaml") -> Path:
    path = tmp_path / name
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    elif isinstance(doc, str):
        path.write_text(doc)
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_hop_builds_with_a_straight_up_arc(tmp_path, robot):
    clip = load_keyframes(write(tmp_path, hop()), robot)
    vz0, apex = assert_ballistic(clip)
    # z(0.2 s) = 0.34 + 0.2 vz - g 0.2^2 / 2 = 0.33
    assert vz0 == pytest.approx((0.33 - 0.34 + 0.5 * G * 0.2**2) / 0.2)
    assert clip.retarget_settings["name"] == "motion"
    assert_feasible(clip, robot)


def test_yaml_anchors_and_merge_keys_repeat_values(tmp_path, robot):
    text = """
format: go2-keyframes/1
keyframes:
  - {t: 0.0, contact: &all [FR, FL, RR, RL], base: &up {pos: [0, 0, 0.32], rpy: [0, 0, 0]}, pose: stand}
  - {t: 0.4, contact: *all, base: {<<: *up, pos: [0, 0, 0.26]}}
  - {t: 0.8, contact: *all, base: *up}
"""
    clip = load_keyframes(write(tmp_path, text), robot)
    assert clip.root_pos[20, 2] == pytest.approx(0.26) and clip.root_pos[-1, 2] == pytest.approx(0.32)


def test_leg_layers_apply_in_order_in_degrees_and_in_the_body_frame(tmp_path, robot):
    doc = hop()
    doc["keyframes"][3].update(
        legs={"front": "tuck", "FR": "stand"},
        joints={"FL_calf_joint": -100.0},
        feet={"RL": [-0.2, 0.142, -0.25]},
    )
    clip = load_keyframes(write(tmp_path, doc), robot)
    i = int(round(0.6 * clip.fps))
    q = clip.dof_pos[i].reshape(4, 3)
    assert np.allclose(q[0], robot.poses["stand"][:3])           # single leg after its pair
    assert np.allclose(q[1, :2], robot.poses["tuck"][3:5])      # the pair
    assert q[1, 2] == pytest.approx(math.radians(-100.0))       # degrees, after the pose
    assert np.allclose(q[2], robot.poses["crouch"][6:9])        # the keyframe's pose
    rot = Rotation.from_quat(clip.root_quat[i], scalar_first=True)
    rl_body = rot.inv().apply(clip.foot_pos[i, 3] - clip.root_pos[i])
    assert np.allclose(rl_body, [-0.2, 0.142, -0.25], atol=1e-9)  # IK target, body frame


# ---------------------------------------------------------------------------------------------
# Strict reading: every problem is one line naming the file, keyframe and field


def kf(i, **changes):
    """A mutation of hop() keyframe i."""
    def apply(doc):
        doc["keyframes"][i].update(changes)
    return apply


def drop(i, key):
    def apply(doc):
        del doc["keyframes"][i][key]
    return apply


def top(**changes):
    def apply(doc):
        doc.update(changes)
    return apply


def set_pos(i, j, value):
    def apply(doc):
        doc["keyframes"][i]["base"]["pos"][j] = value
    return apply


def del_top(key):
    def apply(doc):
        del doc[key]
    return apply


BAD_DOCS = {
    "missing key": (drop(1, "contact"), r"keyframe 1 \(t=0\.3\): contact: missing"),
    "typo in a keyframe key": (kf(1, contacts=ALL), r"keyframe 1 \(t=0\.3\): contacts: unknown key \(did you mean 'contact'\?\)"),
    "typo in a top key": (top(keyframe=[]), r"motion\.yaml: keyframe: unknown key \(did you mean 'keyframes'\?\)"),
    "unknown base key": (kf(0, base={"pos": [0, 0, 0.32], "rot": [0, 0, 0]}), r"keyframe 0 \(t=0\): base\.rot: unknown key"),
    "missing format": (del_top("format"), r"motion\.yaml: format: missing"),
    "other format": (top(format="go2-keyframes/2"), r"format: is 'go2-keyframes/2', this reader reads 'go2-keyframes/1'"),
    "text for a number": (kf(1, t="soon"), r"keyframe 1: t: expected a number, got the string 'soon'"),
    "exponent read as text": (kf(1, t="3e-1"), r"keyframe 1: t: .*the string '3e-1' \(YAML reads .* write 1\.0e-1\)"),
    "bool for a number": (kf(1, t=True), r"keyframe 1: t: expected a number, got bool True"),
    "short vector": (kf(0, base={"pos": [0, 0.32], "rpy": [0, 0, 0]}), r"keyframe 0 \(t=0\): base\.pos: expected a list of 3 numbers"),
    "contact not a list": (kf(1, contact="FR"), r"keyframe 1 \(t=0\.3\): contact: expected a list"),
    "repeated time": (kf(2, t=0.3), r"keyframe 2 \(t=0\.3\): t: must be at least one frame \(0\.02 s at 50 fps\) after the previous keyframe \(t=0\.3\)"),
    "decreasing time": (kf(2, t=0.2), r"keyframe 2 \(t=0\.2\): t: must be at least one frame"),
    "late start": (kf(0, t=0.1), r"keyframe 0 \(t=0\.1\): t: the first keyframe must be at t = 0"),
    "unknown joint": (kf(3, joints={"FR_thigh": 10}), r"keyframe 3 \(t=0\.6\): joints\.FR_thigh: unknown key \(did you mean 'FR_thigh_joint'\?\)"),
    "unknown pose": (kf(3, pose="tuk"), r"keyframe 3 \(t=0\.6\): pose: unknown pose 'tuk': did you mean 'tuck'\?"),
    "unknown leg in contact": (kf(1, contact=["FR", "XX"]), r"keyframe 1 \(t=0\.3\): contact: unknown leg 'XX'"),
    "repeated leg in contact": (kf(1, contact=["FR", "FR"]), r"keyframe 1 \(t=0\.3\): contact: lists FR twice"),
    "unknown leg group": (kf(3, legs={"middle": "tuck"}), r"keyframe 3 \(t=0\.6\): legs\.middle: unknown key"),
    "unknown foot": (kf(3, feet={"FX": [0, 0, 0]}), r"keyframe 3 \(t=0\.6\): feet\.FX: unknown key"),
    "NaN": (set_pos(1, 2, float("nan")), r"keyframe 1 \(t=0\.3\): base\.pos\[2\]: nan is not a finite number"),
    "Inf": (kf(3, joints={"FR_thigh_joint": float("inf")}), r"keyframe 3 \(t=0\.6\): joints\.FR_thigh_joint: inf is not a finite number"),
    "radians given as degrees": (kf(3, joints={"FR_calf_joint": -1.5}),
                                 r"keyframe 3 \(t=0\.6\): joints\.FR_calf_joint: -1\.5 degrees is past the joint range \[-156\.0, -48\.0\] degrees"),
    "unreachable foot": (kf(3, feet={"FR": [0.6, -0.142, -0.2]}),
                         r"keyframe 3 \(t=0\.6\): feet\.FR: target \[0\.6, -0\.142, -0\.2\] \(body frame\) is out of the leg's reach"),
    "planted foot out of reach": (set_pos(1, 0, 0.3), r"keyframe 1 \(t=0\.3\): base: RR is planted at \[-0\.271, -0\.142, 0\.022\] \(world\), which this base pose puts out of the leg's reach"),
    "one keyframe": (lambda doc: doc.update(keyframes=doc["keyframes"][:1]), r"keyframes: has 1 keyframe\(s\), a motion needs at least 2"),
    "keyframes not a list": (top(keyframes={"t": 0}), r"motion\.yaml: keyframes: expected a list"),
    "keyframe not a mapping": (lambda doc: doc["keyframes"].__setitem__(1, 5), r"keyframe 1: keyframe: expected a mapping"),
    "position inside a flight": (kf(3, base={"pos": [0, 0, 0.4]}), r"keyframe 3 \(t=0\.6\): base\.pos: inside a flight the ballistic arc sets the position"),
    "no base outside a flight": (drop(1, "base"), r"keyframe 1 \(t=0\.3\): base\.pos: missing \(required except inside a flight\)"),
    "pose for a planted leg": (kf(1, legs={"front": "crouch"}), r"keyframe 1 \(t=0\.3\): legs\.front: FR is planted"),
    "pose with every foot planted": (kf(1, pose="crouch"), r"keyframe 1 \(t=0\.3\): pose: every foot is planted"),
    "touch-down in the air": (kf(4, pose="crouch"), r"keyframe 4 \(t=0\.7\): contact: FR touches down here but its foot is 0\.1\d\d m above the ground"),
    "frame without feet": (kf(3, feet_frame="world"), r"keyframe 3 \(t=0\.6\): feet_frame: given without feet"),
    "unknown frame": (kf(3, feet={"FR": [0.2, -0.14, -0.3]}, feet_frame="hip"), r"keyframe 3 \(t=0\.6\): feet_frame: unknown frame 'hip'"),
    "unknown loop mode": (top(loop="forever"), r"motion\.yaml: loop: unknown loop mode 'forever'"),
    "name not text": (top(name=3), r"motion\.yaml: name: expected text, got int 3"),
}

BAD_FILES = {
    "malformed YAML": ("format: go2-keyframes/1\nkeyframes: [\n", r"not valid YAML: .* at line \d+, column \d+"),
    "not a mapping": ("- 1\n- 2\n", r"expected a mapping with format: go2-keyframes/1 and keyframes, got list"),
    "empty file": ("", r"empty file"),
    "only comments": ("# nothing yet\n", r"empty file"),
    "binary garbage": (bytes(range(256)) * 4, r"not a text file"),
    "not UTF-8": (b"format: \xff\xfe\x80\n", r"not a UTF-8 text file"),
    "duplicate key": ("format: go2-keyframes/1\nformat: go2-keyframes/1\nkeyframes: []\n",
                      r"not valid YAML: duplicate key 'format' at line 2"),
}


def expect_error(path, robot, pattern, **kwargs):
    with pytest.raises(InputError) as info:
        load_keyframes(path, robot, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert re.search(pattern, message), message


@pytest.mark.parametrize("mutate, pattern", BAD_DOCS.values(), ids=BAD_DOCS.keys())
def test_bad_document(tmp_path, robot, mutate, pattern):
    doc = hop()
    mutate(doc)
    expect_error(write(tmp_path, doc), robot, pattern)


@pytest.mark.parametrize("content, pattern", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file(tmp_path, robot, content, pattern):
    expect_error(write(tmp_path, content), robot, pattern)


def test_missing_file(tmp_path, robot):
    expect_error(tmp_path / "nope.yaml", robot, r"cannot read")


def test_bad_rate(tmp_path, robot):
    expect_error(write(tmp_path, hop()), robot, r"fps must be a positive number", fps=0.0)
