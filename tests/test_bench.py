"""The benchmark harness (imitation bench) on the session env, tiny sizes: structure only, no timing
thresholds."""

from __future__ import annotations

import json
import math

import torch


def _positive_finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_bench_report_structure(env, tmp_path):
    from imitation.tools.bench import format_table, measure

    rng = torch.get_rng_state()
    row = measure(env, env, steps=5, repeats=1, ppo=True, log=lambda *_: None)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's random stream is left alone
    assert row["num_envs"] == env.num_envs and row["steps"] == 5 and row["repeats"] == 1
    assert set(row["steps_per_s"]) == {"floor_imitation", "imitation", "floor_reward", "reward"}
    assert set(row["ratios"]) == {"ratio_imitation", "ratio_reward"}
    for value in (*row["steps_per_s"].values(), *row["ratios"].values()):
        assert _positive_finite(value)
    ppo = row["ppo"]
    assert ppo["steps_per_env"] == env.cfg["ppo"]["num_steps_per_env"]
    for key in ("collect_s", "update_s", "iteration_s", "update_share", "rollout_steps_per_s", "iteration_steps_per_s"):
        assert _positive_finite(ppo[key]), key
    assert 0 < ppo["update_share"] < 1
    from imitation.sim import cpu_cores

    assert ppo["update_threads"] == cpu_cores()  # the update runs on every core, as training does by default
    assert all(len(v) == 1 for v in row["samples"].values())

    report = {"settings": {}, "targets": {}, "results": [row]}
    (tmp_path / "bench.json").write_text(json.dumps(report))  # JSON-serializable
    table = format_table(report)
    assert str(env.num_envs) in table and "ratio" in table


def test_bench_breakdown_accounts_for_the_step(env):
    """The parts of step() add up to no more than the step, the physics is the largest, and the env is left as it
    was."""
    from imitation.tools.bench import _PARTS, breakdown, format_breakdown

    rewards = env.rewards
    torch.manual_seed(0)
    parts = breakdown(env, torch.randn(11, env.num_envs, 12))
    assert set(parts) == {label for label, _, _ in _PARTS} | {"step() total"}
    total = parts.pop("step() total")
    # Disjoint parts (the Genesis reset calls are inside the reset): their sum fits in the step.
    disjoint = ["physics (scene.step)", "genesis: PD targets", "state read (genesis getters + derived)", "rewards",
                "terminations", "logging", "reset (all of it)", "observations"]
    assert 0 < sum(parts[k] for k in disjoint) <= total
    assert parts["physics (scene.step)"] == max(parts.values())
    assert parts["rewards"] > 0 and parts["observations"] > 0 and parts["state read (genesis getters + derived)"] > 0
    inner = [k for k in parts if k.startswith("genesis: re")]
    assert sum(parts[k] for k in inner) <= parts["reset (all of it)"]
    # Unwrapped again: no instance attribute shadows a method, the reward sum is the env's own object.
    assert env.rewards is rewards
    assert not {"_read_state", "_reset", "_log", "_observations", "_terminations"} & set(vars(env))
    assert "step" not in vars(env.scene) and "set_qpos" not in vars(env.robot)
    table = format_breakdown("imitation", env.num_envs, {**parts, "step() total": total})
    assert "where the imitation env's step() time goes" in table
