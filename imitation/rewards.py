"""Reward terms: small pure functions of the robot state and the reference frame.

Each term is `name(state, ref, **parameters) -> Tensor[n_envs]`; the config picks terms by name with a
weight and the parameters (`rewards.terms.joint_pos: {weight: 0.5, scale: 2.0}`). Adding a term is one
function here and one line of YAML. Imitation terms return values in [0, 1]; regularizers return a
non-negative cost and take a negative weight.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch

from .reference import RefFrame
from .rotations import quat_error_angle


@dataclass
class State:
    """What a reward term may read, per env. World frame unless `_b` (body frame)."""

    time: torch.Tensor              # (n,) clip time of the current frame (s)
    episode_time: torch.Tensor      # (n,) time since the episode started (s)
    dt: float                       # control period (s)
    base_pos: torch.Tensor          # (n, 3)
    base_quat: torch.Tensor         # (n, 4) wxyz
    init_quat: torch.Tensor         # (n, 4) base attitude at the episode start
    base_lin_vel: torch.Tensor      # (n, 3)
    base_ang_vel: torch.Tensor      # (n, 3)
    base_lin_vel_b: torch.Tensor    # (n, 3)
    base_ang_vel_b: torch.Tensor    # (n, 3)
    projected_gravity: torch.Tensor  # (n, 3) gravity direction in the body frame
    dof_pos: torch.Tensor           # (n, 12) robot joint order
    dof_vel: torch.Tensor           # (n, 12)
    default_dof_pos: torch.Tensor   # (12,)
    torques: torch.Tensor           # (n, 12) applied joint torques (N m)
    foot_pos: torch.Tensor          # (n, 4, 3)
    foot_contact: torch.Tensor      # (n, 4) bool
    actions: torch.Tensor           # (n, 12) this step's policy action
    last_actions: torch.Tensor      # (n, 12) the previous step's action


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
    return torch.exp(-scale * torch.square(state.base_pos[:, 2] - ref.root_pos[:, 2]))


@term
def root_pos(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.base_pos - ref.root_pos))


@term
def root_orientation(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * torch.square(quat_error_angle(state.base_quat, ref.root_quat)))


@term
def root_pose(state: State, ref: RefFrame, scale, rot_weight):
    """exp(-scale (|dp|^2 + rot_weight * angle^2)), as in motion_imitation / MimicKit."""
    angle = quat_error_angle(state.base_quat, ref.root_quat)
    return torch.exp(-scale * (_sq(state.base_pos - ref.root_pos) + rot_weight * torch.square(angle)))


@term
def root_lin_vel(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.base_lin_vel - ref.lin_vel))


@term
def root_ang_vel(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.base_ang_vel - ref.ang_vel))


@term
def root_vel(state: State, ref: RefFrame, scale, ang_weight):
    """exp(-scale (|dv|^2 + ang_weight |dw|^2)), world-frame velocities."""
    err = _sq(state.base_lin_vel - ref.lin_vel) + ang_weight * _sq(state.base_ang_vel - ref.ang_vel)
    return torch.exp(-scale * err)


@term
def feet_pos(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.foot_pos - ref.foot_pos).sum(-1))


@term
def feet_height(state: State, ref: RefFrame, scale):
    return torch.exp(-scale * _sq(state.foot_pos[..., 2] - ref.foot_pos[..., 2]))


# ---------------------------------------------------------------------------- regularizers


@term
def alive(state: State, ref: RefFrame):
    return torch.ones_like(state.time)


@term
def action_rate(state: State, ref: RefFrame):
    return _sq(state.actions - state.last_actions)


@term
def torque(state: State, ref: RefFrame):
    return _sq(state.torques)


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
