"""The reference motion on the env's device: a clip resampled once to the control rate.

Frames are looked up by integer index per env (batched); indices past the end hold the last frame.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from retarget.clip import Clip, read_clip

from .rotations import quat_rotate_inverse


@dataclass
class RefFrame:
    """Reference state of a batch of envs, world frame unless `_b` (body frame of the reference)."""

    time: torch.Tensor          # (n,) clip time (s)
    root_pos: torch.Tensor      # (n, 3)
    root_quat: torch.Tensor     # (n, 4) wxyz
    lin_vel: torch.Tensor       # (n, 3)
    ang_vel: torch.Tensor       # (n, 3)
    lin_vel_b: torch.Tensor     # (n, 3)
    ang_vel_b: torch.Tensor     # (n, 3)
    dof_pos: torch.Tensor       # (n, 12) robot joint order
    dof_vel: torch.Tensor       # (n, 12)
    foot_pos: torch.Tensor      # (n, 4, 3)
    foot_contact: torch.Tensor  # (n, 4) bool


class Reference:
    def __init__(self, clip: Clip | str | Path, robot, dt: float, device: torch.device | str):
        if not isinstance(clip, Clip):
            clip = read_clip(clip, robot)
        self.source_fps = clip.fps
        clip = clip.resample(1.0 / dt)
        self.dt = dt
        self.device = torch.device(device)
        self.num_frames = clip.num_frames
        self.duration = clip.duration
        f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)  # noqa: E731
        self.time = f32(clip.time)
        self.root_pos = f32(clip.root_pos)
        self.root_quat = f32(clip.root_quat)
        self.lin_vel = f32(clip.root_lin_vel)
        self.ang_vel = f32(clip.root_ang_vel)
        self.lin_vel_b = quat_rotate_inverse(self.root_quat, self.lin_vel)
        self.ang_vel_b = quat_rotate_inverse(self.root_quat, self.ang_vel)
        self.dof_pos = f32(clip.dof_pos)
        self.dof_vel = f32(clip.dof_vel)
        self.foot_pos = f32(clip.foot_pos)
        self.foot_contact = torch.as_tensor(clip.foot_contact, device=self.device).bool()
        self.last = self.num_frames - 1
        # All fields of a frame in one row, so a batched lookup is a single gather.
        self._names = [f.name for f in fields(RefFrame)]
        parts = [getattr(self, name).reshape(self.num_frames, -1).float() for name in self._names]
        self._widths = [p.shape[1] for p in parts]
        self._table = torch.cat(parts, dim=1)

    def frame(self, idx: torch.Tensor) -> RefFrame:
        """Reference at integer frame indices (n,), clamped to [0, last]."""
        rows = self._table[idx.clamp(0, self.last)]
        out = dict(zip(self._names, torch.split(rows, self._widths, dim=1)))
        out["time"] = out["time"].squeeze(1)
        out["foot_pos"] = out["foot_pos"].view(len(idx), 4, 3)
        out["foot_contact"] = out["foot_contact"] > 0.5
        return RefFrame(**out)

    def future(self, idx: torch.Tensor, offsets: torch.Tensor, name: str) -> torch.Tensor:
        """Field `name` at frames idx + offsets: (n, len(offsets), ...)."""
        i = (idx[:, None] + offsets[None, :]).clamp(0, self.last)
        return getattr(self, name)[i]

    def frame_of_time(self, t: float) -> int:
        return min(int(round(t / self.dt)), self.last)
