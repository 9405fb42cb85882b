"""Shared fixtures. One Genesis scene (8 envs) is built for the whole session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

N_ENVS = 8


@pytest.fixture(scope="session")
def hop_clip_path(tmp_path_factory) -> Path:
    from retarget.clip import write_clip
    from synthetic_clip import hop_clip

    path = tmp_path_factory.mktemp("clips") / "hop.h5"
    write_clip(hop_clip(), path)
    return path


@pytest.fixture(scope="session")
def env_config_path(tmp_path_factory, hop_clip_path) -> Path:
    """The imitation config on the synthetic clip, small PPO rollouts for the training tests."""
    path = tmp_path_factory.mktemp("configs") / "test_imitation.yaml"
    path.write_text(
        f"include: {ROOT / 'configs' / 'imitation_backflip.yaml'}\n"
        f"experiment: test_imitation\n"
        f"clip: {hop_clip_path}\n"
        f"env: {{num_envs: {N_ENVS}}}\n"
        f"ppo: {{num_steps_per_env: 8, save_interval: 1, algorithm: {{num_mini_batches: 2}}}}\n"
    )
    return path


@pytest.fixture(scope="session")
def env(env_config_path):
    """The session's one Genesis env (gs.init once per process)."""
    from imitation.config import load_config
    from imitation.sim import init_genesis

    init_genesis("cpu")
    from imitation.env.imitation_env import ImitationEnv

    return ImitationEnv(load_config(env_config_path))
