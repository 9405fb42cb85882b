"""One policy, several clips: a motion library trained as one batch.

Each clip of the config's `clips` gets an `ImitationEnv` of its own (its own Genesis scene) with its share of the
envs; this class stacks them behind rsl-rl's VecEnv interface, so PPO sees one batch whose envs track different
clips. The policy's observation is the same layout for every clip; what tells it which motion to perform is the
reference ahead in it (`env.observations.future_frames`: a library needs some), and the clock of its clip.

Per clip, from its library entry (imitation.config.for_clip): the success rule, terminations, rewards, resets and
episode length. Shared: actions, observations, physics and domain randomization. A randomization curriculum
counts each clip's own env steps against its share of `curriculum_env_steps`.

Episode statistics reach the logger per clip, as `<name> [<clip>]`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tensordict import TensorDict

from rsl_rl.env import VecEnv

from .. import config as config_mod


def shares(total: int, weights: list[float]) -> list[int]:
    """Envs per clip: `total` split in proportion to `weights`, at least one each, summing to `total`."""
    if total < len(weights):
        raise ValueError(f"{total} envs cannot hold {len(weights)} clips (at least one env each)")
    w = torch.tensor(weights, dtype=torch.float64)
    raw = w / w.sum() * total
    out = [max(1, int(x)) for x in raw.floor()]
    by_remainder = sorted(range(len(out)), key=lambda i: float(raw[i] - out[i]), reverse=True)
    i = 0
    while sum(out) < total:
        out[by_remainder[i % len(out)]] += 1
        i += 1
    while sum(out) > total:  # the "at least one" floor overshot: take from the largest
        out[max(range(len(out)), key=lambda j: out[j])] -= 1
    return out


def clip_names(cfg: dict) -> list[str]:
    """A short name per library clip (its file stem, made unique by its position where stems repeat)."""
    stems = [Path(e["clip"]).stem for e in cfg["clips"]]
    return [s if stems.count(s) == 1 else f"{s}{i}" for i, s in enumerate(stems)]


class MultiClipEnv(VecEnv):
    def __init__(self, envs: list, names: list[str], cfg: dict):
        """Stack built single-clip envs (`build` makes them from a library config); `names` label their statistics."""
        first = envs[0]
        for name, env in zip(names[1:], envs[1:]):
            for group in ("policy", "critic"):
                if env.obs[group].shape[1] != first.obs[group].shape[1]:
                    raise ValueError(f"clip {name}: its {group} observation has {env.obs[group].shape[1]} values "
                                     f"where {names[0]}'s has {first.obs[group].shape[1]}")
        self.envs, self.names, self.cfg = envs, names, cfg
        self.sizes = [env.num_envs for env in envs]
        self.num_envs = sum(self.sizes)
        self.device = first.device
        self.num_actions = first.num_actions
        self.max_episode_length = max(env.max_episode_length for env in envs)
        self.dt = first.dt
        self.extras: dict = {}
        self.obs = self._gather_obs()

    @classmethod
    def build(cls, cfg: dict, num_envs: int | None = None) -> "MultiClipEnv":
        """An ImitationEnv per clip of the config's `clips` (Genesis initialized), sharing out `num_envs` (default
        the config's) by the entries' weights."""
        if not cfg["clips"]:
            raise ValueError("MultiClipEnv needs a config with `clips`")
        from .imitation_env import ImitationEnv

        total = int(num_envs or cfg["env"]["num_envs"])
        sizes = shares(total, [e["weight"] for e in cfg["clips"]])
        curriculum = cfg["domain_randomization"]["curriculum_env_steps"]
        envs = []
        for i, n in enumerate(sizes):
            sub = config_mod.for_clip(cfg, i)
            sub["seed"] = cfg["seed"] + 1000 * i  # each clip's own draws
            sub["domain_randomization"]["curriculum_env_steps"] = int(round(curriculum * n / total))
            envs.append(ImitationEnv(sub, num_envs=n))
        return cls(envs, clip_names(cfg), cfg)

    # ------------------------------------------------------------------ VecEnv interface

    def get_observations(self) -> TensorDict:
        return self.obs

    def step(self, actions: torch.Tensor):
        results = [env.step(a) for env, a in zip(self.envs, torch.split(actions, self.sizes))]
        self.obs = self._gather_obs()
        rewards = torch.cat([r[1] for r in results])
        dones = torch.cat([r[2] for r in results])
        self.extras = {"time_outs": torch.cat([r[3]["time_outs"] for r in results])}
        episode = {}
        for name, (_, _, _, extras) in zip(self.names, results):
            for key, value in extras.get("episode", {}).items():
                episode[f"{key} [{name}]"] = value
        if episode:
            self.extras["episode"] = episode
        return self.obs, rewards, dones, self.extras

    def _gather_obs(self) -> TensorDict:
        return torch.cat([env.obs for env in self.envs], dim=0)

    # ------------------------------------------------------------------ what training sets and reads

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return torch.cat([env.episode_length_buf for env in self.envs])

    @property
    def env_steps(self) -> int:
        return sum(env.env_steps for env in self.envs)

    @env_steps.setter
    def env_steps(self, value: int) -> None:  # a resumed run: each clip's share of the steps done
        for env, n in zip(self.envs, self.sizes):
            env.env_steps = int(value * n / self.num_envs)

    @property
    def num_faults(self) -> int:
        return sum(env.num_faults for env in self.envs)

    def set_log_interval(self, steps: int) -> None:
        for env in self.envs:
            env.set_log_interval(steps)

    def desynchronize(self) -> None:
        for env in self.envs:
            env.desynchronize()
        self.obs = self._gather_obs()

    def reset_envs(self, mask: torch.Tensor) -> TensorDict:
        for env, m in zip(self.envs, torch.split(mask, self.sizes)):
            env.reset_envs(m)
        self.obs = self._gather_obs()
        return self.obs

    def close(self) -> None:
        for env in self.envs:
            env.close()
