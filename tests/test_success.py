"""The reference-derived success (imitation/env/success.py) on synthetic motions, and the looping reference
(imitation/env/reference.py) against an independent computation of the cycle offsets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from imitation.analysis.metrics import Trajectory
from imitation.config import defaults, load_config
from imitation.env.reference import Reference
from imitation.env.success import CRITERIA_END, trajectory_verdicts
from retarget.clip import Clip
from retarget.robot import PROJECT_ROOT, load_robot

ROBOT = load_robot()
DT = 0.02
TOL = defaults()["success"]


def clip_of(pos, rpy_deg, contact=None, loop="none", offset_pos=False, offset_rot=False) -> Clip:
    n = len(pos)
    quat = Rotation.from_euler("ZYX", np.radians(np.asarray(rpy_deg))[:, ::-1]).as_quat(scalar_first=True)
    return Clip(fps=1 / DT, root_pos=np.asarray(pos, float), root_quat=quat, dof_pos=np.tile(ROBOT.default_pose, (n, 1)),
                foot_pos=np.zeros((n, 4, 3)), foot_contact=np.ones((n, 4)) if contact is None else contact,
                joint_names=ROBOT.joint_names, foot_names=ROBOT.foot_names, loop_mode=loop,
                cycle_offset_position=offset_pos, cycle_offset_rotation=offset_rot)


def traj_of(pos, rpy_deg, contact=None, body=None, foot_z=None) -> Trajectory:
    """One-episode trajectories (E, T) from root positions (E, T, 3) and roll-pitch-yaw (E, T, 3) in degrees; the
    feet rest at 0.022 m where in contact and are 0.1 m up where not, unless `foot_z` (E, T, 4) says otherwise."""
    pos, rpy = np.asarray(pos, float), np.radians(np.asarray(rpy_deg, float))
    e, t = pos.shape[:2]
    quat = Rotation.from_euler("ZYX", rpy.reshape(-1, 3)[:, ::-1]).as_quat(scalar_first=True).reshape(e, t, 4)
    z = np.zeros((e, t, 12))
    contact = np.ones((e, t, 4), bool) if contact is None else contact
    feet = np.zeros((e, t, 4, 3))
    feet[..., 2] = np.where(contact, 0.022, 0.1) if foot_z is None else foot_z
    return Trajectory(dt=DT, root_pos=pos, root_quat=quat, root_ang_vel_b=np.zeros((e, t, 3)), dof_pos=z,
                      dof_vel=z, torque=z, actions=z, foot_pos=feet,
                      foot_contact=contact,
                      body_contact=np.zeros((e, t), bool) if body is None else body)


def ramp(a, b, n, t0=0.3, t1=0.7):
    s = np.clip((np.arange(n) * DT - t0) / (t1 - t0), 0, 1)
    return a + (b - a) * (3 * s ** 2 - 2 * s ** 3)


N = 76   # 1.5 s


def motion(dx=0.0, dy=0.0, pitch=0.0, yaw=0.0, n=N):
    """Stand, move by (dx, dy) while turning `pitch` and `yaw` degrees, stand: (pos (n, 3), rpy (n, 3))."""
    pos = np.stack([ramp(0, dx, n), ramp(0, dy, n), np.full(n, 0.3)], -1)
    rpy = np.stack([np.zeros(n), ramp(0, pitch, n), ramp(0, yaw, n)], -1)
    return pos, rpy


def verdict(ref_motion, episodes, tol=None, **traj_kw):
    ref = clip_of(*ref_motion)
    pos = np.stack([m[0] for m in episodes])
    rpy = np.stack([m[1] for m in episodes])
    return trajectory_verdicts(traj_of(pos, rpy, **traj_kw), ref, tol or TOL)


def test_a_flip_succeeds_by_its_own_turn_only():
    v = verdict(motion(dx=-0.6, pitch=-360), [motion(dx=-0.6, pitch=-360), motion(dx=-0.6, pitch=-345),
                                             motion(dx=-0.6, pitch=-300), motion(dx=-0.6, pitch=0),
                                             motion(dx=-0.6, pitch=-720)])
    assert v["success"].tolist() == [True, True, False, False, False]
    assert v["rotation"].tolist() == [True, True, False, False, False]
    assert not v["upright"][2]                                   # 300 degrees ends 60 degrees tilted


def test_a_jump_must_land_where_the_reference_lands():
    v = verdict(motion(dx=0.5), [motion(dx=0.45), motion(dx=0.0), motion(dx=0.5, yaw=90), motion(dx=0.5, dy=0.6)])
    assert v["success"].tolist() == [True, False, False, False]
    assert v["position"].tolist() == [True, False, True, False]
    assert v["heading"].tolist() == [True, True, False, True]


def test_a_side_jump_and_a_hop_turn():
    side = verdict(motion(dy=0.3), [motion(dy=0.3), motion(dx=0.3)])
    assert side["success"].tolist() == [True, False]
    turn = verdict(motion(yaw=90), [motion(yaw=85), motion(yaw=0), motion(yaw=-90)])
    assert turn["success"].tolist() == [True, False, False]
    assert turn["rotation"].tolist() == [True, False, False]


def test_body_contact_and_feet_in_the_air_fail():
    ref = motion(dx=0.5)
    body = np.zeros((1, N), bool)
    body[0, 40] = True
    assert not verdict(ref, [motion(dx=0.5)], body=body)["success"][0]
    feet = np.ones((1, N, 4), bool)
    feet[0, -5:, 2] = False                                       # a foot in the air for the last 0.1 s
    assert not verdict(ref, [motion(dx=0.5)], contact=feet)["success"][0]


def test_a_standing_robots_flickering_foot_contact_is_a_foot_down():
    """Feet on the ground whose contact force drops below the threshold on single steps (as a standing robot's
    do) are down; a foot lifted for the whole window (0.1 s) is not; the same in the per-episode metric."""
    from imitation.analysis.metrics import episode_metrics

    ref = motion(dx=0.5)
    feet = np.ones((3, N, 4), bool)
    feet[0, -1, 1] = feet[0, -3, 2] = False                       # flicker on single steps
    feet[1, -4:, 0] = False                                       # in the air for 4 steps, down at the 5th from last
    feet[2, -5:, 3] = False                                       # in the air for the whole window
    v = verdict(ref, [motion(dx=0.5)] * 3, contact=feet)
    assert v["feet"].tolist() == [True, True, False] and v["success"].tolist() == [True, True, False]
    pos, rpy = motion(dx=0.5)
    m = episode_metrics(traj_of(np.stack([pos] * 3), np.stack([rpy] * 3), contact=feet))
    assert m["feet_down_at_end"].tolist() == [True, True, False]
    assert not verdict(ref, [motion(dx=0.5)] * 3, {**TOL, "feet_down_s": 0.02}, contact=feet)["feet"][0]
    # An unloaded foot resting on the ground (no contact force over the window) is down by its height.
    z = np.where(feet, 0.022, 0.1)
    z[2, -1, 3] = 0.026
    assert verdict(ref, [motion(dx=0.5)] * 3, contact=feet, foot_z=z)["feet"].tolist() == [True, True, True]
    z[2, -1, 3] = 0.05
    assert verdict(ref, [motion(dx=0.5)] * 3, contact=feet, foot_z=z)["feet"].tolist() == [True, True, False]


def old_flip_rule(pitch_turn_deg, final_tilt_deg, final_height, feet_down, body_contact):
    """The backflip's success test before success came from the reference."""
    return (pitch_turn_deg >= 330) & (final_tilt_deg < 30) & ~body_contact & (final_height > 0.2) & feet_down


def test_the_flip_rule_is_the_reference_rule_with_the_backflip_tolerances():
    tol = load_config(PROJECT_ROOT / "configs" / "base_backflip.yaml")["success"]
    rng = np.random.default_rng(0)
    e = 400
    # Flips that turn 250-460 degrees backward with up to 60 degrees of yaw, land 0-0.5 m beside the reference's
    # landing, at 0.15-0.35 m, some with a foot up or a body contact.
    pitch, yaw = rng.uniform(250, 460, e), rng.uniform(-60, 60, e)
    end_x, end_y = -0.6 + rng.uniform(-0.4, 0.4, e), rng.uniform(-0.3, 0.3, e)
    height = rng.uniform(0.15, 0.35, e)
    episodes = []
    for i in range(e):
        pos, rpy = motion(dx=end_x[i], dy=end_y[i], pitch=-pitch[i], yaw=yaw[i])
        pos[:, 2] = ramp(0.3, height[i], N, 0.6, 0.8)
        episodes.append((pos, rpy))
    feet = np.ones((e, N, 4), bool)
    feet[rng.random(e) < 0.1, -5:, 0] = False                      # a foot in the air for the last 0.1 s
    body = np.zeros((e, N), bool)
    body[rng.random(e) < 0.1, 30] = True
    ref_pos, ref_rpy = motion(dx=-0.6, pitch=-360)
    ref_pos[:, 2] = 0.32                                             # the Go2 stands at 0.32 m: 0.32 - 0.12 = 0.2
    v = verdict((ref_pos, ref_rpy), episodes, tol, contact=feet, body=body)
    tilt = np.abs(((pitch + 180) % 360) - 180)                      # pure pitch: tilt is the pitch off upright
    old = old_flip_rule(pitch, tilt, height, feet[:, -1].all(-1), body.any(-1))
    assert 50 < old.sum() < e - 50                                   # both verdicts occur
    # The outcome criteria (the episodes' synthetic course, e.g. its height, does not follow the reference's)
    outcome = np.logical_and.reduce([v[k] for k in CRITERIA_END])
    np.testing.assert_array_equal(outcome, old)


# ----------------------------------------------------------------------------- looping references


def cycle_clip(offset_rot: bool, n=26):
    """One 0.5 s cycle: 0.2 m forward along the body x axis while turning 30 degrees left."""
    s = np.arange(n) / (n - 1)
    yaw = 30.0 * s
    pos = np.stack([0.2 * s, 0.02 * np.sin(2 * np.pi * s), 0.3 + 0.01 * np.sin(4 * np.pi * s)], -1)
    rpy = np.stack([np.zeros(n), 3 * np.sin(2 * np.pi * s), yaw], -1)
    return clip_of(pos, rpy, loop="wrap", offset_pos=True, offset_rot=offset_rot)


@pytest.mark.parametrize("offset_rot", [False, True])
def test_looping_reference_against_cycle_by_cycle_composition(offset_rot):
    clip = cycle_clip(offset_rot)
    ref = Reference(clip, None, DT, "cpu")
    c_len = clip.num_frames - 1
    k = torch.arange(0, 4 * c_len + 7)
    f = ref.frame(k)
    # Independently: walk the cycles one after another, each starting at the pose where the previous one ended
    # (motion_imitation's cycle offsets): start position += (turned) displacement, heading += change.
    d = clip.root_pos[-1] - clip.root_pos[0]
    d[2] = 0.0
    r0, r1 = Rotation.from_quat(clip.root_quat[[0, -1]], scalar_first=True)
    fwd = (r1 * r0.inv()).apply([1.0, 0.0, 0.0])
    dyaw = math.atan2(fwd[1], fwd[0]) if offset_rot else 0.0
    start, yaw = np.zeros(3), 0.0
    for kk in k.tolist():
        c, j = divmod(kk, c_len)
        if j == 0 and c > 0:
            start = start + Rotation.from_euler("z", yaw).apply(d)
            yaw += dyaw
        rz = Rotation.from_euler("z", yaw)
        want_pos = rz.apply(clip.root_pos[j] - clip.root_pos[0] * [1, 1, 0]) + clip.root_pos[0] * [1, 1, 0] + start
        want_quat = (rz * Rotation.from_quat(clip.root_quat[j], scalar_first=True)).as_quat(scalar_first=True)
        got_quat = f.root_quat[kk].double().numpy()
        np.testing.assert_allclose(f.root_pos[kk].double().numpy(), want_pos, atol=2e-5)
        assert abs(abs(np.dot(got_quat, want_quat)) - 1) < 1e-6
        np.testing.assert_allclose(f.dof_pos[kk].numpy(), clip.dof_pos[j], atol=1e-6)
        assert f.time[kk].item() == pytest.approx(kk * DT, abs=1e-5)
    # 4 cycles on: the heading turned by 4 x 30 degrees with the rotation offset, not at all without.
    h = Rotation.from_quat(f.root_quat[4 * c_len].double().numpy(), scalar_first=True).apply([1, 0, 0])
    assert math.degrees(math.atan2(h[1], h[0])) == pytest.approx(120.0 if offset_rot else 0.0, abs=1e-3)


def pace_clip(speed=1.0, n=26):
    s = np.arange(n) / (n - 1)
    pos = np.stack([speed * 0.5 * s, np.zeros(n), 0.3 + 0.01 * np.sin(4 * np.pi * s)], -1)
    return clip_of(pos, np.zeros((n, 3)), loop="wrap", offset_pos=True)


def test_a_loop_succeeds_by_keeping_pace_without_falling():
    ref = Reference(pace_clip(), None, DT, "cpu")
    t = np.arange(151) * DT                                         # 3 s, 6 cycles
    def run(speed, lateral=0.0, fall_at=None):
        pos = np.stack([speed * t, lateral * t, np.full_like(t, 0.3)], -1)
        rpy = np.zeros((len(t), 3))
        body = np.zeros(len(t), bool)
        if fall_at is not None:
            rpy[fall_at:, 0] = 80.0
            body[fall_at:] = True
        return pos, rpy, body
    runs = [run(1.0), run(0.95, 0.05), run(0.5), run(1.0, fall_at=100), run(1.0, lateral=0.5)]
    traj = traj_of(np.stack([r[0] for r in runs]), np.stack([r[1] for r in runs]), body=np.stack([r[2] for r in runs]),
                   foot_z=np.zeros((len(runs), len(t), 4)))   # the clip's feet
    v = trajectory_verdicts(traj, ref, TOL)
    assert v["success"].tolist() == [True, True, False, False, False]
    assert v["speed"].tolist() == [True, True, False, True, False]
    assert v["no_fall"].tolist() == [True, True, True, False, True]


# ---------------------------------------------------------------------------- loops: the motion within the cycles


def loop_clip(kind: str, n: int = 41) -> Clip:
    """One cycle (n frames, 0.8 s) of a looping motion whose reference moves: side steps (the base sways 0.3 m
    sideways and back), steps in place (only the feet move), a turn in place (60 degrees per cycle) or a pace
    (0.8 m per cycle); the feet step in pairs, 0.08 m up, in every one."""
    s = np.arange(n) / (n - 1)
    pos = np.zeros((n, 3))
    pos[:, 2] = 0.3
    rpy = np.zeros((n, 3))
    if kind == "side_steps":
        pos[:, 1] = 0.15 * (1 - np.cos(2 * np.pi * s))
    elif kind == "pace":
        pos[:, 0] = 0.8 * s
    elif kind == "turn":
        rpy[:, 2] = 60.0 * s
    lift = np.clip(np.sin(2 * np.pi * s), 0, None)[:, None] * [1, 0, 0, 1] + \
        np.clip(-np.sin(2 * np.pi * s), 0, None)[:, None] * [0, 1, 1, 0]
    feet = np.zeros((n, 4, 3))
    feet[..., 2] = 0.022 + 0.08 * lift
    quat = Rotation.from_euler("ZYX", np.radians(rpy)[:, ::-1]).as_quat(scalar_first=True)
    return Clip(fps=1 / DT, root_pos=pos, root_quat=quat, dof_pos=np.tile(ROBOT.default_pose, (n, 1)), foot_pos=feet,
                foot_contact=lift < 0.05, joint_names=ROBOT.joint_names, foot_names=ROBOT.foot_names, loop_mode="wrap",
                cycle_offset_position=True, cycle_offset_rotation=True)


def _stepping_period(ref) -> int:
    """Control steps of the feet's dominant period: the strongest frequency of their heights over one cycle (a clip
    may hold several steps per cycle, and a lag of a whole step is no lag)."""
    z = ref.frame(torch.arange(ref.cycle)).foot_pos[..., 2].double().numpy()
    power = (np.abs(np.fft.rfft(z - z.mean(0), axis=0)) ** 2).sum(1)
    return int(round(ref.cycle / max(1, int(np.argmax(power[1:])) + 1)))


def _episode_of(ref, kind: str, steps: int) -> Trajectory:
    """The reference itself (replay), held at its first frame (stand), a quarter cycle late (lag) or moving half
    as much (half): one episode of `steps` + 1 samples."""
    k = torch.arange(steps + 1)
    if kind == "stand":
        k = torch.zeros_like(k)
    elif kind == "lag":  # (loops only) a quarter of the feet's own period, which may be a part of the cycle
        k = (k - _stepping_period(ref) // 4).clamp(min=0)
    f = ref.frame(k)
    pos, quat, feet = f.root_pos.double().numpy(), f.root_quat.double().numpy(), f.foot_pos.double().numpy()
    if kind == "half":
        pos = pos[0] + 0.5 * (pos - pos[0])
        rot = Rotation.from_quat(quat, scalar_first=True)
        quat = (Rotation.from_quat(quat[0], scalar_first=True) * Rotation.from_rotvec(
            0.5 * (Rotation.from_quat(quat[0], scalar_first=True).inv() * rot).as_rotvec())).as_quat(scalar_first=True)
        feet = feet.copy()
        feet[..., 2] = 0.022 + 0.5 * (feet[..., 2] - 0.022)
    z = np.zeros((1, steps + 1, 12))
    return Trajectory(dt=DT, root_pos=pos[None], root_quat=quat[None], root_ang_vel_b=np.zeros((1, steps + 1, 3)),
                      dof_pos=z, dof_vel=z, torque=z, actions=z, foot_pos=feet[None],
                      foot_contact=f.foot_contact.numpy()[None], body_contact=np.zeros((1, steps + 1), bool))


REAL_LOOPS = sorted(str(p.relative_to(PROJECT_ROOT)) for p in (PROJECT_ROOT / "motions" / "real").glob("*.txt"))
ZOO_LOOPS = ["motions/zoo/bound.yaml", "motions/zoo/side_steps.yaml", "motions/zoo/turn_in_place.yaml"]


@pytest.mark.parametrize("motion_kind", ["side_steps", "steps_in_place", "turn", "pace", "motions/retargeted/pace.h5",
                                         "motions/retargeted/trot.h5", *REAL_LOOPS, *ZOO_LOOPS])
def test_a_loop_is_judged_on_its_motion_within_the_cycles(motion_kind):
    from retarget.clip import read_clip
    from retarget.importer import load_motion

    if motion_kind.endswith(".h5"):
        clip = read_clip(PROJECT_ROOT / motion_kind)
    elif "/" in motion_kind:                                         # a motion file, retargeted as `learn` does
        clip = load_motion(PROJECT_ROOT / motion_kind, ROBOT, fps=1 / DT)
    else:
        clip = loop_clip(motion_kind)
    ref = Reference(clip, None, DT, "cpu")
    steps = 5 * ref.cycle                                            # 5 cycles
    verdict = {kind: trajectory_verdicts(_episode_of(ref, kind, steps), ref, TOL)
               for kind in ("replay", "stand", "lag", "half")}
    assert verdict["replay"]["success"].tolist() == [True]
    for kind in ("stand", "lag", "half"):
        assert verdict[kind]["success"].tolist() == [False], (motion_kind, kind)
        # the within-cycle criteria alone see it (mean speed and yaw rate may not: the side steps come back)
        assert not all(verdict[kind][c][0] for c in ("path", "turning", "feet")), (motion_kind, kind)
    if motion_kind in ("side_steps", "steps_in_place"):                # where the mean speed says nothing
        assert verdict["stand"]["speed"].tolist() == [True] and verdict["stand"]["yaw_rate"].tolist() == [True]


# ----------------------------------------------------------------------------- motions that end: their course


def rear_up(scale=1.0, n=126):
    """Rise to 30 degrees nose-up and 0.08 m higher, hold, come back down (2.5 s), scaled by `scale`."""
    up = lambda a: ramp(0, a, n, 0.4, 0.9) - ramp(0, a, n, 1.5, 2.0)  # noqa: E731
    pos = np.stack([np.zeros(n), np.zeros(n), 0.3 + up(0.08 * scale)], -1)
    rpy = np.stack([np.zeros(n), up(-30.0 * scale), np.zeros(n)], -1)
    return pos, rpy


def jump_in_place(scale=1.0, n=101):
    """Crouch 0.08 m, rise 0.15 m above standing, land, stand (2 s), scaled by `scale`."""
    z = 0.3 - ramp(0, 0.08 * scale, n, 0.2, 0.5) + ramp(0, 0.23 * scale, n, 0.5, 0.8) - ramp(0, 0.15 * scale, n, 0.8, 1.1)
    return np.stack([np.zeros(n), np.zeros(n), z], -1), np.zeros((n, 3))


def lagged(m, steps):
    pos, rpy = m
    return np.concatenate([np.repeat(pos[:1], steps, 0), pos[:-steps]]), np.concatenate([np.repeat(rpy[:1], steps, 0), rpy[:-steps]])


@pytest.mark.parametrize("motion", ["motions/jump.yaml", "motions/hop_turn.yaml", "motions/backflip.yaml",
                                    *(f"motions/zoo/{m}.yaml" for m in ("front_hop", "rear_up", "side_jump", "twist_jump"))])
def test_a_standing_robot_fails_every_motion_that_ends(motion):
    # Held at the clip's first frame for the clip's length (what a policy that does nothing shows); the replay of
    # the clip itself passes.
    from retarget.importer import load_motion

    ref = Reference(load_motion(PROJECT_ROOT / motion, ROBOT, fps=1 / DT), None, DT, "cpu")
    steps = ref.num_frames - 1
    replay, stand = _episode_of(ref, "replay", steps), _episode_of(ref, "stand", steps)
    assert trajectory_verdicts(replay, ref, TOL)["success"].tolist() == [True]
    assert trajectory_verdicts(stand, ref, TOL)["success"].tolist() == [False]


@pytest.mark.parametrize("make", [rear_up, jump_in_place])
def test_a_motion_that_ends_where_it_began_is_judged_on_its_course(make):
    ref = make()
    n = len(ref[0])
    stand = (np.tile([0.0, 0.0, 0.3], (n, 1)), np.zeros((n, 3)))
    # A standing robot meets every outcome criterion of such a motion (it ends where the reference ends) ...
    v = verdict(ref, [ref, make(0.9), lagged(ref, 3), stand])
    assert np.logical_and.reduce([v[k][3] for k in CRITERIA_END])
    # ... and fails its course; the reference itself, 90% of it and a lag of 0.06 s (within a twentieth of the
    # clip) pass.
    assert v["profile"].tolist() == [True, True, True, False]
    assert v["success"].tolist() == [True, True, True, False]
    assert v["height_error"][0] == pytest.approx(0.0, abs=1e-6)
    # the standing robot's error is the reference's own amplitude (its mean departure from the start)
    assert v["height_error"][3] == pytest.approx(v["height_amplitude"][3], rel=1e-6)
    assert v["height_amplitude"][3] > 0.02


def test_the_slack_follows_the_feet_own_period():
    from imitation.env.success import motion_slack, stepping_period

    t = torch.arange(300, dtype=torch.float64)
    steps = torch.stack([0.022 + 0.05 * torch.sin(2 * math.pi * 7 * t / 300 + p).clamp(min=0) for p in (0, 1, 2, 3)], -1)
    assert stepping_period(steps) == round(300 / 7)              # seven steps per cycle: a period of 43 samples
    assert motion_slack(stepping_period(steps)) == 2              # not 300 / 20 = 15: a third of a step
    once = 0.022 + 0.05 * torch.sin(2 * math.pi * t / 300).clamp(min=0)[:, None].expand(300, 4)
    assert stepping_period(once) == 300
    assert stepping_period(torch.full((300, 4), 0.022, dtype=torch.float64)) == 300   # no foot moves


def test_a_foot_is_lifted_from_where_it_rests():
    # The simulated feet rest a few millimetres into the soft ground: the replay of side steps with every foot 4 mm
    # lower lifts exactly as much as the reference, and still passes; measured from the reference's floor it would
    # lift 4 mm less every step.
    ref = Reference(loop_clip("side_steps"), None, DT, "cpu")
    episode = _episode_of(ref, "replay", 5 * ref.cycle)
    episode.foot_pos[..., 2] -= 0.004
    v = trajectory_verdicts(episode, ref, TOL)
    assert v["feet_lift_ratio"][0] == pytest.approx(1.0, abs=0.02)
    assert v["success"].tolist() == [True]
    still = _episode_of(ref, "stand", 5 * ref.cycle)
    assert trajectory_verdicts(still, ref, TOL)["feet_lift_ratio"][0] == pytest.approx(0.0, abs=1e-9)
