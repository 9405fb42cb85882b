"""Shared fixtures. One Genesis scene (8 envs) is built for the whole session.

Tests without Genesis run first; meanwhile a process of its own (tests/warm_kernels.py) compiles the scene's
kernels and exits, which writes Genesis' kernel cache, and the session's scene waits for it: on a machine with an
empty cache the compilation then overlaps those tests, and the tests that start Genesis in subprocesses find the
kernels compiled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

N_ENVS = 8
WARM_UP_TIMEOUT_S = 900
_warm_up: dict = {}


def pytest_collection_modifyitems(session, config, items):
    """Tests without Genesis first (the order is otherwise kept); start compiling if any Genesis test follows."""
    items.sort(key=lambda item: item.get_closest_marker("genesis") is not None)
    if any(item.get_closest_marker("genesis") for item in items):
        _warm_up["dir"] = tempfile.TemporaryDirectory(prefix="warm_kernels_")
        path = Path(_warm_up["dir"].name) / "test_imitation.yaml"
        _write_env_config(path, _write_hop_clip(path.parent / "hop.h5"))
        _warm_up["proc"] = subprocess.Popen([sys.executable, str(Path(__file__).parent / "warm_kernels.py"), str(path)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def pytest_sessionfinish(session, exitstatus):
    proc = _warm_up.pop("proc", None)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    if "dir" in _warm_up:
        _warm_up.pop("dir").cleanup()


@pytest.fixture(autouse=True)
def _kernels_compiled(request):
    """A Genesis test (its own scene, or Genesis in a subprocess) starts once the warm-up has compiled."""
    if request.node.get_closest_marker("genesis") is not None:
        _wait_for_warm_up()


def _wait_for_warm_up() -> None:
    proc = _warm_up.get("proc")
    if proc is not None:
        try:
            proc.wait(timeout=WARM_UP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()


def _write_hop_clip(path: Path) -> Path:
    from retarget.clip import write_clip
    from synthetic_clip import hop_clip

    write_clip(hop_clip(), path)
    return path


def _write_env_config(path: Path, clip: Path) -> Path:
    path.write_text(
        f"include: {ROOT / 'configs' / 'imitation_backflip.yaml'}\n"
        f"experiment: test_imitation\n"
        f"clip: {clip}\n"
        f"env: {{num_envs: {N_ENVS}}}\n"
        f"ppo: {{num_steps_per_env: 8, save_interval: 1, algorithm: {{num_mini_batches: 2}}}}\n"
    )
    return path


@pytest.fixture(scope="session")
def hop_clip_path(tmp_path_factory) -> Path:
    return _write_hop_clip(tmp_path_factory.mktemp("clips") / "hop.h5")


@pytest.fixture(scope="session")
def env_config_path(tmp_path_factory, hop_clip_path) -> Path:
    """The imitation config on the synthetic clip, small PPO rollouts for the training tests."""
    return _write_env_config(tmp_path_factory.mktemp("configs") / "test_imitation.yaml", hop_clip_path)


@pytest.fixture(scope="session")
def env(env_config_path):
    """The session's one Genesis env (gs.init once per process)."""
    from imitation.config import load_config
    from imitation.sim import init_genesis

    _wait_for_warm_up()
    init_genesis("cpu")
    from imitation.env.imitation_env import ImitationEnv

    return ImitationEnv(load_config(env_config_path))
