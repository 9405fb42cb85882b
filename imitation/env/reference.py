"""The reference motion on the env's device: a clip resampled once to the control rate, and a motion library's
frame lookup on top of it (batched, by integer control frame per env).

A clip that ends (loop_mode "none") holds its last frame past its end. A looping clip (loop_mode "wrap") repeats:
its frames 0 .. C - 1 make one cycle (frame C is the next cycle's frame 0), and, as motion_imitation does, each
repetition starts where the previous one ended when the clip says so: cycle c is shifted by the accumulated
horizontal displacement of the cycles before it (`cycle_offset_position`; never in z) and turned about the
vertical through the clip's start by c times the cycle's heading change (`cycle_offset_rotation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from retarget.clip import Clip, cycle_delta, read_clip

from ..utils.rotations import quat_mul, quat_rotate_inverse


@dataclass
class RefFrame:
    """Reference state of a batch of envs, world frame unless `_b` (body frame of the reference)."""

    time: torch.Tensor          # (n,) clip time (s), growing through the cycles of a loop
    root_pos: torch.Tensor      # (n, 3)
    root_quat: torch.Tensor     # (n, 4) wxyz
    root_lin_vel: torch.Tensor  # (n, 3)
    root_ang_vel: torch.Tensor  # (n, 3)
    root_lin_vel_b: torch.Tensor  # (n, 3)
    root_ang_vel_b: torch.Tensor  # (n, 3)
    dof_pos: torch.Tensor       # (n, 12) robot joint order
    dof_vel: torch.Tensor       # (n, 12)
    foot_pos: torch.Tensor      # (n, 4, 3)
    foot_contact: torch.Tensor  # (n, 4) bool


def episode_length_s(env_cfg: dict, ref: "Reference") -> float:
    """An episode's time-out (s): the config's, else the clip's end, or for a looping clip the loop's default."""
    return float(env_cfg["episode_length_s"] or (env_cfg["loop_episode_length_s"] if ref.loop else ref.duration))


class Reference:
    def __init__(self, clip: Clip | str | Path, robot, dt: float, device: torch.device | str):
        if not isinstance(clip, Clip):
            clip = read_clip(clip, robot)
        self.source_fps = clip.fps
        self.loop = clip.loop_mode == "wrap"
        clip = clip.resample(1.0 / dt)
        self.dt = dt
        self.device = torch.device(device)
        self.num_frames = clip.num_frames
        self.duration = clip.duration
        f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)  # noqa: E731
        self.time = f32(clip.time)
        self.root_pos = f32(clip.root_pos)
        self.root_quat = f32(clip.root_quat)
        self.root_lin_vel = f32(clip.root_lin_vel)
        self.root_ang_vel = f32(clip.root_ang_vel)
        self.root_lin_vel_b = quat_rotate_inverse(self.root_quat, self.root_lin_vel)
        self.root_ang_vel_b = quat_rotate_inverse(self.root_quat, self.root_ang_vel)
        self.dof_pos = f32(clip.dof_pos)
        self.dof_vel = f32(clip.dof_vel)
        self.foot_pos = f32(clip.foot_pos)
        self.foot_contact = torch.as_tensor(clip.foot_contact, device=self.device).bool()
        # A foot's height standing on the ground: where the clip says it is in contact (else its lowest).
        z, c = np.asarray(clip.foot_pos)[..., 2], np.asarray(clip.foot_contact).astype(bool)
        self.foot_floor = float(np.median(z[c])) if c.any() else float(z.min())
        # Open-loop PD targets of a physically refined clip (None for a kinematic one).
        self.pd_target = None if clip.pd_target is None else f32(clip.pd_target)
        self.last = self.num_frames - 1
        # A loop's cycle: frames 0 .. C - 1; per-cycle displacement (x, y) and heading change.
        self.cycle = max(1, self.num_frames - 1)
        delta, dyaw = cycle_delta(clip.root_pos, clip.root_quat)
        self.cycle_shift = f32(delta if (self.loop and clip.cycle_offset_position) else np.zeros(3))
        self.cycle_yaw = float(dyaw) if (self.loop and clip.cycle_offset_rotation) else 0.0
        self.origin = f32(clip.root_pos[0] * np.array([1.0, 1.0, 0.0]))
        # All fields of a frame in one row, so a batched lookup is a single gather.
        self._names = [f.name for f in fields(RefFrame)]
        parts = [getattr(self, name).reshape(self.num_frames, -1).float() for name in self._names]
        self._widths = [p.shape[1] for p in parts]
        self._table = torch.cat(parts, dim=1)

    def row(self, idx: torch.Tensor) -> torch.Tensor:
        """The clip frame (table row) of control frames `idx`: wrapped into the cycle for a loop, else clamped."""
        return torch.remainder(idx, self.cycle) if self.loop else idx.clamp(0, self.last)

    def joints_ahead(self, lead: int, velocity_gain: float = 0.0) -> torch.Tensor:
        """(num_frames, 12): for each clip frame k, the joints of frame k + lead (held at the end, or wrapped in a
        loop) plus `velocity_gain` times their velocity: a PD target that leads the reference."""
        nxt = self.row(torch.arange(self.num_frames, device=self.device) + lead)
        return self.dof_pos[nxt] + velocity_gain * self.dof_vel[nxt] if velocity_gain else self.dof_pos[nxt]

    def frame(self, idx: torch.Tensor) -> RefFrame:
        """Reference at integer control frames idx (n,) (see the module docstring for loops)."""
        rows = self._table.index_select(0, self.row(idx))  # one gather (index_select: faster than [idx] on CPU)
        out = dict(zip(self._names, torch.split(rows, self._widths, dim=1)))
        out["time"] = out["time"].squeeze(1)
        out["foot_pos"] = out["foot_pos"].view(len(idx), 4, 3)
        out["foot_contact"] = out["foot_contact"] > 0.5
        if self.loop:
            self._place_cycles(out, torch.div(idx, self.cycle, rounding_mode="floor"))
        return RefFrame(**out)

    def _place_cycles(self, f: dict, cycle: torch.Tensor) -> None:
        """Move the frames of cycle `cycle` (n,) to where that repetition happens (in place)."""
        c = cycle.to(torch.float32)
        f["time"] = f["time"] + c * self.duration
        if self.cycle_yaw == 0.0:
            shift = c[:, None] * self.cycle_shift
            f["root_pos"] = f["root_pos"] + shift
            f["foot_pos"] = f["foot_pos"] + shift[:, None]
            return
        # Repetition c is turned by c * yaw about the vertical through the start; the cycles before it moved it by
        # sum_{i < c} R(i yaw) shift, a geometric series.
        yaw = c * self.cycle_yaw
        cos, sin = torch.cos(yaw), torch.sin(yaw)
        zero, one = torch.zeros_like(c), torch.ones_like(c)
        rot = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], dim=-1).view(-1, 3, 3)
        a = self.cycle_yaw
        denom = complex(1 - math.cos(a), -math.sin(a))       # 1 - e^{i a}
        # (1 - e^{i c a}) / (1 - e^{i a}) = numerator * conj(denominator) / |denominator|^2
        num_re, num_im = 1 - torch.cos(yaw), -torch.sin(yaw)
        geo_re = (num_re * denom.real + num_im * denom.imag) / abs(denom) ** 2
        geo_im = (num_im * denom.real - num_re * denom.imag) / abs(denom) ** 2
        dx, dy = float(self.cycle_shift[0]), float(self.cycle_shift[1])
        shift = torch.stack([geo_re * dx - geo_im * dy, geo_re * dy + geo_im * dx, zero], dim=-1)
        turn = lambda v: torch.einsum("nij,n...j->n...i", rot, v)  # noqa: E731
        f["root_pos"] = turn(f["root_pos"] - self.origin) + self.origin + shift
        f["foot_pos"] = turn(f["foot_pos"] - self.origin) + self.origin + shift[:, None]
        f["root_lin_vel"], f["root_ang_vel"] = turn(f["root_lin_vel"]), turn(f["root_ang_vel"])
        q_yaw = torch.stack([torch.cos(yaw / 2), zero, zero, torch.sin(yaw / 2)], dim=-1)
        f["root_quat"] = quat_mul(q_yaw, f["root_quat"])

    def future(self, idx: torch.Tensor, offsets: torch.Tensor, name: str) -> torch.Tensor:
        """Field `name` (a RefFrame field) at frames idx + offsets: (n, len(offsets), ...)."""
        i = idx[:, None] + offsets[None, :]
        if not self.loop or name in ("dof_pos", "dof_vel", "foot_contact", "root_lin_vel_b", "root_ang_vel_b"):
            return getattr(self, name)[self.row(i)]
        value = getattr(self.frame(i.reshape(-1)), name)
        return value.reshape(*i.shape, *value.shape[1:])

    def frame_of_time(self, t: float) -> int:
        k = int(round(t / self.dt))
        return k if self.loop else min(k, self.last)
