"""Episode statistics kept on the env's device and handed to rsl-rl's logger without host syncs.

Finished episodes add their sums to running totals; every `interval` steps (one rollout) `emit()`
returns the means since the last emission. A window in which no episode finished repeats the last
mean (never a fake 0); counters (e.g. physics faults) are totals over the window.
"""

from __future__ import annotations

import torch


class EpisodeStats:
    def __init__(self, names: list[str], counters: list[str], steps: list[str], device, interval: int):
        self.names, self.counters, self.steps = names, counters, steps
        self.interval = interval
        z = lambda n: torch.zeros(n, device=device)  # noqa: E731
        self.sums, self.last = z(len(names)), z(len(names))
        self.count = torch.zeros((), device=device)
        self.counts = z(len(counters))
        self.step_sums, self.step_n = z(len(steps)), 0
        self.n_steps = 0

    def add_episodes(self, done: torch.Tensor, values: torch.Tensor) -> None:
        """done (n,) bool; values (n, len(names)) episode values of every env (only done ones count)."""
        w = done.to(values.dtype)
        self.sums += w @ values
        self.count += w.sum()

    def add_counts(self, values: torch.Tensor) -> None:
        """values (len(counters),) added to this window's totals."""
        self.counts += values

    def add_step(self, values: torch.Tensor) -> None:
        """values (len(steps),): per-step means averaged over the window."""
        self.step_sums += values
        self.step_n += 1

    def tick(self) -> dict[str, torch.Tensor] | None:
        """Call once per env step; every `interval` steps returns the window's values."""
        self.n_steps += 1
        if self.n_steps % self.interval:
            return None
        mean = torch.where(self.count > 0, self.sums / self.count.clamp(min=1), self.last)
        self.last = mean
        out = {name: mean[i] for i, name in enumerate(self.names)}
        out.update({name: self.counts[i].clone() for i, name in enumerate(self.counters)})
        steps = self.step_sums / max(self.step_n, 1)
        out.update({name: steps[i] for i, name in enumerate(self.steps)})
        self.sums.zero_()
        self.count.zero_()
        self.counts.zero_()
        self.step_sums.zero_()
        self.step_n = 0
        return out
