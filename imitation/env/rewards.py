"""Reward terms: small pure functions of the robot state and the reference frame.

Each term is `name(state, ref, **parameters) -> Tensor[n_envs]`; the config picks terms by name with a
weight and the parameters (`rewards.terms.joint_pos: {weight: 0.5, scale: 2.0}`). Adding a term is one
function here and one line of YAML. Imitation terms return values in [0, 1]; regularizers return a
non-negative cost and take a negative weight.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable

import torch

from .reference import RefFrame
from ..utils.rotations import quat_error_angle, quat_mul, quat_rotate_inverse


@dataclass
class State:
    """What a reward term may read, per env. World frame unless `_b` (body frame)."""

    time: torch.Tensor              # (n,) clip time of the current frame (s)
    episode_time: torch.Tensor      # (n,) time since the episode started (s)
    dt: float                       # control period (s)
    root_pos: torch.Tensor          # (n, 3)
    root_quat: torch.Tensor         # (n, 4) wxyz
    init_quat: torch.Tensor         # (n, 4) root attitude at the episode start
    root_lin_vel: torch.Tensor      # (n, 3)
    root_ang_vel: torch.Tensor      # (n, 3)
    root_lin_vel_b: torch.Tensor    # (n, 3)
    root_ang_vel_b: torch.Tensor    # (n, 3)
    projected_gravity: torch.Tensor  # (n, 3) gravity direction in the body frame
    dof_pos: torch.Tensor           # (n, 12) robot joint order
    dof_vel: torch.Tensor           # (n, 12)
    default_dof_pos: torch.Tensor   # (12,)
    torque: torch.Tensor            # (n, 12) applied joint torques (N m)
    foot_pos: torch.Tensor          # (n, 4, 3)
    foot_contact: torch.Tensor      # (n, 4) bool
    actions: torch.Tensor           # (n, 12) this step's policy action
    last_actions: torch.Tensor      # (n, 12) the previous step's action
    body_contact: torch.Tensor | None = None  # (n,) bool: a body link touches the ground (termination.contact_links)


TERMS: dict[str, Callable[..., torch.Tensor]] = {}


def term(fn):
    TERMS[fn.__name__] = fn
    return fn


def term_parameters(name: str) -> dict[str, object]:
    """Parameter name -> default (inspect.Parameter.empty when required) of a term."""
    params = list(inspect.signature(TERMS[name]).parameters.values())[2:]  # after (state, ref)
    return {p.name: p.default for p in params}


def _sq(x: torch.Tensor) -> torch.Tensor:
    return torch.sum(torch.square(x), dim=-1)


# ---------------------------------------------------------------------------- imitation terms


@term
def joint_pos(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.dof_pos - ref.dof_pos))


@term
def joint_vel(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.dof_vel - ref.dof_vel))


@term
def root_height(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * torch.square(state.root_pos[:, 2] - ref.root_pos[:, 2]))


@term
def root_pos(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.root_pos - ref.root_pos))


@term
def root_orientation(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * torch.square(quat_error_angle(state.root_quat, ref.root_quat)))


@term
def root_pose(state: State, ref: RefFrame, scale, rot_weight):
    """exp(-scale (|dp|^2 + rot_weight * angle^2)), as in motion_imitation / MimicKit."""
    angle = quat_error_angle(state.root_quat, ref.root_quat)
    return torch.exp(-scale * (_sq(state.root_pos - ref.root_pos) + rot_weight * torch.square(angle)))


@term
def root_lin_vel(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.root_lin_vel - ref.root_lin_vel))


@term
def root_ang_vel(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.root_ang_vel - ref.root_ang_vel))


@term
def root_vel(state: State, ref: RefFrame, scale, ang_weight):
    """exp(-scale (|dv|^2 + ang_weight |dw|^2)), world-frame velocities."""
    err = _sq(state.root_lin_vel - ref.root_lin_vel) + ang_weight * _sq(state.root_ang_vel - ref.root_ang_vel)
    return torch.exp(-scale * err)


@term
def feet_pos(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.foot_pos - ref.foot_pos).sum(-1))


@term
def feet_height(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.foot_pos[..., 2] - ref.foot_pos[..., 2]))


@term
def feet_contact(state: State, ref: RefFrame):
    """Share of feet whose ground contact matches the reference's contact schedule (0..1)."""
    return (state.foot_contact == ref.foot_contact).to(state.foot_pos.dtype).mean(-1)


# ---------------------------------------------------------------------------- regularizers


@term
def alive(state: State, ref: RefFrame):
    return torch.ones_like(state.time)


@term
def action_rate(state: State, ref: RefFrame):
    return _sq(state.actions - state.last_actions)


@term
def torque(state: State, ref: RefFrame):
    return _sq(state.torque)


# ---------------------------------------------------------------------------- reward-only backflip
# The official recipe (docs/facts.md §4, public repository ziyanx02/Genesis-backflip), term by term.
# t is the time since the episode started; the time windows are open intervals as in that code.
# Leg order FR, FL, RR, RL (hip, thigh, calf), the order of the official policy's actions.


def _window(t: torch.Tensor, start: float, end: float) -> torch.Tensor:
    return ((t > start) & (t < end)).to(t.dtype)


@term
def ang_vel_y(state: State, ref: RefFrame, max_rate=7.2, t_start=0.5, t_end=1.0):
    """Backward body pitch rate (-omega_y, body frame) clamped to +-max_rate, for t_start < t < t_end."""
    rate = -state.root_ang_vel_b[:, 1].clamp(-max_rate, max_rate)
    return rate * _window(state.episode_time, t_start, t_end)


@term
def lin_vel_z(state: State, ref: RefFrame, max_vel=3.0, t_start=0.5, t_end=0.75):
    """World vertical base velocity clamped at max_vel (not below), for t_start < t < t_end."""
    return state.root_lin_vel[:, 2].clamp(max=max_vel) * _window(state.episode_time, t_start, t_end)


@term
def orientation_control(state: State, ref: RefFrame, pitch_rate=4.0 * math.pi, t_start=0.5, t_end=1.0):
    """|g_b - g_b*|^2: projected gravity against that of a target attitude, the initial attitude
    turned backward about its body y axis by pitch_rate * clamp(t - t_start, 0, t_end - t_start)
    (one full turn from 0.5 s to 1.0 s with the defaults)."""
    t = state.episode_time
    angle = -pitch_rate * (t - t_start).clamp(0.0, t_end - t_start)   # negative: backward
    half = 0.5 * angle
    zero = torch.zeros_like(half)
    q_pitch = torch.stack([torch.cos(half), zero, torch.sin(half), zero], dim=-1)
    target = quat_mul(state.init_quat, q_pitch)                          # body-frame rotation
    gravity = torch.zeros_like(state.projected_gravity)
    gravity[:, 2] = -1.0
    return _sq(state.projected_gravity - quat_rotate_inverse(target, gravity))


@term
def feet_height_before_backflip(state: State, ref: RefFrame, clearance=0.02, t_end=0.5):
    """Sum over feet of max(foot z - clearance, 0) (foot link origin, m), for t < t_end."""
    lift = (state.foot_pos[..., 2] - clearance).clamp(min=0.0).sum(-1)
    return lift * (state.episode_time < t_end).to(lift.dtype)


@term
def height_control(state: State, ref: RefFrame, target=0.3, t_before=0.4, t_after=1.4):
    """(target - base z)^2, for t < t_before or t > t_after."""
    t = state.episode_time
    on = ((t < t_before) | (t > t_after)).to(t.dtype)
    return torch.square(target - state.root_pos[:, 2]) * on


@term
def gravity_y(state: State, ref: RefFrame):
    """(projected gravity y)^2: the body rolling sideways."""
    return torch.square(state.projected_gravity[:, 1])


@term
def ang_vel_z(state: State, ref: RefFrame):
    """|body yaw rate|."""
    return torch.abs(state.root_ang_vel_b[:, 2])


@term
def feet_distance(state: State, ref: RefFrame, stance_width=0.0):
    """Sum over feet of (body-frame foot y - target y)^2, the target +-stance_width / 2 (right legs -,
    left legs +). The public recipe's target width is 0.3 * zeros, i.e. 0: the default reproduces it."""
    n = state.foot_pos.shape[0]
    rel = state.foot_pos - state.root_pos[:, None, :]
    rel_b = quat_rotate_inverse(state.root_quat[:, None, :].expand(n, rel.shape[1], 4), rel)
    side = torch.tensor([-0.5, 0.5, -0.5, 0.5], dtype=rel.dtype, device=rel.device)   # FR, FL, RR, RL
    return _sq(rel_b[..., 1] - stance_width * side)


@term
def actions_symmetry(state: State, ref: RefFrame):
    """Left-right mismatch of the actions: hips mirrored (a_right + a_left), thighs and calves equal."""
    a = state.actions.view(-1, 4, 3)
    right, left = a[:, 0::2], a[:, 1::2]         # (FR, RR), (FL, RL)
    hips = torch.square(right[..., 0] + left[..., 0]).sum(-1)
    legs = torch.square(right[..., 1:] - left[..., 1:]).sum(dim=(-1, -2))
    return hips + legs


# ---------------------------------------------------------------------------- the weighted sum


class RewardSum:
    """The configured terms: total reward per step and the per-term values."""

    def __init__(self, terms_cfg: dict[str, dict], dt: float, scale_by_dt: bool):
        self.names = list(terms_cfg)
        self.items = []
        for name, spec in terms_cfg.items():
            params = {k: v for k, v in spec.items() if k != "weight"}
            weight = spec["weight"] * (dt if scale_by_dt else 1.0)
            self.items.append((TERMS[name], weight, params))

    def __call__(self, state: State, ref: RefFrame) -> torch.Tensor:
        """(n_envs, n_terms) weighted term values."""
        if not self.items:
            return torch.zeros(len(state.time), 0, device=state.time.device)
        return torch.stack([w * fn(state, ref, **p) for fn, w, p in self.items], dim=-1)
