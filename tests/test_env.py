"""The imitation env: observation layout, tracking rewards, RSI read-back, terminations, faults."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from imitation.utils.rotations import quat_error_angle

pytestmark = pytest.mark.genesis


def _all(env):
    return torch.ones(env.num_envs, dtype=torch.bool, device=env.device)


def _frames(env, value):
    return torch.full((env.num_envs,), int(value), dtype=torch.long, device=env.device)


def test_observation_layout(env):
    n = env.num_envs
    obs = env.reset_envs(_all(env), _frames(env, 0))
    assert set(obs.keys()) == {"policy", "critic"}
    p = obs["policy"]
    assert p.shape == (n, 60)
    assert obs["critic"].shape[0] == n and obs["critic"].shape[1] > 60  # privileged critic
    ref = env.ref.frame(_frames(env, 0))
    torch.testing.assert_close(p[:, 0:3], ref.root_ang_vel_b * 0.25)
    torch.testing.assert_close(p[:, 3:6], torch.tensor([[0.0, 0.0, -1.0]]).expand(n, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(p[:, 6:18], ref.dof_pos - env.default_dof_pos)
    torch.testing.assert_close(p[:, 18:30], ref.dof_vel * 0.05)
    assert torch.all(p[:, 30:54] == 0)  # actions and last actions after a reset
    torch.testing.assert_close(p[:, 54:60], torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]]).expand(n, 6))

    # Phase: pi * t / episode length with t the clip time; sin/cos of phase, phase/2, phase/4.
    frame = 25
    p = env.reset_envs(_all(env), _frames(env, frame))["policy"]
    phase = math.pi * frame * env.dt / env.episode_length_s
    want = [f(phase / d) for d in (1, 2, 4) for f in (math.sin, math.cos)]
    torch.testing.assert_close(p[:, 54:60], torch.tensor([want]).expand(n, 6), atol=1e-5, rtol=0)

    # Action slots: this step's action, then the previous one.
    a1 = 0.1 * torch.randn(n, 12)
    a2 = 0.1 * torch.randn(n, 12)
    env.reset_envs(_all(env), _frames(env, 0))
    env.step(a1)
    p = env.step(a2)[0]["policy"]
    torch.testing.assert_close(p[:, 30:42], a2)
    torch.testing.assert_close(p[:, 42:54], a1)
    # Upright-ish standing robot: gravity mostly along -z of the body.
    assert torch.all(p[:, 5] < -0.9)


def test_future_reference_observations(env):
    n = env.num_envs
    env.reset_envs(_all(env), _frames(env, 10))
    saved = env.obs_spec
    try:
        env.obs_spec = dataclasses.replace(saved, future_frames=(1, 5), future_terms=("joint_pos", "attitude"))
        p = env._observations()["policy"]
        assert p.shape == (n, 60 + 2 * 12 + 2 * 6)
        torch.testing.assert_close(p[:, 60:72], env.ref.dof_pos[11].expand(n, 12) - env.default_dof_pos)
        torch.testing.assert_close(p[:, 72:84], env.ref.dof_pos[15].expand(n, 12) - env.default_dof_pos)
        # The reference's base 1 and 5 frames ahead, seen from the robot's base (which RSI put at frame 10).
        env.obs_spec = dataclasses.replace(saved, future_frames=(1, 5), future_terms=("position",))
        p = env._observations()["policy"]
        assert p.shape == (n, 60 + 2 * 3)
        body = Rotation.from_quat(env.root_quat.cpu().numpy(), scalar_first=True)
        for i, k in enumerate((1, 5)):
            ahead = (env.ref.root_pos[10 + k] - env.root_pos).cpu().numpy()
            np.testing.assert_allclose(p[:, 60 + 3 * i:63 + 3 * i].cpu().numpy(), body.inv().apply(ahead), atol=1e-5)
        step = np.linalg.norm((env.ref.root_pos[15] - env.ref.root_pos[10]).cpu().numpy())
        assert np.linalg.norm(p[0, 63:66].cpu().numpy()) == pytest.approx(step, abs=2e-3)
    finally:
        env.obs_spec = saved


def _imitation_share(env) -> torch.Tensor:
    """Share of the maximum of the positive-weight (tracking) terms, per env."""
    terms = env.reward_terms()
    weights = torch.tensor([w for _, w, _ in env.rewards.items], device=env.device)
    pos = weights > 0
    return terms[:, pos].sum(-1) / weights[pos].sum()


def test_kinematic_reference_scores_max_reward(env):
    """Setting the reference state each step (read back from Genesis) earns >= 95 % of the tracking reward."""
    for frame in range(0, env.ref.last + 1, 7):
        env.reset_envs(_all(env), _frames(env, frame))
        env._read_state()  # read the state back from Genesis
        share = _imitation_share(env)
        assert torch.all(share >= 0.95), f"frame {frame}: {share.min():.3f}"

    # A perturbed state scores clearly less.
    env.reset_envs(_all(env), _frames(env, 30))
    q = env.robot.get_dofs_position(env.dof_idx_list) + 0.3
    env.robot.set_dofs_position(q, env.dof_idx_list, zero_velocity=False)
    pos = env.robot.get_pos()
    pos[:, 2] += 0.1
    env.robot.set_pos(pos, zero_velocity=False)
    env._read_state()
    assert torch.all(_imitation_share(env) < 0.7)


def test_rsi_reproduces_reference_state(env):
    r = env.robot
    frames = torch.tensor([3, 17, 30, 44, 48, 52, 61, 90][: env.num_envs], device=env.device)
    env.reset_envs(_all(env), frames)
    ref = env.ref.frame(frames)
    tol = dict(atol=2e-4, rtol=0)
    torch.testing.assert_close(r.get_pos(), ref.root_pos, **tol)
    assert torch.all(quat_error_angle(r.get_quat(), ref.root_quat) < 1e-3)
    torch.testing.assert_close(r.get_vel(), ref.root_lin_vel, **tol)
    torch.testing.assert_close(r.get_ang(), ref.root_ang_vel, **tol)   # world frame
    torch.testing.assert_close(r.get_dofs_position(env.dof_idx_list), ref.dof_pos, **tol)
    torch.testing.assert_close(r.get_dofs_velocity(env.dof_idx_list), ref.dof_vel, **tol)
    torch.testing.assert_close(r.get_links_pos(env.foot_link_idx), ref.foot_pos, atol=1e-3, rtol=0)
    # The env's own buffers agree with what Genesis holds.
    env_pos, env_dof = env.root_pos.clone(), env.dof_pos.clone()
    env._read_state()
    torch.testing.assert_close(env.root_pos, env_pos, **tol)
    torch.testing.assert_close(env.dof_pos, env_dof, **tol)
    torch.testing.assert_close(env.frame, frames)
    assert torch.all(env.episode_length_buf == 0)

    # Sampled starts: a share at t = 0, the rest spread over the clip.
    starts = []
    for _ in range(60):
        env.reset_envs(_all(env))
        starts.append(env.frame.clone())
    starts = torch.cat(starts).float()
    zero_share = (starts == 0).float().mean().item()
    assert 0.1 < zero_share < 0.35
    assert starts.max() > 0.8 * env.ref.last


def test_body_contact_terminates(env):
    n = env.num_envs
    env.reset_envs(_all(env), _frames(env, 0))
    qpos = env.robot.get_qpos().clone()
    qpos[0, 2] = 0.05  # trunk (box half height 0.057 m) on the ground
    qpos[0, 3:7] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # upside down (roll pi)
    env.robot.set_qpos(qpos[:1], envs_idx=[0], zero_velocity=True)
    _, rew, dones, extras = env.step(torch.zeros(n, 12))
    assert dones[0] and extras["time_outs"][0] == 0
    assert env.termination_reasons[0, 0]  # body contact
    assert not dones[1:].any()
    assert torch.isfinite(rew).all()


def test_time_out_flagged(env):
    n = env.num_envs
    env.reset_envs(_all(env), _frames(env, env.max_episode_length - 1))
    _, _, dones, extras = env.step(torch.zeros(n, 12))
    assert extras["time_outs"].dtype == torch.float32
    assert torch.all(extras["time_outs"] == 1) and torch.all(dones)
    assert not env.termination_reasons.any()


def test_nan_state_is_reset_and_counted(env):
    n = env.num_envs
    env.reset_envs(_all(env), _frames(env, 0))
    before = env.num_faults
    vel = env.robot.get_dofs_velocity().clone()
    vel[1] = float("nan")
    env.robot.set_dofs_velocity(vel[1:2], envs_idx=[1])
    saved = env.stats.interval
    env.stats.interval = 1  # emit the window's log on this step
    try:
        obs, rew, dones, extras = env.step(torch.zeros(n, 12))
    finally:
        env.stats.interval = saved
    assert dones[1] and extras["time_outs"][1] == 0
    assert env.num_faults == before + 1
    assert extras["episode"]["Physics/faults"] >= 1
    assert torch.isfinite(rew).all() and torch.isfinite(obs["policy"]).all() and torch.isfinite(obs["critic"]).all()
    # The faulted env runs on normally, the others were untouched.
    obs, rew, dones, _ = env.step(torch.zeros(n, 12))
    assert torch.isfinite(env.robot.get_qpos()).all() and torch.isfinite(obs["policy"]).all()
    assert env.num_faults == before + 1


def test_episode_log_has_every_term(env):
    n = env.num_envs
    env.reset_envs(_all(env), _frames(env, env.max_episode_length - 2))
    env.stats.interval = 2
    env.stats.n_steps = 0
    try:
        env.step(torch.zeros(n, 12))
        _, _, dones, extras = env.step(torch.zeros(n, 12))
    finally:
        env.stats.interval = env.cfg["ppo"]["num_steps_per_env"]
    assert dones.all()
    ep = extras["episode"]
    for name in env.rewards.names:
        assert f"rew_{name}" in ep
    # Episodes of two tracked steps: the joint-pose term sums to ~2 x its weight.
    w = env.cfg["rewards"]["terms"]["joint_pos"]["weight"]
    assert 1.5 * w < float(ep["rew_joint_pos"]) <= 2 * w + 1e-5
    assert np.isclose(float(ep["Termination/time_out"]), 1.0)


# ---------------------------------------------------------------------------- domain randomization


def _physics(env):
    """Per env: friction ratio of the robot's first geom, base mass, kp and kd of the first joint, as Genesis holds
    them."""
    s, r = env.rigid_solver, env.robot
    return torch.stack([
        s.get_geoms_friction_ratio([r.geom_start])[:, 0],
        r.get_links_mass([env.base_link_idx])[:, 0],
        r.get_dofs_kp(env.dof_idx_list[:1])[:, 0],
        r.get_dofs_kv(env.dof_idx_list[:1])[:, 0],
    ], dim=-1).cpu()


def test_reset_envs_draws_physics_within_the_ranges(env):
    d = env.dr
    assert env.dr_on
    env.reset_envs(_all(env), _frames(env, 0))
    p = _physics(env)
    lo = torch.tensor([d["friction"][0], env.base_mass + d["added_base_mass"][0], env.kp * d["kp_scale"][0],
                       env.kd * d["kd_scale"][0]])
    hi = torch.tensor([d["friction"][1], env.base_mass + d["added_base_mass"][1], env.kp * d["kp_scale"][1],
                       env.kd * d["kd_scale"][1]])
    assert torch.all(p >= lo - 1e-4) and torch.all(p <= hi + 1e-4)
    assert torch.all(p.std(0) > 0.02 * (hi - lo))  # a draw per env, not one for all
    # The plane takes each env's friction too, and the env's own PD torque uses the gains Genesis has.
    plane = env.rigid_solver.get_geoms_friction_ratio([env.plane.geom_start])[:, 0].cpu()
    assert torch.allclose(plane, p[:, 0])
    assert torch.allclose(env.kp_env[:, 0].cpu(), p[:, 2]) and torch.allclose(env.kd_env[:, 0].cpu(), p[:, 3])
    # Another explicit reset draws again.
    env.reset_envs(_all(env), _frames(env, 0))
    assert not torch.allclose(_physics(env), p)


def test_a_randomization_curriculum_widens_the_draws_from_the_nominal_robot(env, monkeypatch):
    """With curriculum_env_steps C, the draws at env step t reach (t / C) of the way from the nominal robot to the
    ranges' ends; an evaluation (playback) draws from the full ranges whatever the curriculum says."""
    d = env.dr
    monkeypatch.setitem(d, "curriculum_env_steps", 1000)
    nominal = torch.tensor([1.0, env.base_mass, env.kp, env.kd])
    full = torch.tensor([max(abs(d["friction"][0] - 1.0), abs(d["friction"][1] - 1.0)),
                         max(abs(v) for v in d["added_base_mass"]),
                         env.kp * max(abs(v - 1.0) for v in d["kp_scale"]), env.kd * max(abs(v - 1.0) for v in d["kd_scale"])])
    spread = {}
    for steps in (0, 250, 1000, 5000):
        monkeypatch.setattr(env, "env_steps", steps)
        env._randomize(_all(env))
        dev = (_physics(env) - nominal).abs()
        assert torch.all(dev <= full * min(1.0, steps / 1000) + 1e-4), steps
        spread[steps] = float((dev / full).max())
    assert spread[0] < 1e-5 and 0.1 < spread[250] <= 0.25 + 1e-4 and spread[1000] > 0.5 and spread[5000] > 0.5
    monkeypatch.setattr(env, "env_steps", 0)
    with env.playback(2, dr_ranges=d):
        env.reset_envs(_all(env), _frames(env, 0))
        assert float(((_physics(env) - nominal).abs() / full).max()) > 0.5
    assert env.randomization_scale() == 0.0  # restored after the playback
    env.reset_envs(_all(env), _frames(env, 0))


def test_resets_in_step_keep_or_redraw_physics(env, monkeypatch):
    """A reset inside step() without a redraw keeps the env's physics (the latency still drawn anew); with
    physics_redraw_every N, about 1 in N of the steps that reset envs redraws theirs."""
    n = env.num_envs
    env.reset_envs(_all(env), _frames(env, 0))
    before = _physics(env)
    env._reset(_all(env), redraw_physics=False)
    assert torch.equal(_physics(env), before)

    monkeypatch.setitem(env.dr, "physics_redraw_every", 4)
    monkeypatch.setattr(env, "max_episode_length", 1)  # every env times out and resets at every step
    redrawn = 0
    steps = 200
    for _ in range(steps):
        p = _physics(env)
        _, _, dones, _ = env.step(torch.zeros(n, 12))
        assert dones.all()
        changed = ~torch.isclose(_physics(env), p).all(-1)
        assert changed.all() or not changed.any()  # one decision per step, for all the envs it resets
        redrawn += int(changed.all())
    # Binomial(200, 1/4): mean 50, sd 6.1
    assert 50 - 4 * 6.1 < redrawn < 50 + 4 * 6.1
    env.reset_envs(_all(env), _frames(env, 0))
