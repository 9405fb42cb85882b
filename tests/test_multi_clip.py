"""A motion library (`clips`): its entries are validated, each clip gets its entry's settings, and the env that
stacks one env per clip hands PPO one batch in the clips' order (tested on dummy envs, without the simulator)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensordict import TensorDict

from imitation import config as config_mod
from imitation.config import ConfigError, for_clip, load_config
from imitation.env.multi_clip import MultiClipEnv, clip_names, shares
from imitation.evaluation.evaluate import eval_config
from retarget.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "configs" / "imitation_library.yaml"


def test_env_shares_follow_the_weights_and_sum_to_the_total():
    assert shares(10, [1, 1, 1, 1, 1]) == [2, 2, 2, 2, 2]
    assert shares(320, [1, 1, 1, 1, 1]) == [64] * 5
    assert shares(7, [3, 1, 1]) == [4, 2, 1]        # 4.2, 1.4, 1.4: the largest remainder (first of a tie) gets the 7th
    assert shares(100, [1, 3]) == [25, 75]
    assert shares(3, [10, 1, 1]) == [1, 1, 1]       # at least one env per clip
    with pytest.raises(ValueError, match="2 envs cannot hold 3 clips"):
        shares(2, [1, 1, 1])


def _library(tmp_path, clips: str, extra: str = "") -> Path:
    path = tmp_path / "lib.yaml"
    path.write_text(f"include: {LIBRARY}\n{extra}clips:\n{clips}")
    return path


def test_each_clip_gets_its_entry_over_the_shared_settings(tmp_path):
    cfg = load_config(LIBRARY)
    shared = cfg["success"]["rotation_deg"]
    flip = for_clip(cfg, 0)
    assert flip["clip"] == "motions/refined/backflip.h5" and flip["clips"] == []
    assert flip["success"]["rotation_deg"] == [30.0, 30.0, 90.0] and flip["success"]["end_position_m"] == 1.0
    assert flip["success"]["final_tilt_deg"] == cfg["success"]["final_tilt_deg"]  # not overridden: shared
    trot = for_clip(cfg, ROOT / "motions" / "retargeted" / "trot.h5")  # by path, absolute or not
    assert trot["rewards"]["terms"]["joint_pos"]["scale"] == 5.0
    assert trot["rewards"]["terms"]["torque"] == cfg["rewards"]["terms"]["torque"]  # the shared terms stay
    assert trot["termination"]["max_position_error"] == 0.5
    held_out = for_clip(cfg, "motions/zoo/front_hop.yaml")
    assert held_out["clip"] == "motions/zoo/front_hop.yaml" and held_out["success"]["rotation_deg"] == shared
    assert held_out["rewards"] == cfg["rewards"] and held_out["termination"] == cfg["termination"]
    assert "clips" not in {k for k, v in flip.items() if v}  # a single-clip config again
    copy = tmp_path / "flip_copy.h5"
    copy.write_bytes((ROOT / "motions" / "refined" / "backflip.h5").read_bytes())
    by_content = for_clip(cfg, copy)
    assert by_content["clip"] == str(copy) and by_content["success"]["rotation_deg"] == [30.0, 30.0, 90.0]
    entry = load_config(_library(tmp_path, "  - a.h5\n  - {clip: b.h5, weight: 3, episode_length_s: 4.0}\n"))
    assert [e["weight"] for e in entry["clips"]] == [1.0, 3.0]
    assert for_clip(entry, 1)["env"]["episode_length_s"] == 4.0 and for_clip(entry, 0)["env"]["episode_length_s"] is None


@pytest.mark.parametrize("clips, extra, match", [
    ("  - {clip: a.h5, speed: 2}\n", "", r"lib\.yaml: clips\[0\]\.speed: unknown key"),
    ("  - {weight: 2}\n", "", r"clips\[0\]\.clip: required key missing"),
    ("  - {clip: a.h5, weight: 0}\n", "", r"clips\[0\]\.weight: expected a positive number"),
    ("  - {clip: a.h5, success: {rotation_deg: 5}}\n", "", r"clips\[0\]\.success\.rotation_deg: expected a list"),
    ("  - 3\n", "", r"clips\[0\]: expected a clip path"),
    ("  - a.h5\n", "clip: b.h5\n", r"lib\.yaml: clip: a motion library \(clips\) and a single clip at once"),
])
def test_bad_library_entries_name_the_file_and_field(tmp_path, clips, extra, match):
    with pytest.raises(ConfigError, match=match):
        load_config(_library(tmp_path, clips, extra))


def test_clip_names_are_stems_made_unique():
    cfg = {"clips": [{"clip": "a/x.h5"}, {"clip": "b/y.h5"}, {"clip": "c/x.h5"}]}
    assert clip_names(cfg) == ["x0", "y", "x2"]


def test_evaluating_a_library_policy_uses_the_clips_own_rule():
    cfg = load_config(LIBRARY)
    info = {"path": "lib/model_1.pt", "config": cfg}
    flip = eval_config(info, clip="motions/refined/backflip.h5", episodes=3)
    assert flip["success"]["rotation_deg"] == [30.0, 30.0, 90.0] and flip["clips"] == []
    assert flip["env"]["num_envs"] == 3 and flip["termination"]["max_position_error"] is None  # evaluation: off
    jump = eval_config(info, clip="motions/refined/jump.h5", episodes=3)
    assert jump["success"]["rotation_deg"] == cfg["success"]["rotation_deg"]
    with pytest.raises(InputError, match=r"lib/model_1\.pt: trained on several clips.*backflip\.h5"):
        eval_config(info, episodes=3)


class _Dummy:
    """A VecEnv stand-in: observations and rewards that say which env and step they come from."""

    def __init__(self, n: int, tag: float, obs_dim: int = 5, interval: int = 2):
        self.num_envs, self.tag, self.num_actions, self.device, self.dt = n, tag, 12, torch.device("cpu"), 0.02
        self.max_episode_length = int(10 * tag)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long)
        self.env_steps, self.steps, self.interval, self.got = 0, 0, interval, []
        self.num_faults = int(tag)
        self.obs = self._obs(obs_dim)
        self.reset_masks = []

    def _obs(self, dim=5):
        fill = self.tag + self.steps / 100
        return TensorDict({"policy": torch.full((self.num_envs, dim), fill),
                           "critic": torch.full((self.num_envs, dim + 1), fill)}, batch_size=[self.num_envs])

    def step(self, actions):
        self.got.append(actions.clone())
        self.steps += 1
        self.env_steps += self.num_envs
        self.episode_length_buf += 1
        self.obs = self._obs()
        extras = {"time_outs": torch.full((self.num_envs,), float(self.steps % 2))}
        if self.steps % self.interval == 0:
            extras["episode"] = {"rew_joint_pos": torch.tensor(self.tag)}
        dones = torch.arange(self.num_envs) == 0
        return self.obs, torch.full((self.num_envs,), self.tag), dones, extras

    def reset_envs(self, mask):
        self.reset_masks.append(mask.clone())
        return self.obs

    def set_log_interval(self, steps):
        self.interval = steps

    def desynchronize(self):
        pass

    def close(self):
        pass


def test_the_stacked_env_is_one_batch_in_clip_order():
    a, b = _Dummy(2, 1.0), _Dummy(3, 2.0)
    env = MultiClipEnv([a, b], ["flip", "trot"], cfg={})
    assert env.num_envs == 5 and env.sizes == [2, 3] and env.max_episode_length == 20
    assert env.get_observations()["policy"][:, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]
    actions = torch.arange(5, dtype=torch.float32)[:, None].expand(5, 12)
    obs, rewards, dones, extras = env.step(actions)
    assert a.got[0][:, 0].tolist() == [0.0, 1.0] and b.got[0][:, 0].tolist() == [2.0, 3.0, 4.0]
    assert rewards.tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]
    assert dones.tolist() == [True, False, True, False, False]
    assert obs["critic"].shape == (5, 6) and obs["policy"][0, 0].item() == pytest.approx(1.01)
    assert extras["time_outs"].tolist() == [1.0] * 5 and "episode" not in extras
    _, _, _, extras = env.step(actions)
    assert {k: float(v) for k, v in extras["episode"].items()} == {"rew_joint_pos [flip]": 1.0,
                                                                    "rew_joint_pos [trot]": 2.0}
    assert env.env_steps == 10 and env.num_faults == 3
    assert env.episode_length_buf.tolist() == [2] * 5
    env.env_steps = 50  # a resumed run: each clip its share
    assert (a.env_steps, b.env_steps) == (20, 30)
    env.reset_envs(torch.tensor([True, False, False, True, False]))
    assert a.reset_masks[0].tolist() == [True, False] and b.reset_masks[0].tolist() == [False, True, False]
    env.set_log_interval(7)
    assert a.interval == b.interval == 7


def test_clips_whose_observations_differ_are_refused():
    with pytest.raises(ValueError, match=r"clip trot: its policy observation has 4 values where flip's has 5"):
        MultiClipEnv([_Dummy(2, 1.0), _Dummy(2, 2.0, obs_dim=4)], ["flip", "trot"], cfg={})


def test_a_library_without_reference_frames_ahead_is_refused(tmp_path):
    from imitation.rl.train import _read_config

    path = _library(tmp_path, f"  - {ROOT / 'motions' / 'refined' / 'jump.h5'}\n",
                    "env: {observations: {future_frames: []}}\n")
    with pytest.raises(InputError, match=r"env\.observations\.future_frames: a motion library needs"):
        _read_config(path, {}, need_clip=True)
    assert config_mod.load_config(path)["clips"][0]["weight"] == 1.0


def test_a_library_policy_bundle_holds_each_clips_reference_and_rule(tmp_path):
    from imitation.bundle import bundle_of_folder, check_bundle, library_entry
    from imitation.tools.ship import provenance
    from retarget.clip import read_clip, sha256_of

    cfg = load_config(LIBRARY)
    (tmp_path / "config.yaml").write_text(config_mod.dump(cfg))
    b = check_bundle(bundle_of_folder(tmp_path), "test")
    paths = [e["clip"] for e in cfg["clips"]]
    assert [e["clip"] for e in b["library"]] == paths and b["reference"]["clip"] == paths[0]
    for entry, path in zip(b["library"], paths):
        clip = read_clip(ROOT / path)
        loop = clip.loop_mode == "wrap"
        assert entry["loop"] == loop and entry["sha256"] == sha256_of(ROOT / path)
        assert entry["episode_length_s"] == pytest.approx(cfg["env"]["loop_episode_length_s"] if loop else clip.duration)
    trot = ROOT / "motions" / "retargeted" / "trot.h5"
    assert library_entry(b, trot, sha256_of(trot))["success"] == for_clip(cfg, trot)["success"]
    assert library_entry(b, trot, "0" * 64)["clip"] == paths[0]  # not in the library: the bundle's own
    assert library_entry(b, trot, sha256_of(trot))["episode_length_s"] == 10.0
    flip = library_entry(b, ROOT / paths[0], sha256_of(ROOT / paths[0]))
    assert flip["success"]["rotation_deg"] == [30.0, 30.0, 90.0]
    broken = {**b, "library": [{k: v for k, v in b["library"][1].items() if k != "sha256"}]}
    with pytest.raises(InputError, match=r"library\[0\]: bundle field sha256: missing"):
        check_bundle(broken, "test")
    prov = provenance(tmp_path)
    assert prov["clips"] == paths and [s["clip"] for s in prov["sources"]] == paths
    assert prov["sources"][3]["source"]["file"] == "motions/dog_pace.txt"


def test_eval_takes_a_motion_file_as_the_clip(tmp_path, capsys):
    """A held-out motion runs through a policy with `imitation eval --clip MOTION`: the file is retargeted first."""
    from imitation.cli import _clip_or_retargeted
    from retarget.clip import read_clip

    motion = ROOT / "motions" / "zoo" / "front_hop.yaml"
    out = _clip_or_retargeted(str(motion), tmp_path)
    clip = read_clip(out)
    assert out == tmp_path / "front_hop.h5" and clip.source_file.endswith("front_hop.yaml") and clip.num_frames > 10
    assert "front_hop.yaml" in capsys.readouterr().out           # the quality report is shown
    assert _clip_or_retargeted("motions/refined/jump.h5", tmp_path) == "motions/refined/jump.h5"
    assert _clip_or_retargeted(None, tmp_path) is None
