"""Compile Genesis kernels of the test suite in a process of its own, and exit (Genesis writes its kernel cache
when a process exits).

    python tests/warm_kernels.py CONFIG scene    # the env's step and reset: what every scene needs
    python tests/warm_kernels.py CONFIG render   # a video's scene (no env)
    python tests/warm_kernels.py CONFIG refine   # a refinement over two processes (after `scene` is cached)

Started by conftest.py, one process per core: `scene` and `render` while the tests without Genesis run, `refine`
once `scene` has exited, beside the session's first Genesis tests. The session's scene waits for `scene`; the tests
that start Genesis in subprocesses or render wait for all three. On a machine with an empty cache each of those
processes would otherwise compile the kernels again (a minute or two each), one after the other.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# A refinement as short as the test suite's: a few generations reach every kernel it uses; over two processes, as
# a helper's scene holds half the candidates, and a scene of another size compiles some kernels again.
REFINE = {"refine": {"knot_dt": 0.5, "window_knots": 20, "generations": 2, "robust_copies": 1,
                     "retries": 0, "polish_generations": 0}}


def main(config: str, what: str) -> None:
    import torch

    from imitation.config import load_config
    from imitation.sim import init_genesis

    torch.set_num_threads(1)
    init_genesis("cpu")
    cfg = load_config(config)
    if what == "render":
        import numpy as np

        from imitation.evaluation.render import render_tracks, track_from_clip
        from retarget.clip import read_clip
        from retarget.robot import load_robot

        clip = read_clip(cfg["clip"], load_robot())
        times = np.arange(3) * 0.02
        with tempfile.TemporaryDirectory() as tmp:
            render_tracks([track_from_clip(clip, times, "robot", ghost=False), track_from_clip(clip, times)],
                          Path(tmp) / "warm.mp4", 0.02, res=(64, 48), verbose=False)
        return
    from imitation.env.imitation_env import ImitationEnv

    env = ImitationEnv(cfg)
    zeros = torch.zeros(env.num_envs, env.num_actions)
    for _ in range(3):                  # stepping and resetting compile kernels of their own
        env.step(zeros)
    env.reset_envs(torch.ones(env.num_envs, dtype=torch.bool))
    if what == "refine":
        from imitation.refine.run import refine_motion

        with tempfile.TemporaryDirectory() as tmp:
            refine_motion(cfg["clip"], Path(tmp) / "refined.h5", config=config, overrides=REFINE, env=env, jobs=2,
                          allow_partial=True, progress=lambda *a, **k: None)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "scene")
