"""Experiment configs are validated on load: a typo or a wrong type is an error naming the key."""

from pathlib import Path

import pytest

from imitation.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_bundled_configs_load(name):
    cfg = load_config(ROOT / "configs" / name)
    assert cfg["env"]["dt"] == pytest.approx(0.02)
    assert cfg["env"]["kp"] == pytest.approx(70.0) and cfg["env"]["kd"] == pytest.approx(3.0)
    if name not in ("base.yaml", "base_backflip.yaml"):  # the shared bases leave the reward terms to the experiments
        assert cfg["rewards"]["terms"], name


def _write(tmp_path, text):
    path = tmp_path / "x.yaml"
    path.write_text(f"include: {ROOT / 'configs' / 'imitation_backflip.yaml'}\n{text}")
    return path


@pytest.mark.parametrize("text, match", [
    ("env: {kpp: 70}\n", r"x\.yaml: env\.kpp"),
    ("env: {kp: fast}\n", r"x\.yaml: env\.kp: expected a number, got 'fast'"),
    ("env: {num_envs: 2.5}\n", r"env\.num_envs"),
    ("rewards: {terms: {joint_poss: {weight: 1.0, scale: 2.0}}}\n", r"joint_poss"),
    ("rewards: {terms: {joint_pos: {weight: 1.0, sigma: 2.0}}}\n", r"joint_pos.*sigma"),
    ("rewards: {terms: {root_height: {scale: 2.0}}}\n", r"root_height.*weight"),
    ("ppo: {algorithm: {learning_rate: [1]}}\n", r"ppo\.algorithm\.learning_rate"),
    ("termination: {max_height_error: yes}\n", r"termination\.max_height_error"),
    ("domain_randomization: {friction: [0.2]}\n", r"domain_randomization\.friction"),
])
def test_bad_values_name_the_key(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(_write(tmp_path, text))


def test_include_cycle_and_bad_yaml(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("include: b.yaml\n")
    b.write_text("include: a.yaml\n")
    with pytest.raises(ConfigError, match="a.yaml|b.yaml"):
        load_config(a)
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: {kp: [\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
