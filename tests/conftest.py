"""Shared fixtures. One Genesis scene (8 envs) is built for the whole session.

Tests without Genesis run first; meanwhile processes of their own (tests/warm_kernels.py) compile Genesis kernels
and exit, which writes Genesis' kernel cache: `scene` (the env's step and reset) and `render` side by side, then
`refine` once `scene` is cached. The session's scene waits for `scene`; the tests marked `all_kernels` (they start
Genesis in subprocesses, or render) wait for all three and run last. On a machine with an empty cache the
compilation then overlaps the tests, and no subprocess compiles again.
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
    """Tests without Genesis first, those needing every kernel last (the order is otherwise kept); start compiling
    if any Genesis test follows."""
    items.sort(key=lambda item: (item.get_closest_marker("genesis") is not None,
                                 item.get_closest_marker("all_kernels") is not None))
    if any(item.get_closest_marker("genesis") for item in items):
        _warm_up["dir"] = tempfile.TemporaryDirectory(prefix="warm_kernels_")
        path = Path(_warm_up["dir"].name) / "test_imitation.yaml"
        _write_env_config(path, _write_hop_clip(path.parent / "hop.h5"))
        _warm_up["config"] = path
        _start_warm_up("scene")
        _start_warm_up("render")


def _start_warm_up(what: str) -> None:
    _warm_up[what] = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "warm_kernels.py"), str(_warm_up["config"]), what],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def pytest_sessionfinish(session, exitstatus):
    for what in ("scene", "render", "refine"):
        proc = _warm_up.pop(what, None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
    if "dir" in _warm_up:
        _warm_up.pop("dir").cleanup()


@pytest.fixture(autouse=True)
def _kernels_compiled(request):
    """A Genesis test starts once the step and reset kernels are compiled; one marked all_kernels once all are."""
    if request.node.get_closest_marker("genesis") is not None:
        _wait_for_warm_up("scene")
    if request.node.get_closest_marker("all_kernels") is not None:
        _wait_for_warm_up("render")
        _wait_for_warm_up("refine")


def _wait_for_warm_up(what: str = "scene") -> None:
    """Wait for a warm-up process; the refinement's starts once the scene's kernels are cached."""
    if what == "refine":
        _wait_for_warm_up("scene")
    proc = _warm_up.get(what)
    if proc is not None:
        try:
            proc.wait(timeout=WARM_UP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    if what == "scene" and "config" in _warm_up and "refine" not in _warm_up:
        _start_warm_up("refine")


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
