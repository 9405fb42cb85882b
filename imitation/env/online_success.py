"""Learning curves during training: the reference-derived success (imitation.env.success) and tracking errors of
the episodes that start at t = 0 (the ones an evaluation runs), batched on the env's device without host syncs.

Each env accumulates, from its reset on, the body-frame turn step by step, the change of heading, any non-foot
ground contact and its tracking errors; an episode that started at t = 0 and ran to its time-out is summarized
as an imitation.env.success.Outcome and judged against the reference's own Outcome over the same span.
Values reach rsl-rl's logger (TensorBoard, and progress.jsonl through imitation.rl.train) as `Success/...`
entries of the env's episode log, once per rollout, with `Success/episodes` the number of episodes scored in that
rollout; a rollout in which none ended repeats the last values (NaN before the first one). The policy is the
noisy training policy: the checkpoint sweeps (imitation sweep) measure the deterministic one. For a looping
reference the training curve judges falls, mean speed and yaw rate; the motion within the cycles (path, turning,
feet) needs the recorded episode and is judged by evaluations and sweeps.
"""

from __future__ import annotations

import math

import torch

from . import success as rule
from .stats import EpisodeStats

NAMES = ("Success/success_rate", "Success/pitch_rotation_deg", "Success/roll_turn_deg", "Success/yaw_turn_deg",
         "Success/final_tilt_deg", "Success/joint_rmse", "Success/root_orient_error")


class OnlineSuccess:
    def __init__(self, num_envs: int, dt: float, device, expected: rule.Outcome, tolerances: dict, loop: bool):
        """`expected`: the reference's Outcome over a full episode from t = 0."""
        self.dt, self.expected, self.tol, self.loop = dt, expected, tolerances, loop
        z = lambda *s: torch.zeros(num_envs, *s, device=device)  # noqa: E731
        self.from_zero = torch.zeros(num_envs, dtype=torch.bool, device=device)
        self.start_pos, self.start_quat, self.prev_quat, self.prev_heading = z(3), z(4), z(4), z()
        # per env: turn about the body axes (3), heading change, body-contact steps, sum of mean squared joint
        # error, sum of orientation error, steps
        self.acc = z(8)
        # per env and foot: control steps since its last ground contact
        self.feet_steps = rule.feet_window(tolerances, dt)
        self.since_contact = torch.zeros(num_envs, 4, dtype=torch.long, device=device)
        self.stats = EpisodeStats(names=list(NAMES), counters=["Success/episodes"], steps=[], device=device, interval=1)
        self.stats.last.fill_(float("nan"))
        self._pending: list[torch.Tensor] = []   # CPU: packed rows of ended episodes not yet judged

    def reset(self, mask: torch.Tensor, start_frame: torch.Tensor, root_pos: torch.Tensor,
              root_quat: torch.Tensor) -> None:
        """Envs in `mask` start a new episode at clip frame `start_frame` (n,) in the state root_pos, root_quat."""
        m = mask[:, None]
        torch.where(mask, start_frame == 0, self.from_zero, out=self.from_zero)
        torch.where(m, root_pos, self.start_pos, out=self.start_pos)
        torch.where(m, root_quat, self.start_quat, out=self.start_quat)
        torch.where(m, root_quat, self.prev_quat, out=self.prev_quat)
        torch.where(mask, rule.heading(root_quat), self.prev_heading, out=self.prev_heading)
        self.acc.masked_fill_(m, 0.0)
        self.since_contact.masked_fill_(m, 0)

    def step(self, root_quat: torch.Tensor, body_contact: torch.Tensor, foot_contact: torch.Tensor,
             joint_sq: torch.Tensor, orient_error: torch.Tensor) -> None:
        """Accumulate one control step: attitude after the step, any non-foot contact (bool), foot contacts
        (n, 4) bool, mean over joints of the squared joint error, root orientation error (rad); all (n, ...)."""
        self.since_contact.add_(1).masked_fill_(foot_contact, 0)
        h = rule.heading(root_quat)
        yaw = rule.wrap(h - self.prev_heading)
        inc = torch.cat([rule.step_turn(self.prev_quat, root_quat), yaw[:, None],
                         body_contact.to(self.acc.dtype)[:, None], joint_sq[:, None], orient_error[:, None],
                         torch.ones_like(joint_sq)[:, None]], dim=-1)
        self.acc += torch.nan_to_num(inc, nan=0.0, posinf=0.0, neginf=0.0)
        self.prev_quat.copy_(root_quat)
        self.prev_heading.copy_(h)

    def end(self, dones: torch.Tensor, time_out: torch.Tensor, root_pos: torch.Tensor, root_quat: torch.Tensor,
            foot_z: torch.Tensor) -> None:
        """Score the episodes ending now (`dones`), from the final state (`foot_z` (n, 4): the feet's heights),
        before the envs are reset. On the CPU the ended rows are kept and judged together at the next emit()
        (judging is ~100 small ops whatever the batch, so once per rollout instead of once per step); elsewhere
        every env is judged now under the mask, which needs no host sync."""
        ended = dones & self.from_zero
        feet_down = rule.feet_down(self.since_contact < self.feet_steps, foot_z, self.tol)
        episode = torch.cat([self.start_pos, self.start_quat, root_pos, root_quat, self.acc,
                             feet_down.to(self.acc.dtype), time_out.to(self.acc.dtype)[:, None]], dim=-1)
        if ended.device.type != "cpu":
            self._score(episode, ended)
        elif bool(ended.any()):  # the test is free on the CPU
            self._pending.append(episode.index_select(0, ended.nonzero().squeeze(1)))

    def _score(self, episode: torch.Tensor, ended: torch.Tensor | None) -> None:
        """Judge packed episode rows (see end()); `ended` (rows,) bool masks them (None: all count)."""
        start_pos, start_quat, root_pos, root_quat, turn, yaw, contact, joint_sq, orient, steps, feet, time_out = \
            episode.split([3, 4, 3, 4, 3, 1, 1, 1, 1, 1, 4, 1], dim=-1)
        steps = steps[:, 0].clamp(min=1.0)
        out = rule.summarize(start_pos, start_quat, root_pos, root_quat, turn, yaw[:, 0], feet > 0.5,
                             contact[:, 0] > 0, steps * self.dt)
        success = rule.judge(out, self.expected, self.tol, self.loop)["success"] & (time_out[:, 0] > 0.5)
        deg = 180.0 / math.pi
        values = torch.stack([
            success.to(self.acc.dtype), -turn[:, 1] * deg, turn[:, 0] * deg, turn[:, 2] * deg, out.final_tilt * deg,
            torch.sqrt(joint_sq[:, 0] / steps), orient[:, 0] / steps,
        ], dim=-1)
        if ended is None:
            ended = torch.ones(len(episode), dtype=torch.bool, device=episode.device)
        self.stats.add_episodes(ended, torch.nan_to_num(values, nan=0.0))
        self.stats.add_counts(ended.sum().to(self.acc.dtype)[None])

    def emit(self) -> dict[str, torch.Tensor]:
        """Means of the episodes scored since the last call (the last means if none), and their count."""
        if self._pending:
            self._score(torch.cat(self._pending), None)
            self._pending.clear()
        return self.stats.tick()
