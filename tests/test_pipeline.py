"""The README's main command end to end on the shipped backflip policies: retarget the hand-made flip, take its
refinement from the repository's cache, evaluate every shipped backflip policy against it, write its report and the
skills table. Few episodes, no video, one skill in this process."""

from __future__ import annotations

import json

import pytest

from imitation.cli import PROJECT_ROOT, main
from retarget.clip import read_clip
from retarget.robot import load_robot

SHIPPED = sorted(p.parent for pattern in ("backflip_s*", "backflip_reward_s*")
                 for p in (PROJECT_ROOT / "policies").glob(f"{pattern}/config.yaml"))


@pytest.mark.genesis
@pytest.mark.skipif(not SHIPPED, reason="no shipped policies")
def test_main_command_reproduces_the_report_from_the_shipped_policies(env, tmp_path):
    assert main(["pipeline", "--out", str(tmp_path), "--skills", "backflip", "--jobs", "1", "--episodes", "2",
                 "--no-video"]) == 0
    # The reference is the refined hand-made flip the shipped imitation policies were trained on: it flips, and it
    # is the repository's cached refinement of motions/backflip.yaml (copied, not refined again).
    refined = read_clip(tmp_path / "clips" / "backflip_refined.h5", load_robot())
    assert refined.quality["total_pitch_deg"] < -330 and refined.pd_target is not None
    assert (tmp_path / "clips" / "backflip_refined.h5").read_bytes() == (
        PROJECT_ROOT / "motions" / "refined" / "backflip.h5").read_bytes()
    assert not (tmp_path / "clips" / "backflip_physical.h5").exists()      # the hand-searched path is gone
    summary = json.loads((tmp_path / "backflip" / "summary.json").read_text())
    labels = list(summary["policies"])
    assert labels == ["imitation", "reward-only"]
    assert all(len(summary["policies"][k]["runs"]) == len(summary["policies"][k]["seeds"]) for k in labels)
    assert sum(len(v["runs"]) for v in summary["policies"].values()) == len(SHIPPED)
    imitation = "imitation"
    # Every shipped imitation seed flips from t = 0 under nominal physics (2 episodes per seed, pooled).
    assert summary["summaries"]["nominal"][imitation]["success_rate"] == 1.0
    # Learning speed comes from the shipped checkpoint evaluations.
    assert all(summary["learning_speed"][k]["source"] == "eval_curve" for k in labels)
    text = (tmp_path / "backflip" / "report.md").read_text()
    assert text.startswith("# Backflip: imitation vs reward-only")
    assert "## Learning speed" in text and "success_curve.png" in text
    index = json.loads((tmp_path / "skills.json").read_text())["skills"]
    assert [s["skill"] for s in index] == ["backflip"] and index[0]["success_nominal"] == 1.0
    assert index[0]["seeds"] == len([p for p in SHIPPED if "reward" not in p.name])
    assert "| backflip | `motions/backflip.yaml` |" in (tmp_path / "skills.md").read_text()
