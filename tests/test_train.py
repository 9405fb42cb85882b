"""Tiny PPO trainings in the session env: outputs, and interrupt-and-resume."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
import yaml

from imitation import config as config_mod
from imitation import runs
from imitation.rl.train import train
from retarget.errors import InputError

pytestmark = pytest.mark.genesis


def _progress(run_dir):
    return [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]


def test_tiny_training_writes_outputs(env, env_config_path, tmp_path):
    run = train(env_config_path, max_iterations=2, runs_dir=tmp_path, run_name="tiny", env=env)
    assert run.parent == tmp_path / "test_imitation" and run.name.endswith("_tiny")
    cfg = config_mod.validate(yaml.safe_load((run / "config.yaml").read_text()))
    assert cfg["ppo"]["max_iterations"] == 2 and cfg["env"]["num_envs"] == env.num_envs
    assert (run / "model_2.pt").is_file() and (run / "model_1.pt").is_file()
    assert not list(run.glob(".*.tmp"))  # atomic writes leave no temporaries
    assert list(run.glob("events.out.tfevents.*"))
    ckpt = torch.load(run / "model_2.pt", weights_only=False)
    assert ckpt["iter"] == 2 and "optimizer_state_dict" in ckpt and ckpt["infos"]["config"]["experiment"]
    records = _progress(run)
    assert [r["iteration"] for r in records] == [1, 2]
    assert "rew_joint_pos" in records[-1]["episode"] and records[-1]["steps_per_s"] > 0

    policy = torch.jit.load(str(run / "exported" / "policy.pt"))
    with torch.inference_mode():
        actions = policy(env.get_observations()["policy"].cpu())
    assert actions.shape == (env.num_envs, 12)
    assert (run / "exported" / "policy.onnx").is_file()


def test_interrupt_and_resume(env, env_config_path, tmp_path, monkeypatch):
    # SIGTERM in the middle of the second iteration (8 steps per iteration): the run stops at its end.
    calls = {"n": 0}
    real_step = type(env).step

    def step(self, actions):
        calls["n"] += 1
        if calls["n"] == 12:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(self, actions)

    monkeypatch.setattr(type(env), "step", step)
    run = train(env_config_path, max_iterations=5, runs_dir=tmp_path, env=env)
    monkeypatch.setattr(type(env), "step", real_step)
    assert [r["iteration"] for r in _progress(run)] == [1, 2]
    stopped = torch.load(run / "model_2.pt", weights_only=False)
    assert stopped["iter"] == 2

    # Resume: same config, optimizer state, and the next iteration is 3.
    run2 = train(None, resume=run, env=env)
    assert run2 == run
    assert [r["iteration"] for r in _progress(run)] == [1, 2, 3, 4, 5]
    final = torch.load(run / "model_5.pt", weights_only=False)
    assert final["iter"] == 5
    assert final["infos"]["config"] == stopped["infos"]["config"]
    assert _progress(run)[2]["env_steps"] > _progress(run)[1]["env_steps"]


def test_a_bad_clip_fails_before_a_run_folder_exists(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5")
    for clip in (bad, tmp_path / "missing.h5"):
        with pytest.raises(InputError, match=clip.name):
            train("configs/imitation_backflip.yaml", clip=clip, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_zero_output_starts_the_policy_at_its_residual_base():
    """`ppo.actor.zero_output`: the actor's mean action is 0 for any observation (the residual's base acts), and
    the option is taken out of what rsl-rl's model constructor gets."""
    from rsl_rl.models import MLPModel
    from tensordict import TensorDict

    from imitation.rl.train import rsl_rl_config, zero_output

    obs = TensorDict({"policy": torch.randn(6, 60)}, batch_size=[6])
    actor = MLPModel(obs, {"actor": ["policy"]}, "actor", 12, hidden_dims=[32, 16],
                     distribution_cfg={"class_name": "GaussianDistribution", "init_std": 0.2})
    x = torch.randn(6, 60)
    assert actor.mlp(x).abs().max() > 1e-3          # a fresh network's mean action is not zero
    zero_output(actor)
    assert torch.equal(actor.mlp(x), torch.zeros(6, 12))
    cfg = config_mod.defaults()
    cfg["ppo"]["actor"]["zero_output"] = True
    assert "zero_output" not in rsl_rl_config(cfg)["actor"]


def test_a_new_run_starts_from_a_checkpoints_weights(env, env_config_path, tmp_path):
    """`init_from` (a fine-tune): the new run's iteration-0 weights are the checkpoint's, its action noise its own
    config's, its counters its own; from a TorchScript policy the actor's weights and a fresh critic; a checkpoint of
    other networks is refused in one line."""
    first = train(env_config_path, max_iterations=1, runs_dir=tmp_path, run_name="a", env=env)
    source = torch.load(first / "model_1.pt", weights_only=True)
    init_std = runs.read_config(first / runs.CONFIG)["ppo"]["actor"]["distribution_cfg"]["init_std"]
    tuned = train(env_config_path, max_iterations=0, runs_dir=tmp_path, run_name="b", env=env, init_from=first)
    start = torch.load(tuned / "model_0.pt", weights_only=True)
    assert start["iter"] == 0
    for key in ("actor_state_dict", "critic_state_dict"):
        assert start[key].keys() == source[key].keys()
        assert all(torch.equal(start[key][k], source[key][k]) for k in source[key] if not k.startswith("distribution."))
    std, trained_std = start["actor_state_dict"]["distribution.std_param"], source["actor_state_dict"]["distribution.std_param"]
    assert torch.allclose(std, torch.full_like(std, init_std)) and not torch.allclose(trained_std, std)

    scripted = runs.find_export(first)
    assert scripted is not None
    from_script = torch.load(train(env_config_path, max_iterations=0, runs_dir=tmp_path, run_name="c", env=env,
                                   init_from=scripted) / "model_0.pt", weights_only=True)
    actor, critic = from_script["actor_state_dict"], from_script["critic_state_dict"]
    assert all(torch.equal(actor[k], source["actor_state_dict"][k]) for k in actor if k.startswith("mlp."))
    assert not torch.equal(critic["mlp.0.weight"], source["critic_state_dict"]["mlp.0.weight"])

    other = dict(source, actor_state_dict={k: v[..., :3] for k, v in source["actor_state_dict"].items()})
    torch.save(other, tmp_path / "other.pt")
    with pytest.raises(InputError, match=r"other\.pt: actor_state_dict does not fit this config's networks"):
        train(env_config_path, max_iterations=0, runs_dir=tmp_path, env=env, init_from=tmp_path / "other.pt")
