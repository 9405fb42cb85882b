"""The second engine: MuJoCo and Genesis agree on the robot and on what the policy sees; bundles are checked; a
stand-in policy is judged in MuJoCo from its bundle alone, without importing genesis."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

from imitation.bundle import FILE, check_bundle, make_bundle, read_bundle, read_onnx_bundle, write_bundle
from imitation.cli import main
from imitation.sim2sim.model import build_model
from imitation.sim2sim.runner import MujocoRunner, draw_physics, nominal_physics, realistic_physics
from retarget.clip import read_clip, sha256_of
from retarget.errors import InputError
from retarget.robot import PROJECT_ROOT, load_robot

ROBOT = load_robot()


def _onnx_policy(path: Path, n_in: int, bias: float = 0.0) -> None:
    """A small MLP exported like a shipped policy: zero weights, so it outputs `bias` for every action."""
    net = torch.nn.Sequential(torch.nn.Linear(n_in, 16), torch.nn.ELU(), torch.nn.Linear(16, 12))
    for p in net.parameters():
        torch.nn.init.zeros_(p)
    torch.nn.init.constant_(net[2].bias, bias)
    torch.onnx.export(net, (torch.zeros(1, n_in),), str(path), input_names=["obs"], output_names=["actions"],
                      dynamic_axes={"obs": {0: "n"}}, dynamo=False)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory, env):
    """A shipped-policy folder for the session env's config and clip: bundle.json + a zero-action policy.onnx."""
    folder = tmp_path_factory.mktemp("policies") / "stand_in_s1"
    folder.mkdir()
    clip = Path(env.cfg["clip"])
    bundle = make_bundle(env.cfg, ROBOT, clip, str(clip), sha256_of(clip))
    _onnx_policy(folder / "policy.onnx", bundle["observation"]["size"])
    write_bundle(folder, bundle)
    return folder


# ---------------------------------------------------------------------------- the same robot in both engines


def test_both_engines_agree_on_joint_order_and_kinematics(env):
    rng = np.random.default_rng(0)
    n = env.num_envs
    q = rng.uniform(ROBOT.lower, ROBOT.upper, size=(n, 12))
    pos = np.array([0.1, -0.2, 0.5]) + rng.normal(0, 0.1, (n, 3))
    quat = rng.normal(size=(n, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    qpos = torch.zeros(n, env.robot.n_qs)
    qpos[:, 0:3], qpos[:, 3:7] = torch.tensor(pos), torch.tensor(quat)
    qpos[:, env.q_idx.cpu()] = torch.tensor(q, dtype=torch.float32)
    try:
        env.robot.set_qpos(qpos.to(env.device), zero_velocity=True)
        genesis_feet = env.robot.get_links_pos(env.foot_link_idx).cpu().numpy().astype(np.float64)
        g = build_model(ROBOT)
        d = mujoco.MjData(g.model)
        for i in range(n):
            d.qpos[0:3], d.qpos[3:7], d.qpos[g.qpos_idx] = pos[i], quat[i], qpos[i, env.q_idx.cpu()].numpy()
            mujoco.mj_kinematics(g.model, d)
            np.testing.assert_allclose(d.xpos[g.foot_body], genesis_feet[i], atol=1e-6)
    finally:
        env.reset_envs(torch.ones(n, dtype=torch.bool, device=env.device))


def test_both_engines_make_the_same_observation(env, stand_in):
    runner = MujocoRunner(stand_in)
    g = runner.model(500.0)
    m, d = g.model, mujoco.MjData(g.model)
    rng = np.random.default_rng(1)
    n, frame = env.num_envs, 7
    env.reset_envs(torch.ones(n, dtype=torch.bool, device=env.device), torch.full((n,), frame, device=env.device))
    # A random state of env 0 in both engines: pose, joints, world linear and body angular velocity.
    quat = rng.normal(size=4)
    quat /= np.linalg.norm(quat)
    q = rng.uniform(ROBOT.lower + 0.1, ROBOT.upper - 0.1)
    root_vel, joint_vel = rng.normal(0, 1.0, 6), rng.normal(0, 3.0, 12)
    qpos = env.robot.get_qpos().clone()
    vel = env.robot.get_dofs_velocity().clone()
    qpos[0, 0:3], qpos[0, 3:7] = torch.tensor([0.0, 0.0, 0.6]), torch.tensor(quat, dtype=torch.float32)
    qpos[0, env.q_idx] = torch.tensor(q, dtype=torch.float32)
    vel[0, 0:6] = torch.tensor(root_vel, dtype=torch.float32)
    vel[0, env.dof_idx] = torch.tensor(joint_vel, dtype=torch.float32)
    a, b = torch.tensor(rng.normal(size=(1, 12)), dtype=torch.float32), torch.tensor(rng.normal(size=(1, 12)),
                                                                                   dtype=torch.float32)
    # Every term of the reference ahead too (the base position relative to the reference's among them).
    saved = env.obs_spec
    env.obs_spec = runner.spec = dataclasses.replace(saved, future_frames=(1, 5),
                                                     future_terms=("joint_pos", "attitude", "position"))
    try:
        env.robot.set_dofs_velocity(vel, skip_forward=True)
        env.robot.set_qpos(qpos, zero_velocity=False)
        env._read_state()
        env.actions[:], env.last_actions[:] = a, b
        genesis_obs = env._observations()["policy"][0].cpu()
        d.qpos[0:3], d.qpos[3:7], d.qpos[g.qpos_idx] = [0.0, 0.0, 0.6], quat, q
        d.qvel[0:6], d.qvel[g.dof_idx] = root_vel, joint_vel
        mujoco.mj_forward(m, d)
        mujoco_obs = runner.observation([runner.read_state(g, m, d)], frame, a, b)[0]
    finally:
        env.obs_spec = saved
        env.reset_envs(torch.ones(n, dtype=torch.bool, device=env.device))
    assert genesis_obs.shape == mujoco_obs.shape == (60 + 2 * (12 + 6 + 3),)
    torch.testing.assert_close(mujoco_obs, genesis_obs, atol=1e-5, rtol=0)
    assert float(genesis_obs[3:6].norm()) == pytest.approx(1.0, abs=1e-5)   # a unit gravity, really rotated


def test_a_refined_clip_replayed_with_zero_action_in_mujoco(tmp_path):
    """Reported against Genesis, not asserted equal: a refined clip is Genesis' own zero-action replay."""
    from imitation.config import load_config

    clip = PROJECT_ROOT / "motions" / "refined" / "jump.h5"
    cfg = load_config(PROJECT_ROOT / "configs" / "imitation.yaml",
                      {"clip": str(clip), "env": {"residual_base": "pd_target", "residual_lead": 1,
                                                  "residual_velocity_gain": 0.0}})
    bundle = make_bundle(cfg, ROBOT, clip, str(clip), sha256_of(clip))
    runner = MujocoRunner(tmp_path, bundle=bundle)
    ep = runner.run_episode(nominal_physics(bundle), policy=False)
    ref = read_clip(clip, ROBOT).resample(1 / runner.dt)
    k = min(len(ep.arrays["root_pos"]), ref.num_frames)
    err = np.linalg.norm(ep.arrays["root_pos"][:k] - ref.root_pos[:k], axis=1)
    print(f"\nzero-action replay of {clip.name} in MuJoCo vs Genesis (the refined clip): root position error "
          f"mean {err.mean():.3f} m, max {err.max():.3f} m, final {err[-1]:.3f} m; apex {ep.arrays['root_pos'][:, 2].max():.3f}"
          f" m vs {ref.root_pos[:, 2].max():.3f} m")
    assert ep.fault_at < 0 and np.isfinite(err).all()
    assert err[: int(0.2 / runner.dt)].max() < 0.02      # the robot stands where the clip starts


# ---------------------------------------------------------------------------- bundles


def test_a_bundle_holds_what_a_runner_needs(env, stand_in):
    b = read_bundle(stand_in)
    assert b["robot"]["joint_names"] == list(ROBOT.joint_names)
    np.testing.assert_allclose(b["robot"]["default_pose"], ROBOT.default_pose)
    np.testing.assert_allclose(b["robot"]["armature"], ROBOT.armature)
    assert b["control"]["kp"] == env.kp and b["control"]["action_scale"] == env.action_scale
    assert b["control"]["residual_base"]["lead"] == env.residual_lead
    assert b["observation"]["size"] == env.obs["policy"].shape[1]
    assert [s["name"] for s in b["observation"]["slices"]][:3] == ["root_ang_vel_b", "projected_gravity", "dof_pos"]
    assert b["reference"]["sha256"] == sha256_of(env.cfg["clip"])
    assert read_onnx_bundle(stand_in / "policy.onnx") == b          # the same bundle in the ONNX metadata


@pytest.mark.parametrize("edit, field", [
    (lambda b: b["control"].pop("kp"), "control.kp"),
    (lambda b: b["robot"]["joint_names"].pop(), "robot.joint_names"),
    (lambda b: b["observation"].update(size=61), "observation.size"),
    (lambda b: b["reference"].update(loop=True), "observation.phase.kind"),
    (lambda b: b["robot"]["armature"].__setitem__(2, -0.1), "robot.armature"),
])
def test_a_bad_bundle_is_refused_in_one_line_and_nothing_is_written(stand_in, tmp_path, capsys, edit, field):
    folder = tmp_path / "bad"
    shutil.copytree(stand_in, folder)
    b = json.loads((folder / FILE).read_text())
    edit(b)
    (folder / FILE).write_text(json.dumps(b))
    out = tmp_path / "out.json"
    assert main(["eval", str(folder), "--sim", "mujoco", "--episodes", "1", "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err, err
    assert not out.exists()
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        check_bundle(b, "b")


def test_a_clip_that_is_not_the_bundles_is_refused(stand_in, tmp_path):
    folder = tmp_path / "other"
    shutil.copytree(stand_in, folder)
    b = json.loads((folder / FILE).read_text())
    b["reference"]["sha256"] = "0" * 64
    (folder / FILE).write_text(json.dumps(b))
    with pytest.raises(InputError, match="reference.sha256"):
        MujocoRunner(folder)


# ---------------------------------------------------------------------------- judged in MuJoCo


def test_a_stand_in_policy_is_judged_in_mujoco_like_in_genesis(stand_in):
    from imitation.analysis.metrics import episode_metrics
    from imitation.sim2sim.evaluate import evaluate_mujoco

    res = evaluate_mujoco(stand_in, episodes=3, randomize=True, seed=3)
    traj = res.trajectory
    runner = MujocoRunner(stand_in)
    assert traj.num_episodes == 3 and traj.num_steps == runner.steps + 1
    np.testing.assert_allclose(traj.root_pos[:, 0], runner.ref.root_pos[0].numpy()[None].repeat(3, 0), atol=1e-6)
    assert np.all(traj.actions == 0.0)                                # the stand-in's zero actions, recorded
    physics = res.settings["physics"]
    assert len({p["friction"] for p in physics}) == 3                 # drawn per episode ...
    assert all(250 <= p["physics_hz"] <= 1000 for p in physics)       # ... within the second engine's ranges
    assert all(0 <= a <= 0.02 for p in physics for a in p["armature"])
    again = episode_metrics(traj, read_clip(runner.clip_path), runner.bundle["success"], reference=runner.ref)
    np.testing.assert_array_equal(again["success"] & ~res.metrics["fault"], res.metrics["success"])
    # the same seed draws the same robots
    assert evaluate_mujoco(stand_in, episodes=3, randomize=True, seed=3).settings["physics"] == physics


def test_physics_variants_differ_only_where_they_say(stand_in):
    b = read_bundle(stand_in)
    nom, real = nominal_physics(b), realistic_physics(b)
    assert nom.armature is None and np.allclose(real.armature, 0.01) and np.allclose(real.friction_loss, 0.2)
    r = draw_physics(b, np.random.default_rng(0))
    lo, hi = b["randomization"]["friction"]
    assert lo <= r.friction <= hi
    runner = MujocoRunner(stand_in)
    g, m = runner._physics_model(real)
    np.testing.assert_allclose(m.dof_armature[g.dof_idx], 0.01)
    g, m = runner._physics_model(nom)
    np.testing.assert_allclose(m.dof_armature[g.dof_idx], ROBOT.armature)


def test_the_mujoco_runner_imports_no_genesis(stand_in):
    code = (f"import sys; from imitation.cli import main; "
            f"assert main(['eval', {str(stand_in)!r}, '--sim', 'mujoco', '--episodes', '1']) == 0; "
            f"print('genesis' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "False"
    assert "success rate" in proc.stdout


def test_one_physics_figure_at_a_time(stand_in, capsys):
    from imitation.sim2sim.evaluate import evaluate_mujoco, parse_overrides

    assert parse_overrides(["armature=0.1", "physics_hz=1000", "latency=1"]) == {
        "armature": 0.1, "physics_hz": 1000.0, "latency": True}
    res = evaluate_mujoco(stand_in, episodes=2, randomize=True, overrides={"armature": 0.1, "physics_hz": 250.0})
    assert all(p["armature"] == [0.1] * 12 and p["physics_hz"] == 250.0 for p in res.settings["physics"])
    assert main(["eval", str(stand_in), "--sim", "mujoco", "--set", "armature"]) == 2
    assert main(["eval", str(stand_in), "--sim", "mujoco", "--set", "mass=2"]) == 2
    assert main(["eval", str(stand_in), "--set", "armature=0.1"]) == 2          # a MuJoCo setting, not Genesis'
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: --") for line in err)
