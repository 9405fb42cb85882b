"""The benchmark harness (imitation bench) on the session env, tiny sizes: structure only, no timing
thresholds."""

from __future__ import annotations

import json
import math

import torch


def _positive_finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_bench_report_structure(env, tmp_path):
    from imitation.bench import format_table, measure

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
    assert all(len(v) == 1 for v in row["samples"].values())

    report = {"settings": {}, "targets": {}, "results": [row]}
    (tmp_path / "bench.json").write_text(json.dumps(report))  # JSON-serializable
    table = format_table(report)
    assert str(env.num_envs) in table and "ratio" in table
