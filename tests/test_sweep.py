"""Checkpoint sweeps (success against training env steps): milestones, checkpoint selection, the report's
curve-based learning speed, and a real sweep of a tiny run that must agree with `imitation eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from imitation.analysis.report import PolicyData, build_report, milestones
from imitation.evaluation.evaluate import evaluate
from imitation.evaluation.sweep import checkpoints, sweep_run, sweep_runs
from imitation.rl.train import train
from imitation.runs import read_curve
from imitation.tools.ship import ship_run, thin_progress
from retarget.errors import InputError


def _rows(rates, per_it=6144, every=50, episodes=100):
    return [{"iteration": i * every + 1, "env_steps": (i * every + 1) * per_it, "episodes": episodes,
             "successes": round(r * episodes), "success_rate": r} for i, r in enumerate(rates)]


def test_milestones_find_the_first_checkpoints_reaching_each_level():
    rows = _rows([0.0, 0.0, 0.03, 0.5, 0.92, 0.85, 0.95, 0.71])
    m = milestones(rows, 0.9)
    assert m["first_success_env_steps"] == 101 * 6144          # the third checkpoint: 3/100
    assert m["target_env_steps"] == 201 * 6144                 # 0.92 >= 0.9, before the 0.85 dip
    assert m["final_success_rate"] == 0.71 and m["final_env_steps"] == 351 * 6144 and m["best_success_rate"] == 0.95
    never = milestones(_rows([0.0, 0.0]), 0.9)
    assert never["first_success_env_steps"] is None and never["target_env_steps"] is None
    assert milestones(_rows([0.0, 0.9]), 0.9)["target_env_steps"] == 51 * 6144  # the target itself counts


def test_checkpoint_selection_keeps_one_per_window_and_the_last(tmp_path):
    for n in (1, 51, 101, 151, 200, 201):
        (tmp_path / f"model_{n}.pt").write_bytes(b"x")
    (tmp_path / "model_x.pt").write_bytes(b"x")
    assert [n for n, _ in checkpoints(tmp_path)] == [1, 51, 101, 151, 200, 201]
    assert [n for n, _ in checkpoints(tmp_path, every=100)] == [1, 101, 200, 201]
    with pytest.raises(InputError, match="no checkpoint"):
        checkpoints(tmp_path / "none")


def test_report_takes_learning_speed_from_eval_curves(tmp_path):
    a = PolicyData("imitation", ["a1", "a2"], [[], []], seeds=[1, 2],
                   curves=[_rows([0.0, 0.4, 0.93, 0.96]), _rows([0.0, 0.0, 0.6, 0.91])])
    b = PolicyData("reward-only", ["b1", "b2"], [[], []], seeds=[1, 2],
                   curves=[_rows([0.0, 0.0, 0.0, 0.0]), _rows([0.0, 0.0, 0.02, 0.0])])
    report = build_report(tmp_path, [a, b])
    text = report.read_text()
    # Seed 1 reaches 90% at the third checkpoint (101 its), seed 2 at the fourth (151 its): median = lower of two.
    assert "- **Learning speed**: imitation wins" in text and "reward-only never did" in text
    assert "| imitation | 1 | 313k | 621k | 928k | 96% | 96% |" in text
    assert "| reward-only | 2 | 621k | never | 928k | 0% | 2% |" in text
    with Image.open(tmp_path / "success_curve.png") as img:
        assert img.format == "PNG"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["learning_speed"]["imitation"]["median_env_steps"] == 101 * 6144
    assert summary["learning_speed"]["imitation"]["source"] == "eval_curve"


@pytest.mark.genesis
def test_sweep_of_a_tiny_run_agrees_with_eval(env, env_config_path, tmp_path):
    run = train(env_config_path, max_iterations=2, runs_dir=tmp_path, env=env)
    rows, env2 = sweep_run(run, episodes=8, randomize=False, device="cpu", env=env, log=lambda *a: None)
    assert env2 is env
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    per_it = env.num_envs * cfg["ppo"]["num_steps_per_env"]
    assert [(r["iteration"], r["env_steps"]) for r in rows] == [(1, per_it), (2, 2 * per_it)]
    for r in rows:  # each row is exactly what `imitation eval` says of that checkpoint
        res = evaluate(run / f"model_{r['iteration']}.pt", episodes=8, env=env)
        assert r["successes"] == int(res.metrics["success"].sum())
        assert r["joint_rmse_mean"] == pytest.approx(res.summary["joint_rmse_mean"], abs=1e-9)
        assert r["pitch_rotation_deg_mean"] == pytest.approx(res.summary["pitch_rotation_deg_mean"], abs=1e-9)
        # the episodes failing each criterion: an episode fails when it fails at least one
        failing = np.zeros(8, bool)
        for c, k in r["failed"].items():
            misses = ~res.metrics[f"passes_{c}"]
            assert k == int(misses.sum()) > 0
            failing |= misses
        assert int(failing.sum()) == 8 - r["successes"]
    assert read_curve(run, randomize=False) == rows and read_curve(run) == []
    # A second sweep keeps the rows it already has (a sweep can follow a running training): a marked row survives.
    marked = json.loads((run / "eval_curve_nominal.json").read_text())
    marked["rows"][0]["successes"] = 99
    (run / "eval_curve_nominal.json").write_text(json.dumps(marked))
    again, _ = sweep_run(run, episodes=8, randomize=False, env=env, log=lambda *a: None)
    assert again[0]["successes"] == 99 and again[1] == rows[1]
    again, _ = sweep_run(run, episodes=4, randomize=False, env=env, log=lambda *a: None)  # other settings: redone
    assert again[0]["episodes"] == 4 and again[0]["successes"] <= 4
    sweep_run(run, episodes=8, randomize=False, env=env, log=lambda *a: None)
    # A shipped policy folder (policy.pt beside its config.yaml) evaluates like the run's export.
    shipped = ship_run(run, tmp_path / "shipped", every=1)
    assert {p.name for p in shipped.iterdir()} >= {"policy.pt", "config.yaml", "progress.jsonl",
                                                  "eval_curve_nominal.json", "policy.onnx"}
    assert read_curve(shipped, randomize=False) == rows
    # Provenance: the clip by content, and the motion it was made from (the synthetic hop is no project file).
    prov = json.loads((shipped / "provenance.json").read_text())
    from retarget.clip import read_clip, sha256_of
    clip = read_clip(env.cfg["clip"])
    assert prov["clip_sha256"] == sha256_of(env.cfg["clip"]) and prov["seed"] == env.cfg["seed"]
    assert prov["source"]["sha256"] == clip.source_sha256 and prov["source"]["file"] == clip.source_file
    assert prov["env_steps"] == prov["num_envs"] * 8 * prov["max_iterations"]
    a, b = evaluate(shipped, episodes=8, env=env), evaluate(run / "exported" / "policy.pt", episodes=8, env=env)
    assert a.settings["policy_kind"] == "export"
    np.testing.assert_allclose(a.trajectory.root_pos, b.trajectory.root_pos, atol=1e-6)
    with pytest.raises(InputError, match="not empty"):
        ship_run(run, shipped)


@pytest.mark.all_kernels
@pytest.mark.genesis
def test_a_sweep_over_two_processes_gives_the_rows_of_one_and_a_stopped_sweep_keeps_its_rows(env, env_config_path,
                                                                                             tmp_path):
    run = train(env_config_path, max_iterations=3, runs_dir=tmp_path, env=env)
    here, newest = tmp_path / "here", tmp_path / "newest"
    import shutil
    shutil.copytree(run, here)
    shutil.copytree(run, newest)
    # A training in progress (imitation learn): the newest checkpoint first, then back to the older ones.
    order = [[r["iteration"] for r in sweep_run(newest, episodes=8, randomize=False, env=env, newest_only=True,
                                                  log=lambda *a: None)[0]] for _ in range(3)]
    assert order == [[3], [2, 3], [1, 2, 3]]
    seen = []

    def stop_after_first(line):  # Ctrl-C right after the first checkpoint's row
        seen.append(line)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep_runs([here], episodes=8, randomize=False, env=env, log=stop_after_first)
    assert [r["iteration"] for r in read_curve(here, randomize=False)] == [1]
    first = read_curve(here, randomize=False)[0]
    rows = sweep_runs([here], episodes=8, randomize=False, env=env, log=seen.append)[here]
    assert [r["iteration"] for r in rows] == [1, 2, 3] and rows[0] == first and len(seen) == 1 + 2  # only the rest
    # Two processes, each with its own scene, one checkpoint at a time: the same rows as this process's (nominal
    # physics: the rows do not depend on how many envs a scene has, up to float32 rounding).
    both = sweep_runs([run], episodes=8, randomize=False, jobs=2, log=lambda *a: None)[run]
    assert read_curve(run, randomize=False) == both
    assert [(r["iteration"], r["env_steps"], r["successes"]) for r in both] == \
        [(r["iteration"], r["env_steps"], r["successes"]) for r in rows]
    for a, b in zip(both, rows):
        for k in ("joint_rmse_mean", "pitch_rotation_deg_mean", "final_tilt_deg_mean"):
            assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-5), k


def test_thinned_progress_keeps_every_nth_record_the_last_and_the_curve_keys():
    lines = [json.dumps({"iteration": i, "env_steps": 10 * i, "collect_s": 0.5,
                         "episode": {"Flip/success_rate": i / 10, "rew_joint_pos": 1.0, "Tracking/joint_pos_rmse": 0.1}})
             for i in range(1, 11)] + ['{"iteration": 11, "env_st']
    out = [json.loads(x) for x in thin_progress(lines, 4)]
    assert [r["iteration"] for r in out] == [1, 5, 9, 10]
    assert out[-1] == {"iteration": 10, "env_steps": 100,
                       "episode": {"Flip/success_rate": 1.0, "Tracking/joint_pos_rmse": 0.1}}


def test_shipped_config_paths_are_project_relative():
    from imitation.tools.ship import portable_config
    from retarget.robot import PROJECT_ROOT

    text = f"clip: {PROJECT_ROOT}/clips/backflip_physical.h5\nrobot: configs/robot/go2.yaml\nother: /elsewhere/x.h5\n"
    assert portable_config(text) == "clip: clips/backflip_physical.h5\nrobot: configs/robot/go2.yaml\nother: /elsewhere/x.h5\n"


@pytest.mark.parametrize("argv", [["sweep", "{run}", "--jobs", "0"],
                                  ["refine", "motions/jump.yaml", "-o", "{out}", "--jobs", "0"]])
def test_a_bad_jobs_count_is_one_line_and_writes_nothing(argv, tmp_path, capsys):
    from imitation.cli import PROJECT_ROOT, main

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("experiment: x\n")
    argv = [a.format(run=run, out=tmp_path / "out.h5").replace("motions/", f"{PROJECT_ROOT}/motions/") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --jobs must be at least 1, got 0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and [p.name for p in run.iterdir()] == ["config.yaml"]


def test_a_policy_of_several_clips_gets_a_curve_per_clip(env, env_config_path, hop_clip_path, tmp_path):
    """A run on a motion library (here a library of the one hop clip, with its own success rule): a sweep needs the
    clip, judges it by that clip's entry and writes eval_curve_nominal_<clip>.json."""
    import torch

    run = train(env_config_path, max_iterations=1, runs_dir=tmp_path, env=env)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    entry = {"clip": str(hop_clip_path), "weight": 1.0, "success": {"final_tilt_deg": 12.0}}
    cfg.update(clip=None, clips=[entry])
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    ckpt = torch.load(run / "model_1.pt", weights_only=False)
    ckpt["infos"]["config"].update(clip=None, clips=[entry])
    torch.save(ckpt, run / "model_1.pt")
    with pytest.raises(InputError, match="trained on several clips: sweep one of them"):
        sweep_run(run, episodes=8, randomize=False, env=env, log=lambda *a: None)
    rows, _ = sweep_run(run, episodes=8, randomize=False, env=env, clip=hop_clip_path, log=lambda *a: None)
    doc = json.loads((run / f"eval_curve_nominal_{hop_clip_path.stem}.json").read_text())
    assert doc["success_tolerances"]["final_tilt_deg"] == 12.0 and doc["rows"] == rows
    assert not (run / "eval_curve_nominal.json").exists()
    res = evaluate(run / "model_1.pt", clip=hop_clip_path, episodes=8, env=env)
    assert rows[0]["successes"] == int(res.metrics["success"].sum())
    assert read_curve(run, randomize=False, label=hop_clip_path.stem) == rows
