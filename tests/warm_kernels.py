"""Compile the Genesis kernels of the test suite's scene in a process of its own, and exit.

Genesis writes its kernel cache when a process exits. Started by conftest.py at the beginning of a session that
has Genesis tests, this process compiles while the tests without Genesis run on the other core; the session's
scene and every test that starts Genesis in a subprocess then load the kernels instead of compiling them again
(on a machine with an empty cache, each of those processes would otherwise compile for a minute or two).
    python tests/warm_kernels.py CONFIG
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(config: str) -> None:
    import torch

    from imitation.config import load_config
    from imitation.sim import init_genesis

    torch.set_num_threads(1)
    init_genesis("cpu")
    from imitation.env.imitation_env import ImitationEnv

    env = ImitationEnv(load_config(config))
    zeros = torch.zeros(env.num_envs, env.num_actions)
    for _ in range(3):                  # stepping and resetting compile kernels of their own
        env.step(zeros)
    env.reset_envs(torch.ones(env.num_envs, dtype=torch.bool))


if __name__ == "__main__":
    main(sys.argv[1])
