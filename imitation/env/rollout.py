"""The one rollout loop, shared by every stage that runs episodes in the env: evaluation and checkpoint sweeps,
videos, physics recordings and the refinement's candidates.

`rollout` resets every env at a clip frame (0 unless given), or restores a saved state to continue from, then
steps all of them `steps` times with a closed-loop policy, open-loop actions or zero actions. A hook is called
after the reset and after every step: it records what its caller needs (a trajectory, a clip, a cost) and may end
the rollout early. The loop runs in whatever mode the env is in; callers put the env in playback mode
(`ImitationEnv.playback`) around it.
"""

from __future__ import annotations

from typing import Callable

import torch


def rollout(env, steps: int, policy=None, on_step: Callable | None = None, *, start: torch.Tensor | None = None,
            redraw_physics: bool = True, restore: tuple | None = None) -> int:
    """Reset every env at clip frames `start` (n,) (default 0), or with `restore` = (snapshot, rows) put env i in
    the state of row rows[i] of an `env.snapshot()`, and step them `steps` times; returns the steps run.

    `policy`: a callable `policy(obs) -> (n, 12)` actions (closed loop), a tensor of open-loop actions whose row
    k - 1 (shape (12,), (1, 12) or (n, 12)) step k takes, or None for zero actions.
    `on_step(k, dones)`: called with k = 0 and dones None after the reset (or restore), then after each step
    k = 1..steps with that step's dones (n,); returning False ends the rollout there.
    `redraw_physics`: whether the reset draws new physics for an env built with domain randomization.
    """
    n, dev = env.num_envs, env.device
    if restore is not None:
        obs = env.restore(*restore)
    else:
        frames = torch.zeros(n, dtype=torch.long, device=dev) if start is None else start
        obs = env.reset_envs(torch.ones(n, dtype=torch.bool, device=dev), frames, redraw_physics=redraw_physics)
    if on_step is not None and on_step(0, None) is False:
        return 0
    zeros = torch.zeros(n, env.num_actions, device=dev) if policy is None else None
    with torch.no_grad():
        for k in range(1, steps + 1):
            if policy is None:
                actions = zeros
            elif callable(policy):
                actions = policy(obs).to(dev)
            else:
                actions = policy[k - 1].to(dev).expand(n, env.num_actions)
            obs, _, dones, _ = env.step(actions)
            if on_step is not None and on_step(k, dones) is False:
                return k
    return steps
