"""The main job's shipped skills: found from policies/<skill>_s<seed>/ and their provenance (no simulator)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imitation.tools.pipeline import discover
from retarget.errors import InputError
from retarget.robot import PROJECT_ROOT


def _policy(root, name, experiment, source="motions/jump.yaml", clip="motions/refined/jump.h5", refined=True):
    d = root / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(f"experiment: {experiment}\nseed: 1\n")
    prov = {"clip": clip, "source": {"file": source, "retarget_settings": {"fps": 50.0}}}
    if refined:
        prov["refinement"] = {"settings": {}}
    (d / "provenance.json").write_text(json.dumps(prov))
    return d


def test_skills_are_grouped_by_folder_name_with_their_baselines(tmp_path):
    _policy(tmp_path, "jump_s1", "imitation")
    _policy(tmp_path, "jump_s2", "imitation")
    _policy(tmp_path, "jump_reward_s1", "reward_jump")
    _policy(tmp_path, "pace_s3", "imitation", source="motions/dog_pace.txt", clip="motions/retargeted/pace.h5",
            refined=False)
    (tmp_path / "notes").mkdir()                     # not a policy folder
    skills = discover(tmp_path)
    assert list(skills) == ["jump", "pace"]
    jump, pace = skills["jump"], skills["pace"]
    assert [p.name for p in jump.policies] == ["jump_s1", "jump_s2"] and [p.name for p in jump.baselines] == ["jump_reward_s1"]
    assert jump.source == PROJECT_ROOT / "motions" / "jump.yaml" and jump.refined_cache == PROJECT_ROOT / "motions/refined/jump.h5"
    assert pace.refined_cache is None and pace.baselines == [] and pace.source.name == "dog_pace.txt"


def test_a_policy_without_provenance_or_with_a_missing_motion_is_refused(tmp_path):
    d = _policy(tmp_path, "jump_s1", "imitation")
    (d / "provenance.json").unlink()
    with pytest.raises(InputError, match=r"jump_s1/provenance.json: missing"):
        discover(tmp_path)
    (d / "provenance.json").write_text(json.dumps({"clip": "x.h5", "source": {"file": "motions/nope.yaml"}}))
    with pytest.raises(InputError, match=r"source.file motions/nope.yaml not found"):
        discover(tmp_path)


def test_the_shipped_skills_name_existing_motion_files():
    skills = discover()
    assert "backflip" in skills and skills["backflip"].source == PROJECT_ROOT / "motions" / "backflip.yaml"
    assert len(skills["backflip"].baselines) >= 1
    for s in skills.values():
        assert s.source.is_file() and len(s.policies) >= 1
        assert s.refined_cache is None or s.refined_cache.is_file()


def test_the_video_ghost_of_a_loop_walks_on_through_its_cycles():
    from imitation.env.reference import Reference
    from imitation.evaluation.render import track_from_clip
    from retarget.clip import read_clip
    import torch

    clip = read_clip(PROJECT_ROOT / "motions" / "retargeted" / "pace.h5")
    dt = 0.02
    times = np.arange(200) * dt                      # 4 s: several 0.63 s cycles
    track = track_from_clip(clip, times)
    ref = Reference(clip, None, dt, "cpu")
    cycle_shift = np.asarray(clip.root_pos[-1] - clip.root_pos[0])[:2]
    # Frame k of cycle c sits c cycle displacements ahead of frame k of cycle 0.
    k, c = 5, 3
    np.testing.assert_allclose(track.root_pos[k + c * ref.cycle, :2], track.root_pos[k, :2] + c * cycle_shift, atol=1e-5)
    assert track.root_pos[-1, 0] - track.root_pos[0, 0] > 3.0       # ~0.92 m/s for 4 s, not back at the start
    f = ref.frame(torch.arange(200))
    np.testing.assert_allclose(track.dof_pos, f.dof_pos.numpy(), atol=1e-6)
