"""The simulator and the CPU: Genesis started once per process, and the cores this process may use.

Every stage that builds a scene (training, evaluation, recording, refinement, benchmarks) starts Genesis here.
"""

from __future__ import annotations

import os
from pathlib import Path


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cache_dir() -> Path:
    """This project's folder in the user's cache (XDG_CACHE_HOME, else ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "go2-imitation"


def build_scene(scene, **kwargs) -> None:
    """`scene.build(**kwargs)` with Genesis' kernel compilation notes filtered out."""
    from .utils.quiet import filtered_stderr

    with filtered_stderr():
        scene.build(**kwargs)


def init_genesis(device: str) -> None:
    """gs.init once per process, on the CPU or on the current CUDA device."""
    import genesis as gs

    from .utils.quiet import filtered_stderr, quiet_genesis_logger

    if getattr(gs, "_initialized", False):
        return
    with filtered_stderr():
        gs.init(backend=gs.cpu if device == "cpu" else gs.gpu, logging_level="warning")
    quiet_genesis_logger()
