"""Evaluation: policy loading and settings, obs-size errors, rollouts in the session env, and the
online flip statistics logged during training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from imitation.config import defaults
from imitation.env import success as rule
from imitation.env.online_success import OnlineSuccess
from imitation.evaluation.evaluate import eval_config, evaluate, evaluate_both, write_json
from imitation.evaluation.policy import load_policy
from imitation.rl.train import train
from retarget.errors import InputError


class _Zero(nn.Module):
    """A TorchScript-able MLP whose every weight is zero: it outputs zeros."""

    def __init__(self, n_in: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, 16), nn.ELU(), nn.Linear(16, 12))
        for p in self.net.parameters():
            nn.init.zeros_(p)

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def zero60(tmp_path_factory):
    path = tmp_path_factory.mktemp("policies") / "zero60.pt"
    torch.jit.script(_Zero(60)).save(str(path))
    return path


# ---------------------------------------------------------------------------- no Genesis


def test_external_policy_runs_with_the_genesis_example_settings(zero60, hop_clip_path):
    policy, info = load_policy(zero60)
    assert info["kind"] == "torchscript" and info["config"] is None and info["obs_dim"] == 60
    assert policy({"policy": torch.ones(3, 60)}).shape == (3, 12)
    cfg = eval_config(info, clip=hop_clip_path, episodes=5)
    e = cfg["env"]
    assert (e["kp"], e["kd"], e["action_scale"], e["action_mode"]) == (70.0, 3.0, 0.5, "default")
    assert e["action_latency"] is True and e["observations"]["last_actions"] == "current"
    assert e["episode_length_s"] == 2.0 and e["dt"] == 0.02 and e["observations"]["future_frames"] == []
    assert e["num_envs"] == 5 and not cfg["reset"]["rsi"]
    t = cfg["termination"]
    assert not t["body_contact"] and t["max_height_error"] is None and t["max_orientation_error"] is None
    assert not cfg["domain_randomization"]["enabled"]
    r = eval_config(info, clip=hop_clip_path, randomize=True)["domain_randomization"]
    assert r["enabled"] and r["action_latency_probability"] > 0 and all(v == 0 for v in r["init_noise"].values())


def test_observation_size_mismatch_is_one_clear_line(tmp_path, hop_clip_path):
    path = tmp_path / "walker45.pt"
    torch.jit.script(nn.Sequential(nn.Linear(45, 8), nn.ELU(), nn.Linear(8, 12))).save(str(path))
    with pytest.raises(InputError) as e:
        evaluate(path, clip=hop_clip_path, episodes=2)
    msg = str(e.value)
    assert "\n" not in msg and "45" in msg and "60" in msg and str(path) in msg


def test_bad_policy_files(tmp_path):
    with pytest.raises(InputError, match="no such"):
        load_policy(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(InputError, match="neither a TorchScript policy nor a checkpoint"):
        load_policy(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="no checkpoint"):
        load_policy(tmp_path)
    # A pickle that would build an arbitrary object is refused without running it.
    torch.save({"actor_state_dict": {}, "payload": _Foreign()}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="not a checkpoint of this project|neither a TorchScript policy nor a checkpoint"):
        load_policy(tmp_path / "foreign.pt")
    assert not _Foreign.loaded


class _Foreign:
    loaded = False

    def __setstate__(self, state):
        _Foreign.loaded = True


def _pitch(theta):
    t = torch.as_tensor(theta, dtype=torch.float32)
    return torch.stack([torch.cos(t / 2), torch.zeros_like(t), torch.sin(t / 2), torch.zeros_like(t)], dim=-1)


def test_online_success_agrees_with_the_offline_rule():
    n, dt, steps = 4, 0.02, 25
    # The reference: one backward turn in place over 25 steps, standing at 0.3 m, feet down at the end.
    ref_quat = _pitch(-2 * math.pi * torch.arange(steps + 1) / steps)
    ref_pos = torch.tensor([0.0, 0.0, 0.3]).expand(steps + 1, 3)
    expected = rule.outcome_of(ref_pos[None], ref_quat[None], torch.ones(1, steps + 1, 4, dtype=torch.bool),
                               torch.zeros(1, steps + 1, dtype=torch.bool), torch.tensor([steps + 1]), dt)
    tol = defaults()["success"]
    online = OnlineSuccess(n, dt, "cpu", expected, tol, loop=False)
    start_pos = torch.tensor([[0.0, 0.0, 0.3]]).repeat(n, 1)
    online.reset(torch.ones(n, dtype=torch.bool), torch.tensor([0, 0, 0, 7]), start_pos, _pitch(torch.zeros(n)))
    # env 0: the full turn; env 1: the turn with a body contact; env 2: cut short; env 3: started at frame 7.
    quats, contact = [], torch.tensor([False, True, False, False])
    for k in range(1, steps + 1):
        q = _pitch(torch.full((n,), -2 * math.pi * k / steps))
        quats.append(q)
        online.step(q, contact, torch.ones(n, 4, dtype=torch.bool), torch.full((n,), 0.04), torch.full((n,), 0.1))
    out = online.emit()
    assert math.isnan(float(out["Success/success_rate"])) and float(out["Success/episodes"]) == 0
    time_out = torch.tensor([True, True, False, True])
    online.end(torch.ones(n, dtype=torch.bool), time_out, start_pos, quats[-1], torch.full((n, 4), 0.022))
    out = online.emit()
    assert float(out["Success/episodes"]) == 3                                   # envs 0-2
    assert float(out["Success/success_rate"]) == pytest.approx(1 / 3)           # env 1 touched, env 2 cut short
    assert float(out["Success/pitch_rotation_deg"]) == pytest.approx(360.0, abs=1e-3)
    assert float(out["Success/joint_rmse"]) == pytest.approx(0.2)
    assert float(out["Success/root_orient_error"]) == pytest.approx(0.1)
    assert float(out["Success/final_tilt_deg"]) == pytest.approx(0.0, abs=1e-3)
    # The same episodes judged offline from their recorded samples: the same verdicts.
    traj_quat = torch.stack([_pitch(torch.zeros(n)), *quats], dim=1)
    offline = rule.outcome_of(start_pos[:, None].expand(n, steps + 1, 3), traj_quat,
                              torch.ones(n, steps + 1, 4, dtype=torch.bool),
                              contact[:, None].expand(n, steps + 1), torch.full((n,), steps + 1), dt)
    verdicts = rule.judge(offline, expected, tol, loop=False)["success"]
    assert verdicts.tolist() == [True, False, True, True]      # env 2's episode was cut short online only
    # A window without such episodes repeats the last values.
    again = online.emit()
    assert float(again["Success/success_rate"]) == pytest.approx(1 / 3) and float(again["Success/episodes"]) == 0


# ---------------------------------------------------------------------------- in the session env


@pytest.mark.genesis
def test_zero_policy_rollouts(env, env_config_path, zero60, tmp_path):
    saved = (dict(env.terminations), env.max_episode_length)
    res = evaluate(zero60, config=env_config_path, episodes=10, env=env)   # 2 batches of the 8 envs
    assert res.env is env
    assert (env.terminations, env.max_episode_length) == saved and env.terminations   # restored
    steps = env.max_episode_length
    assert res.trajectory.root_pos.shape == (10, steps + 1, 3)
    assert res.trajectory.foot_contact.shape == (10, steps + 1, 4)
    for name in ("success", "pitch_rotation_deg", "joint_rmse", "root_orient_error", "apex_height", "fault"):
        assert res.metrics[name].shape == (10,), name
    m = res.metrics
    # Zero residual on the hop reference: it does what the reference does (no flip, tracked closely, upright at
    # the end), which is success by the reference-derived rule.
    assert m["success"].all() and not m["fault"].any()
    assert np.all(np.abs(m["pitch_rotation_deg"]) < 20)
    assert np.all(m["joint_rmse"] < 0.3) and np.all(m["final_tilt_deg"] < 20)
    assert np.all(np.isfinite(m["apex_height"])) and np.all(m["apex_height"] < 0.6)
    assert res.summary["episodes"] == 10 and res.summary["success_rate"] == 1.0
    s = res.settings
    assert s["policy_kind"] == "torchscript" and s["episodes"] == 10 and s["action_mode"] == "residual"
    # Deterministic: both batches ran the same episodes.
    np.testing.assert_allclose(res.trajectory.root_pos[0], res.trajectory.root_pos[8], atol=1e-5)
    out = json.loads(write_json(res, tmp_path / "eval.json").read_text())
    assert len(out["episodes"]) == 10 and out["summary"]["success_rate"] == 1.0 and out["settings"]["kp"] == 70.0
    # The fields any motion's evaluation reports: the success rate and the episode length in seconds.
    assert out["success_rate"] == 1.0
    assert out["episode_length_s"] == pytest.approx(env.max_episode_length * env.dt)
    assert out["settings"]["success_tolerances"]["end_position_m"] == env.success_tolerances["end_position_m"]


@pytest.mark.genesis
def test_nominal_episode_beside_the_randomized_ones_is_the_nominal_evaluation(env, env_config_path, zero60):
    """One batch serves both conditions: env 0 runs the nominal robot (whose episode, deterministic, stands for all
    nominal ones), exactly as a nominal evaluation of its own; the other envs run randomized physics."""
    alone = evaluate(zero60, config=env_config_path, episodes=1, env=env)
    nom, rnd = evaluate_both(zero60, config=env_config_path, episodes=env.num_envs - 1, env=env)
    n = env.num_envs - 1
    assert nom.trajectory.num_episodes == rnd.trajectory.num_episodes == n
    assert not nom.settings["randomize"] and rnd.settings["randomize"] and nom.settings["episodes"] == n
    for e in range(n):
        np.testing.assert_array_equal(nom.trajectory.root_pos[e], alone.trajectory.root_pos[0])
    np.testing.assert_array_equal(nom.metrics["joint_rmse"], np.repeat(alone.metrics["joint_rmse"], n))
    # Randomized physics (friction, mass, gains, latency) moves the robot differently from the nominal one.
    spread = np.abs(rnd.trajectory.root_pos - alone.trajectory.root_pos[:1]).max(axis=(1, 2))
    assert (spread > 1e-3).sum() >= n - 1, spread
    with pytest.raises(InputError, match="num_envs"):
        evaluate_both(zero60, config=env_config_path, episodes=env.num_envs, env=env)


@pytest.mark.genesis
def test_env_settings_must_agree(env, zero60):
    # Without a config the external policy needs the Genesis example's settings, which this env lacks.
    with pytest.raises(InputError) as e:
        evaluate(zero60, clip=env.cfg["clip"], episodes=2, env=env)
    assert "action_mode" in str(e.value) and "action_latency" in str(e.value)


@pytest.mark.genesis
def test_checkpoint_and_export_of_a_run_agree(env, env_config_path, tmp_path):
    run = train(env_config_path, max_iterations=1, runs_dir=tmp_path, env=env)
    a = evaluate(run, episodes=8, env=env)                                   # model_1.pt, actor rebuilt
    b = evaluate(run / "exported" / "policy.pt", episodes=8, env=env)        # TorchScript export
    assert a.settings["policy_kind"] == "checkpoint" and a.settings["iteration"] == 1
    assert b.settings["policy_kind"] == "export"
    np.testing.assert_allclose(a.trajectory.root_pos, b.trajectory.root_pos, atol=1e-4)
    np.testing.assert_allclose(a.metrics["joint_rmse"], b.metrics["joint_rmse"], atol=1e-4)


@pytest.mark.genesis
def test_training_log_has_flip_curves(env):
    n = env.num_envs
    env.reset_envs(torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.long))
    saved = env.stats.interval
    env.stats.interval, env.stats.n_steps = env.max_episode_length, 0
    try:
        for _ in range(env.max_episode_length):
            _, _, dones, extras = env.step(torch.zeros(n, 12))
    finally:
        env.stats.interval = saved
    ep = extras["episode"]
    assert float(ep["Success/episodes"]) == n and 0.0 <= float(ep["Success/success_rate"]) <= 1.0
    assert 0 <= float(ep["Success/joint_rmse"]) < 0.3 and abs(float(ep["Success/pitch_rotation_deg"])) < 20
