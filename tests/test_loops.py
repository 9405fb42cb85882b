"""Looping clips end to end: a real motion_imitation gait trains in episodes that run through several cycles
of the clip (a subprocess: it needs a scene of its own, built on the looping clip)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imitation.cli import PROJECT_ROOT, main
from retarget.clip import read_clip
from retarget.robot import load_robot

DATA = Path(__file__).resolve().parent.parent / "motions"


def test_a_clip_without_reference_fails_before_a_run_folder(tmp_path, capsys):
    rc = main(["train", "--config", str(PROJECT_ROOT / "configs" / "imitation.yaml"), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and "clip: no reference clip" in err and "--clip" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.all_kernels
@pytest.mark.genesis
def test_a_looping_gait_trains_through_several_cycles(tmp_path, capsys):
    clip_path = tmp_path / "pace.h5"
    assert main(["retarget", str(DATA / "dog_pace.txt"), "-o", str(clip_path)]) == 0
    capsys.readouterr()
    clip = read_clip(clip_path, load_robot())
    assert clip.loop_mode == "wrap" and clip.cycle_offset_position
    cycle_s = clip.duration
    # Episodes of 1.5 s (more than two 0.63 s cycles) that all start at t = 0 and end only at the time-out.
    cfg = tmp_path / "pace.yaml"
    cfg.write_text(
        f"include: {PROJECT_ROOT / 'configs' / 'imitation.yaml'}\n"
        "experiment: pace_test\n"
        "env: {num_envs: 8, loop_episode_length_s: 1.5}\n"
        "reset: {start_at_zero_fraction: 1.0}\n"
        "termination: {body_contact: false, max_height_error: null, max_orientation_error: null}\n"
        "ppo: {num_steps_per_env: 24, save_interval: 2, algorithm: {num_mini_batches: 2}}\n"
    )
    proc = subprocess.run([sys.executable, "-m", "imitation.cli", "train", "--config", str(cfg), "--clip", str(clip_path),
                           "--max-iterations", "4", "--runs-dir", str(tmp_path / "runs"), "--threads", "1"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = next((tmp_path / "runs" / "pace_test").iterdir())
    records = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert len(records) == 4
    # 96 steps per env: every env finished one 75-step episode, i.e. ran through more than two cycles of the clip.
    steps_per_cycle = round(cycle_s / 0.02)
    assert records[-1]["mean_episode_length"] == pytest.approx(75, abs=0.5)
    assert records[-1]["mean_episode_length"] > 2 * steps_per_cycle
    ep = records[-1]["episode"]
    assert ep["Success/episodes"] is not None and 0.0 <= ep["Success/success_rate"] <= 1.0
