"""Learning curves of the flip during training: success and tracking errors of the episodes that
start at t = 0 (the ones an evaluation runs), batched on the env's device without host syncs.

A cheap online version of `imitation.metrics`' success: at the end of an episode that started at
t = 0 and ran to its time-out,

1. backward pitch turned (the body pitch rate integrated over the episode) >= min_rotation_deg,
2. tilt of the body z axis from world z < max_final_tilt_deg,
3. no non-foot ground contact at any step,
4. base height > min_final_height,
5. all four feet in contact.

Tracking errors over the episode's steps: joint RMSE (sqrt of the mean over steps and joints of the
squared error) and the mean root orientation error (rad) against the reference clip.
Values reach rsl-rl's logger (TensorBoard, and progress.jsonl through imitation.train) as `Flip/...`
entries of the env's episode log, once per rollout, with `Flip/episodes` the number of episodes scored
in that rollout; a rollout in which none ended repeats the last values (NaN before the first one).
"""

from __future__ import annotations

import math

import torch

from .metrics import DEFAULT_THRESHOLDS
from .stats import EpisodeStats

NAMES = ("Flip/success_rate", "Flip/pitch_rotation_deg", "Flip/final_tilt_deg",
         "Flip/joint_rmse", "Flip/root_orient_error")


class FlipStats:
    def __init__(self, num_envs: int, dt: float, device, thresholds: dict | None = None):
        th = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        self.min_rotation = math.radians(th["min_rotation_deg"])
        self.max_tilt_cos = math.cos(math.radians(th["max_final_tilt_deg"]))
        self.min_height = th["min_final_height"]
        self.dt = dt
        self.from_zero = torch.zeros(num_envs, dtype=torch.bool, device=device)
        # per env: pitch turned (rad), body-contact steps, sum of mean squared joint error,
        # sum of orientation error, steps
        self.acc = torch.zeros(num_envs, 5, device=device)
        # emit() is called when the env's own log window closes: one window per call.
        self.stats = EpisodeStats(names=list(NAMES), counters=["Flip/episodes"], steps=[], device=device, interval=1)
        self.stats.last.fill_(float("nan"))

    def reset(self, mask: torch.Tensor, start_frame: torch.Tensor) -> None:
        """Envs in `mask` start a new episode at clip frame `start_frame` (n,)."""
        torch.where(mask, start_frame == 0, self.from_zero, out=self.from_zero)
        self.acc.masked_fill_(mask[:, None], 0.0)

    def step(self, pitch_rate_b: torch.Tensor, body_contact: torch.Tensor, joint_sq: torch.Tensor,
             orient_error: torch.Tensor) -> None:
        """Accumulate one control step: body pitch rate (rad/s, body y), any non-foot contact (bool),
        mean over joints of the squared joint error, root orientation error (rad); all (n,)."""
        inc = torch.stack([-pitch_rate_b * self.dt, body_contact.to(self.acc.dtype), joint_sq, orient_error,
                           torch.ones_like(joint_sq)], dim=-1)
        self.acc += torch.nan_to_num(inc, nan=0.0, posinf=0.0, neginf=0.0)

    def end(self, dones: torch.Tensor, time_out: torch.Tensor, projected_gravity: torch.Tensor,
            base_height: torch.Tensor, feet_down: torch.Tensor) -> None:
        """Score the episodes ending now (`dones`), from the final state, before the envs are reset."""
        ended = dones & self.from_zero
        if ended.device.type == "cpu" and not bool(ended.any()):  # most steps on CPU, where the test is free
            return
        pitch, contact, joint_sq, orient, steps = self.acc.unbind(-1)
        steps = steps.clamp(min=1.0)
        up = -projected_gravity[:, 2]                    # cos of the tilt
        success = ((pitch >= self.min_rotation) & (up > self.max_tilt_cos) & (contact == 0)
                   & (base_height > self.min_height) & feet_down.all(-1) & time_out)
        values = torch.stack([
            success.to(pitch.dtype), torch.rad2deg(pitch), torch.rad2deg(torch.acos(up.clamp(-1.0, 1.0))),
            torch.sqrt(joint_sq / steps), orient / steps,
        ], dim=-1)
        self.stats.add_episodes(ended, torch.nan_to_num(values, nan=0.0))
        self.stats.add_counts(ended.sum().to(self.acc.dtype)[None])

    def emit(self) -> dict[str, torch.Tensor]:
        """Means of the episodes scored since the last call (the last means if none), and their count."""
        return self.stats.tick()
