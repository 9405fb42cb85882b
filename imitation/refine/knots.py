"""The search space of the physics refinement: PD-target offsets on time knots.

The PD target of control frame k is

    target[k] = source joints[k + lead] + velocity_gain * source joint velocity[k + lead] + offset(t_k)

where offset(t) interpolates linearly between values on knots every `knot_dt` seconds (SAMCON's windows of
~0.1 s). For a left/right-symmetric (sagittal) motion the left and right legs share their offsets, the hip
mirrored, which halves the search (6 values per knot instead of 12).

For a looping clip the offsets are periodic: the knot at the cycle's end is the knot at its start, so the PD
targets of the next cycle continue those of this one without a jump.

Knots are grouped into windows that are searched one after another (so a long clip never becomes one huge
search); a window's candidates are scored up to a horizon past its last knot, so a push is judged by the
flight it produces.
"""

from __future__ import annotations

import math

import numpy as np
import torch

SAGITTAL_TOLERANCE = {"root_y_m": 0.02, "roll_yaw_deg": 3.0, "joint_rad": 0.05}


def is_sagittal(clip, robot) -> bool:
    """A motion is sagittal when its base stays in the x-z plane without roll or yaw and its right legs mirror
    its left legs (hips negated)."""
    from scipy.spatial.transform import Rotation

    tol = SAGITTAL_TOLERANCE
    if np.abs(clip.root_pos[:, 1] - clip.root_pos[0, 1]).max() > tol["root_y_m"]:
        return False
    # Roll and yaw from the body axes, valid at any pitch (Euler angles break down at +-90 degrees of pitch).
    r = Rotation.from_quat(clip.root_quat, scalar_first=True).as_matrix()
    side = r[:, :, 1]                                   # body y axis in the world
    if np.degrees(np.arcsin(np.clip(np.abs(side[:, [0, 2]]), 0, 1))).max() > tol["roll_yaw_deg"]:
        return False
    q = clip.dof_pos.reshape(len(clip.dof_pos), 4, 3)
    mirror = np.array([-1.0, 1.0, 1.0])
    pairs = [(robot.legs.index(a), robot.legs.index(b)) for a, b in (("FR", "FL"), ("RR", "RL"))]
    return all(np.abs(q[:, i] - q[:, j] * mirror).max() <= tol["joint_rad"] for i, j in pairs)


class Knots:
    """Offsets on knots -> per-frame PD-target offsets, batched.

    A parameter vector holds `per_knot` values for each of the `num_knots` knots, knot-major. `symmetric`:
    per knot (front hip, thigh, calf, rear hip, thigh, calf) for the left legs, mirrored onto the right ones;
    else the 12 joints in the robot's order. `periodic`: the last knot is not a parameter, it repeats the first.
    """

    def __init__(self, num_frames: int, dt: float, knot_dt: float, symmetric: bool, robot, device="cpu",
                 periodic: bool = False):
        self.num_frames, self.dt = num_frames, dt
        duration = (num_frames - 1) * dt
        count = max(1, math.ceil(duration / knot_dt - 1e-9))
        self.times = np.minimum(np.arange(count + 1) * knot_dt, duration)
        self.num_knots = len(self.times)
        self.symmetric = symmetric
        self.per_knot = 6 if symmetric else 12
        self.size = self.num_knots * self.per_knot
        self.device = torch.device(device)
        # Joint offsets (12) = expand @ knot values (per_knot).
        expand = np.zeros((12, self.per_knot))
        if symmetric:
            for leg_i, leg in enumerate(robot.legs):
                pair = 0 if leg.startswith("F") else 1
                left = leg.endswith("L")
                for part in range(3):
                    sign = -1.0 if (part == 0 and not left) else 1.0   # hip abduction mirrors
                    expand[3 * leg_i + part, 3 * pair + part] = sign
        else:
            expand = np.eye(12)
        # Linear interpolation weights of every frame between its two knots.
        t = np.arange(num_frames) * dt
        weights = np.zeros((num_frames, self.num_knots))
        for f, tf in enumerate(t):
            j = int(np.clip(np.searchsorted(self.times, tf, side="right") - 1, 0, self.num_knots - 1))
            if j == self.num_knots - 1:
                weights[f, j] = 1.0
            else:
                w = (tf - self.times[j]) / (self.times[j + 1] - self.times[j])
                weights[f, j], weights[f, j + 1] = 1.0 - w, w
        if periodic and self.num_knots > 1:
            weights[:, 0] += weights[:, -1]
            weights, self.times = weights[:, :-1], self.times[:-1]
            self.num_knots -= 1
            self.size = self.num_knots * self.per_knot
        self.expand = torch.tensor(expand, dtype=torch.float32, device=self.device)
        self.weights = torch.tensor(weights, dtype=torch.float32, device=self.device)
        # Per-value scale of the search: hips move less than thighs and calves.
        self.stds = np.tile(np.array([0.5, 1.0, 1.0] * (self.per_knot // 3)), self.num_knots)

    def offsets(self, params) -> torch.Tensor:
        """(B, size) parameter vectors -> (B, num_frames, 12) joint offsets (rad)."""
        p = torch.as_tensor(np.asarray(params), dtype=torch.float32, device=self.device)
        p = p.reshape(-1, self.num_knots, self.per_knot) @ self.expand.T        # (B, K, 12)
        return torch.einsum("fk,bkj->bfj", self.weights, p)

    def windows(self, window_knots: int, stride: int) -> list[tuple[int, int]]:
        """(first, last_exclusive) knot ranges, in search order, covering every knot."""
        out, start = [], 0
        while True:
            end = min(start + window_knots, self.num_knots)
            out.append((start, end))
            if end >= self.num_knots:
                return out
            start += stride

    def value_slice(self, window: tuple[int, int]) -> slice:
        """The parameter-vector entries of a window's knots."""
        return slice(window[0] * self.per_knot, window[1] * self.per_knot)

    def first_frame(self, window: tuple[int, int]) -> int:
        """The first frame whose offset a window's knots change (with linear interpolation: the frame after the
        knot before the window's first): candidates of the window share every step before it."""
        touched = (self.weights[:, window[0]:window[1]] > 0).any(-1).nonzero()
        return int(touched[0]) if len(touched) else self.num_frames - 1

    def last_frame(self, window: tuple[int, int], dt: float, horizon_s: float, num_frames: int) -> int:
        """The last frame a window's candidates are scored on: its last knot plus the horizon."""
        t = self.times[window[1] - 1] + horizon_s
        return min(num_frames - 1, int(round(t / dt)))
