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


@pytest.mark.all_kernels
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


def test_a_policy_of_several_clips_is_a_row_per_clip(tmp_path):
    """A shipped policy whose provenance lists several clips becomes one skill row per clip, judged on that clip."""
    from imitation.tools.pipeline import discover

    folder = tmp_path / "all_skills_s1"
    folder.mkdir()
    (folder / "config.yaml").write_text("experiment: x\n")
    sources = [{"clip": "motions/refined/backflip.h5", "source": {"file": "motions/backflip.yaml"},
                "refinement": {}},
               {"clip": "motions/retargeted/trot.h5", "source": {"file": "motions/dog_trot.txt",
                                                                  "retarget_settings": {"fps": 30.0}}}]
    (folder / "provenance.json").write_text(json.dumps({"clips": [s["clip"] for s in sources], "sources": sources}))
    skills = discover(tmp_path)
    assert list(skills) == ["all_skills-backflip", "all_skills-trot"]
    flip, trot = skills["all_skills-backflip"], skills["all_skills-trot"]
    assert flip.clip == PROJECT_ROOT / "motions" / "refined" / "backflip.h5" and flip.policies == [folder]
    assert flip.refined_cache == flip.clip and trot.refined_cache is None
    assert trot.source == PROJECT_ROOT / "motions" / "dog_trot.txt" and trot.retarget == {"fps": 30.0}
    sources[1]["source"] = {}
    (folder / "provenance.json").write_text(json.dumps({"clips": ["a", "b"], "sources": sources}))
    with pytest.raises(Exception, match=r"provenance\.json: sources\[1\]: field 'source\.file' missing"):
        discover(tmp_path)
