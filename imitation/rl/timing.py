"""Timing PPO on an env: what `imitation bench` and the scaling measurement share."""

from __future__ import annotations

import torch


def fresh_start(env) -> None:
    """Reset every env (as training would start them), then one untimed step of the physics."""
    env.reset_envs(torch.ones(env.num_envs, dtype=torch.bool, device=env.device))
    if not env.rsi:
        env.desynchronize()


class PPOTimer:
    """An OnPolicyRunner on `env` (no run folder); `iteration()` runs one PPO iteration and returns
    (collect seconds, update seconds), as the runner itself measures them."""

    def __init__(self, env, cfg: dict, update_threads: int | None = None):
        from .train import Runner, rsl_rl_config

        train_cfg = rsl_rl_config(cfg)
        self.runner = Runner(env, train_cfg, cfg, None, str(env.device), update_threads=update_threads)
        self.env = env
        self.steps_per_env = int(train_cfg["num_steps_per_env"])
        self._times: tuple[float, float] | None = None
        inner = self.runner.logger.log

        def log(**kw):
            self._times = (kw["collect_time"], kw["learn_time"])
            return inner(**kw)

        self.runner.logger.log = log

    def iteration(self) -> tuple[float, float]:
        fresh_start(self.env)
        self.runner.learn(num_learning_iterations=1)
        assert self._times is not None
        return self._times
