"""Where reference state initialization starts episodes: uniformly over the clip, or adaptively by failure.

Adaptive sampling (as in BeyondMimic) splits the span of start frames into bins, keeps a running count of the
episodes that failed (terminated early, not timed out) in each bin, and draws start bins in proportion to
those counts spread backwards in time by a decaying kernel (a fall at 1.2 s is best practised from a start a
little before it), mixed with a uniform share so that every part of the clip keeps being visited. Hard parts
of a motion thus get more practice, and parts the policy has mastered less, without hand-tuned curricula.

Everything is batched on the env's device without host syncs: the counts are updated with index_add_ and
the draw is a torch.multinomial over the bins plus a uniform offset within the bin.
"""

from __future__ import annotations

import torch


class StartSampler:
    def __init__(self, span: int, device, *, adaptive: bool = False, bins: int = 50, uniform: float = 0.1,
                 decay: float = 0.001, kernel: float = 0.8, kernel_size: int = 3):
        """`span`: start frames are drawn from [0, span). Adaptive: `bins` bins (at most one per frame),
        `uniform` the share of probability spread evenly, `decay` the weight of each step's failures in the
        running counts, and a backward kernel of `kernel_size` bins with weights kernel**j."""
        self.span = max(int(span), 1)
        self.device = device
        self.adaptive = adaptive
        self.bins = max(1, min(int(bins), self.span))
        self.uniform = float(uniform)
        self.decay = float(decay)
        self.failures = torch.zeros(self.bins, device=device)  # running failure count per bin
        self._step_failures = torch.zeros(self.bins, device=device)
        k = torch.tensor([kernel ** j for j in range(max(int(kernel_size), 1))], device=device)
        self._kernel = k / k.sum()

    def bin_of(self, frame: torch.Tensor) -> torch.Tensor:
        return (frame.clamp(0, self.span - 1) * self.bins // self.span).long()

    def probabilities(self) -> torch.Tensor:
        """(bins,) the probability of each start bin."""
        if not self.adaptive:
            return torch.full((self.bins,), 1.0 / self.bins, device=self.device)
        # failures in bin b + j count for starting in bin b (j = 0..kernel_size-1)
        k = len(self._kernel)
        padded = torch.cat([self.failures, torch.zeros(k - 1, device=self.device)])
        spread = padded.unfold(0, k, 1) @ self._kernel
        total = spread.sum()
        learned = torch.where(total > 0, spread / total.clamp_min(1e-12), torch.full_like(spread, 1.0 / self.bins))
        return self.uniform / self.bins + (1.0 - self.uniform) * learned

    def sample(self, n: int) -> torch.Tensor:
        """(n,) start frames."""
        if not self.adaptive:
            return torch.randint(0, self.span, (n,), device=self.device)
        b = torch.multinomial(self.probabilities(), n, replacement=True)
        lo = (b * self.span + self.bins - 1) // self.bins          # first frame of bin b
        hi = ((b + 1) * self.span + self.bins - 1) // self.bins    # first frame of bin b + 1
        return lo + (torch.rand(n, device=self.device) * (hi - lo)).long()

    def record(self, frame: torch.Tensor, failed: torch.Tensor) -> None:
        """One step's episode ends: `failed` (n,) bool, the envs that terminated early at clip `frame` (n,)."""
        if not self.adaptive:
            return
        self._step_failures.zero_().index_add_(0, self.bin_of(frame), failed.to(self.failures.dtype))
        self.failures.mul_(1.0 - self.decay).add_(self._step_failures, alpha=self.decay)
