"""The comparison report on synthetic inputs, and a tiny headless render (rollout + replay video)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from imitation.analysis.metrics import Trajectory, episode_metrics, summarize
from imitation.analysis.report import PolicyData, build_report, verdicts
from imitation.evaluation.evaluate import EvalResult
from imitation.runs import read_progress
from imitation.tools.compare import group_runs, iterations_for
from retarget.clip import Clip
from retarget.errors import InputError
from retarget.robot import load_robot

DT = 0.02
T = 101  # 2 s


def _pitch_quat(theta):
    z = np.zeros_like(theta)
    return np.stack([np.cos(theta / 2), z, np.sin(theta / 2), z], axis=-1)


def _flip_curves(turn_deg, apex):
    """Base height and pitch (rad, negative backward) of a flip from 0.5 s to 1.0 s."""
    t = np.arange(T) * DT
    s = np.clip((t - 0.5) / 0.5, 0.0, 1.0)
    theta = -np.radians(turn_deg) * s
    z = 0.3 + (apex - 0.3) * np.sin(np.pi * s)
    return t, theta, z


@pytest.fixture(scope="module")
def robot():
    return load_robot()


@pytest.fixture(scope="module")
def flip_clip(robot):
    t, theta, z = _flip_curves(360, 0.75)
    root_pos = np.stack([np.zeros(T), np.zeros(T), z], 1)
    return Clip(fps=1 / DT, root_pos=root_pos, root_quat=_pitch_quat(theta),
                dof_pos=np.repeat(np.asarray(robot.default_pose)[None], T, 0),
                foot_pos=np.zeros((T, 4, 3)), foot_contact=np.ones((T, 4), bool),
                joint_names=robot.joint_names, foot_names=robot.foot_names, robot=robot.name, source_file="synthetic")


def _result(robot, clip, turn_deg, apex, episodes=4, torque=5.0, joint_offset=0.0, seed=0):
    """An EvalResult of `episodes` scripted episodes turning `turn_deg` with a little spread."""
    rng = np.random.default_rng(seed)
    e = episodes
    rp, rq, z_all = [], [], []
    for _ in range(e):
        _, theta, z = _flip_curves(turn_deg + rng.normal(0, 3), apex + rng.normal(0, 0.01))
        rq.append(_pitch_quat(theta))
        z_all.append(z)
        rp.append(np.stack([np.zeros(T), np.zeros(T), z], 1))
    rate = np.gradient(np.array([np.unwrap(2 * np.arctan2(q[:, 2], q[:, 0])) for q in rq]), DT, axis=1)
    traj = Trajectory(
        dt=DT, root_pos=np.array(rp), root_quat=np.array(rq),
        root_ang_vel_b=np.stack([np.zeros_like(rate), rate, np.zeros_like(rate)], -1),
        dof_pos=np.repeat(np.asarray(robot.default_pose)[None, None], e, 0).repeat(T, 1) + joint_offset,
        dof_vel=np.zeros((e, T, 12)), torque=np.full((e, T, 12), torque), actions=np.zeros((e, T, 12)),
        foot_pos=np.zeros((e, T, 4, 3)), foot_contact=np.ones((e, T, 4), bool), body_contact=np.zeros((e, T), bool),
        joint_names=tuple(robot.joint_names), foot_names=tuple(robot.foot_names),
    )
    m = episode_metrics(traj, clip)
    return EvalResult(summary=summarize(m), metrics=m, trajectory=traj, settings={"clip": "synthetic"})


def _write_progress(run_dir, success_at):
    """A fake progress.jsonl: 20 iterations of 6,144 env steps; the success rate jumps at `success_at`."""
    run_dir.mkdir(parents=True)
    lines = []
    for it in range(1, 21):
        ok = 0.9 if it >= success_at else 0.0
        lines.append(json.dumps({
            "iteration": it, "env_steps": 6144 * it, "wall_time": 1.5 * it,
            "episode": {"Flip/success_rate": None if it < 3 else ok, "Flip/pitch_rotation_deg": 30.0 * it,
                        "Flip/joint_rmse": 0.5 / it, "Flip/root_orient_error": 1.0 / it,
                        "Tracking/joint_pos_rmse": 0.4 / it},
        }))
    (run_dir / "progress.jsonl").write_text("\n".join(lines) + "\n{\"iteration\": 21, \"env_st")  # cut last line
    return run_dir


def test_report_from_synthetic_inputs(tmp_path, robot, flip_clip):
    ra = _write_progress(tmp_path / "runs" / "a", success_at=8)
    rb = _write_progress(tmp_path / "runs" / "b", success_at=15)
    assert len(read_progress(ra)) == 20  # the cut line is skipped
    imitation = PolicyData("imitation", [str(ra)], [read_progress(ra)], seeds=[1],
                           nominal=[_result(robot, flip_clip, 362, 0.76, torque=6.0)],
                           randomized=[_result(robot, flip_clip, 350, 0.74, torque=6.0, seed=1)])
    reward = PolicyData("reward-only", [str(rb)], [read_progress(rb)], seeds=[1],
                        nominal=[_result(robot, flip_clip, 120, 0.95, torque=9.0, joint_offset=0.3)],
                        randomized=[_result(robot, flip_clip, 100, 0.9, torque=9.0, joint_offset=0.3, seed=2)])
    out = tmp_path / "report"
    report = build_report(out, [imitation, reward], flip_clip, notes=["synthetic inputs"], settings={"test": True})

    text = report.read_text()
    assert "| metric | imitation | reward-only |" in text
    assert "success rate [95% CI]" in text and "joint RMSE vs reference (rad)" in text
    assert "| peak \\|torque\\| (N m) |" in text  # pipes in labels escaped: the table keeps its columns
    assert "## Evaluation, nominal" in text and "## Evaluation, randomized" in text
    # Verdicts, stated plainly.
    assert "- **Success rate, nominal**: imitation wins — 100% vs 0%" in text
    assert "- **Learning speed**: imitation wins" in text and "49k env steps" in text
    assert "- **Torque (RMS)**: imitation wins" in text and "- **Height**: imitation wins" in text
    rows = {r.split(" | ")[0].strip("| "): r for r in text.splitlines() if r.startswith("| ")}
    for aspect in ("success rate", "rotation (net backward pitch)", "height (apex of the base)",
                   "tracking: joint RMSE", "torque: RMS"):  # height: closer to the 0.75 m reference wins
        assert rows[aspect].count("**imitation**") == 2, rows[aspect]  # nominal and randomized
    assert all(r.count(" | ") == 2 for k, r in rows.items() if k in ("energy (mechanical work)",))
    assert "Reference clip: 360°" in text
    # Figures exist, are linked and are PNG images.
    for name in ("learning_curves.png", "height_pitch.png"):
        assert f"]({name})" in text
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.size[0] > 300
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learning_speed"]["imitation"]["median_env_steps"] == 6144 * 8
    assert summary["learning_speed"]["reward-only"]["median_env_steps"] == 6144 * 15
    assert {v["winner"] for v in summary["verdicts"] if v["metric"] == "success"} == {"imitation"}
    assert not list(out.glob(".*.tmp*"))  # atomic writes leave no temporaries


def test_verdict_ties_and_missing_runs():
    s = {"success_rate": 0.5, "success_ci_low": 0.2, "success_ci_high": 0.8, "rms_torque_mean": 5.0,
         "rms_torque_std": 0.1, "episodes": 8}
    v = verdicts({"a": s, "b": dict(s, success_rate=0.6, success_ci_low=0.3, success_ci_high=0.9)}, None,
                 {"a": {"median_env_steps": None}, "b": {"median_env_steps": None}})
    by = {x["metric"]: x for x in v}
    assert by["success"]["winner"] == "b" and "overlap: not a clear difference" in by["success"]["text"]
    assert by["rms_torque"]["winner"] == "tie"
    assert by["learning_speed"]["winner"] is None and "neither reached" in by["learning_speed"]["text"]
    v = verdicts({"a": s, "b": s}, None, {"a": {"median_env_steps": None, "logged": False},
                                          "b": {"median_env_steps": 1000, "logged": True}})
    assert v[-1]["winner"] is None and "not measurable" in v[-1]["text"]


def test_budget_and_run_grouping(tmp_path):
    from imitation.tools.compare import DEFAULT_CONFIGS

    its, steps = iterations_for(DEFAULT_CONFIGS["imitation"], 100_000, None, 64)
    assert its == 66 and steps == 66 * 64 * 24  # rounded up to whole iterations
    assert iterations_for(DEFAULT_CONFIGS["reward-only"], None, 7, 64) == (7, 7 * 64 * 24)
    runs = []
    for name, exp in (("r1", "imitation_backflip"), ("r2", "reward_backflip"), ("r3", "imitation_backflip")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(f"experiment: {exp}\nseed: {len(runs) + 1}\n")
        runs.append(tmp_path / name)
    groups = group_runs(runs)
    assert list(groups) == ["imitation_backflip", "reward_backflip"] and len(groups["imitation_backflip"]) == 2
    assert list(group_runs(runs[:1])) == ["imitation_backflip"]      # one experiment: that policy's own report
    with pytest.raises(InputError, match="no runs given"):
        group_runs([])


def test_report_of_one_policy_and_of_three(tmp_path, robot, flip_clip):
    """A skill's own report (one policy: no verdicts, its success and learning speed in plain lines), and a
    comparison with an external policy as a third column (no training log)."""
    ra = _write_progress(tmp_path / "runs" / "a", success_at=8)
    imitation = PolicyData("imitation", [str(ra)], [read_progress(ra)], seeds=[1],
                           nominal=[_result(robot, flip_clip, 362, 0.76, episodes=8)],
                           randomized=[_result(robot, flip_clip, 120, 0.76, episodes=8, seed=1)])
    text = build_report(tmp_path / "one", [imitation], flip_clip, title="backflip").read_text()
    assert text.startswith("# Backflip: imitation\n")
    assert "- **Success rate, nominal**: 100% [95% CI 68-100%]." in text       # Wilson interval of 8/8
    assert "- **Success rate, randomized**: 0% [95% CI 0-32%]." in text
    assert "49k env steps" in text and "Who won" not in text and "| metric | imitation |" in text
    rb = _write_progress(tmp_path / "runs" / "b", success_at=15)
    reward = PolicyData("reward-only", [str(rb)], [read_progress(rb)], seeds=[1],
                        nominal=[_result(robot, flip_clip, 120, 0.95)], randomized=[_result(robot, flip_clip, 100, 0.9)])
    external = PolicyData("external single", ["single.pt"], [[]], seeds=[0],
                          nominal=[_result(robot, flip_clip, 355, 0.8)], randomized=[_result(robot, flip_clip, 340, 0.8)],
                          curves=[[]])
    out = tmp_path / "three"
    text = build_report(out, [imitation, reward, external], flip_clip).read_text()
    assert "| metric | imitation | reward-only | external single |" in text
    assert "Values are given as imitation vs reward-only (external single: in the tables below)." in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summaries"]["nominal"]["external single"]["success_rate"] == 1.0
    assert summary["learning_speed"]["external single"]["median_env_steps"] is None


@pytest.mark.all_kernels
@pytest.mark.genesis
def test_rollout_and_tiny_render(env, tmp_path):
    """A 5-step rollout in the session env (its settings restored after) replayed beside the ghost."""
    import imageio.v2 as imageio
    import torch

    from imitation.evaluation.render import render_tracks, rollout

    saved = (dict(env.terminations), env.max_episode_length)
    ro = rollout(lambda obs: torch.zeros(obs["policy"].shape[0], 12), env, seconds=0.1)
    assert (env.terminations, env.max_episode_length) == saved
    assert len(ro.robot) == len(ro.reference) == 6 and ro.reference.ghost
    assert abs(ro.robot.root_pos[0] - ro.reference.root_pos[0]).max() < 1e-4  # starts in the reference state
    video = tmp_path / "tiny.mp4"
    info = render_tracks([ro.robot, ro.reference], video, env.dt, res=(160, 96), frame_png=tmp_path / "f.png",
                         verbose=False)
    assert info.frames == 6 and video.is_file()
    frames = [f for f in imageio.get_reader(video)]
    assert len(frames) > 0 and frames[0].shape == (96, 160, 3)
    with Image.open(tmp_path / "f.png") as img:
        assert img.size == (160, 96)
    assert not list(tmp_path.glob(".*.tmp*"))

    # At half the control rate: every other sample, at half the frame rate, the same seconds shown.
    half = render_tracks([ro.robot, ro.reference], tmp_path / "half.mp4", env.dt, res=(160, 96), verbose=False,
                         fps=0.5 / env.dt)
    assert half.frames == 3 and len([f for f in imageio.get_reader(tmp_path / "half.mp4")]) == 3
    assert half.seconds == pytest.approx(info.seconds)
