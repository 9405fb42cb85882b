"""Evaluation metrics on scripted trajectories whose answers are known in closed form."""

import numpy as np
import pytest

from imitation.analysis.metrics import Trajectory, episode_metrics, format_table, longest_run, summarize
from imitation.env.reference import Reference
from retarget.clip import Clip

DT = 0.02
G = 9.81
CANON_JOINTS = tuple(f"{leg}_{p}_joint" for leg in ("FR", "FL", "RR", "RL") for p in ("hip", "thigh", "calf"))
CANON_FEET = ("FR_foot", "FL_foot", "RR_foot", "RL_foot")


def pitch_quat(theta):
    """w x y z of a rotation by theta about y (negative theta = backward flip in Genesis)."""
    theta = np.asarray(theta, float)
    z = np.zeros_like(theta)
    return np.stack([np.cos(theta / 2), z, np.sin(theta / 2), z], axis=-1)


def ramp_pitch(turn_deg, t0=0.3, duration=0.5, total=1.5, dt=DT):
    """Backward turn at constant pitch rate from t0 for `duration` s; returns (t, theta, rate)."""
    t = np.arange(int(round(total / dt)) + 1) * dt
    rate = -np.radians(turn_deg) / duration
    theta = rate * np.clip(t - t0, 0.0, duration)
    w = np.where((t >= t0) & (t <= t0 + duration), rate, 0.0)
    return t, theta, w


def scripted(theta, z=None, foot_contact=None, body_contact=None, dt=DT, **over):
    """A Trajectory of E episodes from per-episode pitch angles (E,T); standing elsewhere."""
    theta = np.atleast_2d(theta)
    e, t = theta.shape
    rate = np.gradient(theta, dt, axis=1)
    kw = dict(
        dt=dt,
        root_pos=np.zeros((e, t, 3)),
        root_quat=pitch_quat(theta),
        root_ang_vel_b=np.stack([np.zeros_like(rate), rate, np.zeros_like(rate)], axis=-1),
        dof_pos=np.zeros((e, t, 12)), dof_vel=np.zeros((e, t, 12)),
        torque=np.zeros((e, t, 12)), actions=np.zeros((e, t, 12)),
        foot_pos=np.zeros((e, t, 4, 3)),
        foot_contact=np.ones((e, t, 4), bool) if foot_contact is None else foot_contact,
        body_contact=np.zeros((e, t), bool) if body_contact is None else body_contact,
    )
    kw["root_pos"][..., 2] = 0.3 if z is None else z
    kw.update(over)
    return Trajectory(**kw)


def flip_episode(turn_deg, **kw):
    """A standing, turning, standing-again episode with the feet off the ground during the turn."""
    t, theta, _ = ramp_pitch(turn_deg, **kw)
    contact = np.ones((1, len(t), 4), bool)
    contact[0, (t >= 0.3) & (t < 0.8)] = False
    return t, scripted(theta[None], foot_contact=contact)


# ---------------------------------------------------------------- rotation

@pytest.mark.parametrize("turn, duration", [(360, 0.5), (720, 0.5), (720, 0.3), (300, 0.5), (540, 0.5)])
def test_pitch_rotation_counts_whole_turns(turn, duration):
    t, theta, _ = ramp_pitch(turn, duration=duration)
    m = episode_metrics(scripted(theta[None]))
    assert m["pitch_rotation_deg"][0] == pytest.approx(turn, abs=1.0)
    assert m["max_pitch_rotation_deg"][0] == pytest.approx(turn, abs=1.0)
    assert m["peak_pitch_rate"][0] == pytest.approx(np.radians(turn) / duration, rel=1e-6)


def test_forward_turn_is_negative_and_net_rotation_counts_falling_back():
    _, theta, _ = ramp_pitch(360)
    m = episode_metrics(scripted(-theta[None]))
    assert m["pitch_rotation_deg"][0] == pytest.approx(-360, abs=1e-6)
    # Turning 200 degrees backward and then 200 forward again nets zero, peaks at 200.
    _, up, _ = ramp_pitch(200, t0=0.2, duration=0.4)
    back = np.concatenate([up, up[-1] - (up - up[0])])
    m = episode_metrics(scripted(back[None]))
    assert m["pitch_rotation_deg"][0] == pytest.approx(0, abs=1e-6)
    assert m["max_pitch_rotation_deg"][0] == pytest.approx(200, abs=1e-6)


def test_pitch_ignores_yaw_about_world_z():
    # A constant heading offset must not leak into the body pitch count.
    _, theta, _ = ramp_pitch(360)
    traj = scripted(theta[None])
    yaw = np.array([np.cos(0.4), 0, 0, np.sin(0.4)])  # 0.8 rad about world z, applied on the left
    w1, v1 = yaw[0], yaw[1:]
    q = traj.root_quat
    w2, v2 = q[..., 0], q[..., 1:]
    traj.root_quat = np.concatenate([(w1 * w2 - v2 @ v1)[..., None],
                                     w1 * v2 + w2[..., None] * v1 + np.cross(v1, v2)], axis=-1)
    assert episode_metrics(traj)["pitch_rotation_deg"][0] == pytest.approx(360, abs=1e-6)


# ---------------------------------------------------------------- apex and flight

def test_parabola_apex_and_flight_time():
    z0, v, t1, t2 = 0.3, 3.0, 0.40, 0.86  # v / g = 0.3058 s puts the apex between samples
    t = np.arange(0, 1.5 + DT / 2, DT)
    tau = np.clip(t - t1, 0, None)
    z = np.where(t >= t1, z0 + v * tau - G * tau ** 2 / 2, z0)
    z = np.maximum(z, z0 - 0.1)
    contact = np.ones((1, len(t), 4), bool)
    contact[0, (t >= t1 - 1e-9) & (t < t2 - 1e-9)] = False
    contact[0, t < 0.1 - 1e-9] = False  # the drop from the spawn height is not a flight
    m = episode_metrics(scripted(np.zeros((1, len(t))), z=z[None], foot_contact=contact))
    assert m["apex_height"][0] == pytest.approx(z0 + v ** 2 / (2 * G), abs=1e-9)
    assert m["flight_time"][0] == pytest.approx(t2 - t1, abs=1e-9)


def test_spawn_drop_is_not_flight():
    t = np.arange(0, 1.0, DT)
    contact = np.ones((1, len(t), 4), bool)
    contact[0, t < 0.3] = False
    contact[0, (t > 0.5) & (t < 0.6), 0] = False  # one foot lifting is not flight
    m = episode_metrics(scripted(np.zeros((1, len(t))), foot_contact=contact))
    assert m["flight_time"][0] == 0.0


def test_landing_torque_counts_from_the_touchdown_after_the_longest_flight():
    t = np.arange(0, 1.5, DT)
    contact = np.ones((2, len(t), 4), bool)
    contact[:, (t >= 0.40 - 1e-9) & (t < 0.86 - 1e-9)] = False     # flight 0.40-0.86 s: touchdown at 0.86 s
    contact[:, (t >= 1.00 - 1e-9) & (t < 1.06 - 1e-9)] = False     # a short hop later does not move it
    contact[1] = True                                              # episode 2 never leaves the ground
    tau = np.zeros((2, len(t), 12))
    k = lambda s: int(round(s / DT))  # noqa: E731
    tau[:, k(0.30), 2] = -33.0        # push-off
    tau[:, k(0.84), 5] = 30.0         # in the air, just before touchdown
    tau[:, k(0.86), 5] = 21.0         # touchdown
    tau[:, k(1.20), 8] = -17.0
    m = episode_metrics(scripted(np.zeros((2, len(t))), foot_contact=contact, torque=tau))
    assert m["peak_torque"][0] == 33.0 and m["landing_peak_torque"][0] == 21.0
    assert m["peak_torque"][1] == 33.0 and np.isnan(m["landing_peak_torque"][1])


def test_longest_run():
    flag = np.array([[1, 1, 0, 1, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]], bool)
    np.testing.assert_array_equal(longest_run(flag), [3, 0, 8])


# ---------------------------------------------------------------- success

def flip_reference(turn_deg=360):
    """The clean scripted flip as a reference clip (standing start and end at 0.3 m, all feet down at the end)."""
    _, traj = flip_episode(turn_deg)
    return Clip(fps=1 / DT, root_pos=traj.root_pos[0], root_quat=traj.root_quat[0], dof_pos=traj.dof_pos[0],
                foot_pos=traj.foot_pos[0], foot_contact=traj.foot_contact[0], joint_names=CANON_JOINTS,
                foot_names=CANON_FEET)


FLIP = flip_reference()


def test_clean_flip_succeeds():
    _, traj = flip_episode(360)
    m = episode_metrics(traj, FLIP)
    assert m["success"][0]
    assert m["final_tilt_deg"][0] == pytest.approx(0, abs=1e-4)
    assert m["flight_time"][0] == pytest.approx(0.5, abs=1e-9)
    assert "success" not in episode_metrics(traj)     # no reference, no verdict


def test_base_contact_fails_success():
    _, traj = flip_episode(360)
    traj.body_contact[0, 50] = True
    m = episode_metrics(traj, FLIP)
    assert m["body_contact"][0] and not m["success"][0]


def test_short_turn_fails():
    m = episode_metrics(flip_episode(300)[1], FLIP)
    assert m["pitch_rotation_deg"][0] == pytest.approx(300, abs=1.0)
    assert not m["success"][0]
    # The tolerance alone decides: a turn 10 degrees short passes the default, fails a stricter one.
    assert episode_metrics(flip_episode(350)[1], FLIP)["success"][0]
    assert not episode_metrics(flip_episode(350)[1], FLIP, {"rotation_deg": [30.0, 5.0, 30.0]})["success"][0]


def test_landing_upside_down_fails():
    m = episode_metrics(flip_episode(540)[1], FLIP)
    assert m["pitch_rotation_deg"][0] == pytest.approx(540, abs=1.0)
    assert m["final_tilt_deg"][0] == pytest.approx(180, abs=1e-4)
    assert not m["success"][0]


def test_low_base_or_feet_up_at_end_fail():
    _, traj = flip_episode(360)
    traj.root_pos[0, -1, 2] = 0.1
    assert not episode_metrics(traj, FLIP)["success"][0]
    _, traj = flip_episode(360)
    window = int(round(0.1 / traj.dt))                   # the success tolerance feet_down_s (default 0.1 s)
    traj.foot_contact[0, -window:, 2] = False            # a foot up for the whole window
    traj.foot_pos[0, -window:, 2, 2] = 0.1
    m = episode_metrics(traj, FLIP)
    assert not m["feet_down_at_end"][0] and not m["success"][0]
    traj.foot_contact[0, -window, 2] = True              # touching once within it: down
    m = episode_metrics(traj, FLIP)
    assert m["feet_down_at_end"][0] and m["success"][0]


# ---------------------------------------------------------------- tracking

def reference_clip(n=60, fps=1 / DT):
    t = np.arange(n) / fps
    theta = -2 * np.pi * np.clip(t / t[-1], 0, 1)
    dof = 0.5 * np.sin(np.outer(t, np.arange(1, 13)))
    feet = np.stack([np.stack([np.full_like(t, i * 0.1), np.cos(t + i), 0.05 * np.sin(3 * t)], -1)
                     for i in range(4)], axis=1)
    return Clip(fps=fps, root_pos=np.stack([0.1 * t, 0 * t, 0.3 + 0.2 * np.sin(np.pi * t / t[-1])], -1),
                root_quat=pitch_quat(theta), dof_pos=dof, foot_pos=feet,
                foot_contact=np.ones((n, 4)), joint_names=CANON_JOINTS, foot_names=CANON_FEET)


def traj_from_clip(clip, e=2, **over):
    n = clip.num_frames
    rep = lambda a: np.repeat(np.asarray(a, float)[None], e, axis=0).copy()
    kw = dict(dt=1 / clip.fps, root_pos=rep(clip.root_pos), root_quat=rep(clip.root_quat),
              root_ang_vel_b=np.zeros((e, n, 3)), dof_pos=rep(clip.dof_pos), dof_vel=rep(clip.dof_vel),
              torque=np.zeros((e, n, 12)), actions=np.zeros((e, n, 12)), foot_pos=rep(clip.foot_pos),
              foot_contact=rep(clip.foot_contact).astype(bool), body_contact=np.zeros((e, n), bool),
              joint_names=CANON_JOINTS, foot_names=CANON_FEET)
    kw.update(over)
    return Trajectory(**kw)


TRACKING = ("joint_rmse", "foot_pos_error", "root_orient_error", "root_height_error", "root_pos_error")


def test_tracking_errors_vanish_on_the_reference():
    clip = reference_clip()
    m = episode_metrics(traj_from_clip(clip), ref=clip)
    for k in TRACKING:
        np.testing.assert_allclose(m[k], 0.0, atol=1e-7, err_msg=k)


def test_tracking_errors_equal_known_offsets():
    clip = reference_clip()
    traj = traj_from_clip(clip)
    traj.dof_pos += 0.1
    traj.foot_pos += [0.03, 0.04, 0.0]
    traj.root_pos[..., 2] += 0.02
    yaw = 0.25
    w1, v1 = np.cos(yaw / 2), np.array([0, 0, np.sin(yaw / 2)])
    q = traj.root_quat
    traj.root_quat = np.concatenate([(w1 * q[..., 0] - q[..., 1:] @ v1)[..., None],
                                     w1 * q[..., 1:] + q[..., :1] * v1 + np.cross(v1, q[..., 1:])], axis=-1)
    m = episode_metrics(traj, ref=clip)
    np.testing.assert_allclose(m["joint_rmse"], 0.1, atol=1e-9)
    np.testing.assert_allclose(m["foot_pos_error"], 0.05, atol=1e-9)
    np.testing.assert_allclose(m["root_height_error"], 0.02, atol=1e-9)
    np.testing.assert_allclose(m["root_pos_error"], 0.02, atol=1e-9)
    np.testing.assert_allclose(m["root_orient_error"], yaw, atol=1e-6)


def test_reference_is_reordered_to_the_trajectory_joint_order():
    clip = reference_clip()
    genesis_legs = ("FL", "FR", "RL", "RR")
    names = tuple(f"{leg}_{p}_joint" for leg in genesis_legs for p in ("hip", "thigh", "calf"))
    perm = [CANON_JOINTS.index(n) for n in names]
    feet = tuple(f"{leg}_foot" for leg in genesis_legs)
    fperm = [CANON_FEET.index(f) for f in feet]
    traj = traj_from_clip(clip, joint_names=names, foot_names=feet)
    traj.dof_pos = traj.dof_pos[..., perm]
    traj.foot_pos = traj.foot_pos[:, :, fperm]
    m = episode_metrics(traj, ref=clip)
    assert m["joint_rmse"].max() < 1e-9 and m["foot_pos_error"].max() < 1e-9
    with pytest.raises(ValueError):
        episode_metrics(traj_from_clip(clip, joint_names=names[:-1] + ("x",)), ref=clip)


def test_reference_holds_its_last_frame_past_its_end():
    clip = reference_clip(n=40)
    longer = reference_clip(n=40)
    traj = traj_from_clip(clip)
    pad = lambda a: np.concatenate([a, np.repeat(a[:, -1:], 10, axis=1)], axis=1)
    traj = traj_from_clip(longer, **{k: pad(getattr(traj, k)) for k in
                                     ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel",
                                      "torque", "actions", "foot_pos", "foot_contact", "body_contact")})
    m = episode_metrics(traj, ref=clip)
    assert traj.num_steps == 50 and m["joint_rmse"].max() < 1e-9


# ---------------------------------------------------------------- effort

def test_torque_energy_and_action_rate():
    dt = 0.01
    t = np.arange(100) * dt  # one full period of sin(2 pi t)
    s = np.sin(2 * np.pi * t)
    n = len(t)
    tau = np.repeat((10 * s)[None, :, None], 12, axis=2)
    qd = np.repeat((-5 * s)[None, :, None], 12, axis=2)  # negative power counts as spent energy too
    actions = np.repeat((0.1 * np.arange(n))[None, :, None], 12, axis=2)
    traj = scripted(np.zeros((1, n)), dt=dt, torque=tau, dof_vel=qd, actions=actions)
    m = episode_metrics(traj)
    # sum of sin^2 over a whole period of samples is n / 2: 10 * 5 * 50 * 0.01 = 25 J per joint.
    assert m["energy"][0] == pytest.approx(12 * 25.0, rel=1e-12)
    assert m["peak_torque"][0] == pytest.approx(10.0, rel=1e-12)
    assert m["rms_torque"][0] == pytest.approx(10 / np.sqrt(2), rel=1e-12)
    assert m["action_rate"][0] == pytest.approx(12 * 0.1 ** 2, rel=1e-9)


# ---------------------------------------------------------------- batching, padding, summaries

@pytest.mark.parametrize("cut", [60, 40])  # 40: the episode ends at the apex, right before padding
def test_episodes_are_independent_and_padding_is_ignored(cut):
    t, a = flip_episode(360)
    _, b = flip_episode(300)
    b.root_pos[0, :, 2] = 0.3 + 0.001 * np.arange(b.num_steps)  # rising: the apex is the last valid sample
    both = Trajectory(**{**{k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in
                            ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel", "torque",
                             "actions", "foot_pos", "foot_contact", "body_contact")},
                         "dt": DT, "length": [len(t), cut]})
    # Garbage after the end of the second episode must change nothing.
    for k in ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel", "torque", "actions", "foot_pos"):
        getattr(both, k)[1, cut:] = np.nan
    both.body_contact[1, cut:] = True
    m = episode_metrics(both)
    ma = episode_metrics(a)
    mb = episode_metrics(Trajectory(**{**{k: getattr(b, k)[:, :cut] for k in
                                          ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel",
                                           "torque", "actions", "foot_pos", "foot_contact", "body_contact")},
                                       "dt": DT}))
    for k in m:
        np.testing.assert_allclose(m[k][0], ma[k][0], atol=1e-9, err_msg=k)
        np.testing.assert_allclose(m[k][1], mb[k][0], atol=1e-9, err_msg=k)
    # An episode cut in the air has no landing; everything else is finite.
    assert np.all(np.isfinite([v for k, v in m.items() if k != "landing_peak_torque"]))
    assert np.isfinite(m["landing_peak_torque"][0])


def test_bad_shapes_are_refused():
    _, a = flip_episode(360)
    with pytest.raises(ValueError, match="dof_vel"):
        Trajectory(**{**{f: getattr(a, f) for f in ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos",
                                                     "torque", "actions", "foot_pos", "foot_contact",
                                                     "body_contact")}, "dt": DT, "dof_vel": np.zeros((1, 3, 12))})


def test_summary_and_table():
    _, ok = flip_episode(360)
    _, short = flip_episode(300)
    keys = ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel", "torque", "actions",
            "foot_pos", "foot_contact", "body_contact")
    mixed = Trajectory(dt=DT, **{k: np.concatenate([getattr(ok, k)] * 3 + [getattr(short, k)]) for k in keys})
    s = summarize(episode_metrics(mixed, reference=Reference(FLIP, None, DT, "cpu")))   # success only
    assert s["episodes"] == 4
    assert s["success_rate"] == pytest.approx(0.75)
    assert 0 < s["success_ci_low"] < 0.75 < s["success_ci_high"] <= 1
    assert s["pitch_rotation_deg_mean"] == pytest.approx((3 * 360 + 300) / 4, abs=1.0)
    assert s["pitch_rotation_deg_std"] == pytest.approx(np.std([360, 360, 360, 300]), abs=1.0)
    clip = reference_clip()
    tracked = summarize(episode_metrics(traj_from_clip(clip), ref=clip))
    table = format_table({"imitation": tracked, "reward-only": s})
    lines = table.splitlines()
    assert "imitation" in lines[0] and "reward-only" in lines[0]
    assert any(line.startswith("success") and "75.0%" in line for line in lines)
    joint_row = next(line for line in lines if line.startswith("joint RMSE"))
    assert joint_row.rstrip().endswith("-")  # the reward-only column had no reference here
