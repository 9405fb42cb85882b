"""What a policy sees and what its action means, as pure functions of the robot's state and the reference.

The Genesis env and the MuJoCo runner (imitation.sim2sim) both call these, so neither simulator owns the
observation or the PD target: a policy exported with its `ObservationSpec` runs the same in either engine.

Actor observation, in order (the Genesis backflip example's 60 values, then the reference ahead if configured):

    root_ang_vel_b     3   body-frame angular velocity x 0.25
    projected_gravity  3   gravity in the body frame (unit)
    dof_pos           12   joints - default pose
    dof_vel           12   joint velocities x 0.05
    actions           12   the action of this step (before latency)
    last_actions      12   the previous step's action ("previous"), or again this one ("current")
    phase              6   the clock: sin, cos of pi t / T x (1, 1/2, 1/4) for a motion that ends (T its episode
                           length), of 2 pi x (1, 2, 4) x the phase within the cycle for a loop
    future_joint_pos  12 k reference joints - default pose, k frames ahead (if "joint_pos" in future_terms)
    future_attitude    6 k reference attitude relative to the body (rot6d), k frames ahead (if "attitude")
    future_position    3 k reference base position relative to the base, in the body frame, k frames ahead (if
                           "position"): where the motion goes and how far the robot has drifted from it, which the
                           clock alone cannot tell a policy (a robot's estimate of its own position, as a tracking
                           controller on hardware gets it from state estimation)

PD target: `default pose + action_scale * action` (action mode "default"), or the residual
`base[row(frame)] + action_scale * action` around a base per clip frame (`residual_base`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..utils.rotations import quat_conj, quat_mul, quat_rotate_inverse, quat_to_rot6d

# (name, size, scale) of the first 60 values; `layout()` appends the future frames.
BASE_LAYOUT = (("root_ang_vel_b", 3, 0.25), ("projected_gravity", 3, 1.0), ("dof_pos", 12, 1.0),
               ("dof_vel", 12, 0.05), ("actions", 12, 1.0), ("last_actions", 12, 1.0), ("phase", 6, 1.0))
# Values per future frame of each future term, in the order they follow the first 60.
FUTURE_TERMS = {"joint_pos": 12, "attitude": 6, "position": 3}


def observation_size(future_frames, future_terms) -> int:
    """Size of the actor observation with these future frames and terms."""
    return sum(n for _, n, _ in BASE_LAYOUT) + len(future_frames) * sum(FUTURE_TERMS[t] for t in future_terms)


@dataclass(frozen=True)
class ObservationSpec:
    """What decides the actor observation besides the state (see the module docstring)."""

    dt: float                          # control period (s)
    episode_length_s: float            # T of a motion that ends
    loop: bool
    cycle: int                         # frames per cycle (loops)
    last_actions: str = "previous"     # "previous" or "current"
    future_frames: tuple[int, ...] = ()
    future_terms: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: dict, ref, episode_length_s: float) -> "ObservationSpec":
        o = cfg["env"]["observations"]
        frames = tuple(int(k) for k in o["future_frames"])
        return cls(dt=float(cfg["env"]["dt"]), episode_length_s=float(episode_length_s), loop=bool(ref.loop),
                   cycle=int(ref.cycle), last_actions=o["last_actions"], future_frames=frames,
                   future_terms=tuple(o["future_terms"]) if frames else ())

    def layout(self) -> list[tuple[str, int, float]]:
        """(name, size, scale) of every slice of the observation, in order."""
        out = list(BASE_LAYOUT)
        k = len(self.future_frames)
        out += [(f"future_{term}", per * k, 1.0) for term, per in FUTURE_TERMS.items() if term in self.future_terms]
        return out

    @property
    def size(self) -> int:
        return sum(n for _, n, _ in self.layout())


def phase_encoding(spec: ObservationSpec, frame: torch.Tensor) -> torch.Tensor:
    """(n, 6) clock of control frames `frame` (n,) (see the module docstring)."""
    dev = frame.device
    if spec.loop:
        phase = (torch.remainder(frame, spec.cycle) * (2 * math.pi / spec.cycle))[:, None] * torch.tensor(
            [1.0, 2.0, 4.0], device=dev)
    else:
        phase = (frame * (math.pi * spec.dt / spec.episode_length_s))[:, None] * torch.tensor(
            [1.0, 0.5, 0.25], device=dev)
    return torch.stack([torch.sin(phase), torch.cos(phase)], dim=-1).reshape(len(frame), 6)


def projected_gravity(root_quat: torch.Tensor) -> torch.Tensor:
    """(n, 3) world gravity direction in the body frame."""
    g = torch.tensor([0.0, 0.0, -1.0], dtype=root_quat.dtype, device=root_quat.device).expand(len(root_quat), 3)
    return quat_rotate_inverse(root_quat, g)


def policy_observation(spec: ObservationSpec, ref, frame: torch.Tensor, *, root_quat, root_ang_vel_b,
                       projected_gravity, dof_pos, dof_vel, default_dof_pos, actions, last_actions,
                       phase: torch.Tensor | None = None, root_pos: torch.Tensor | None = None) -> torch.Tensor:
    """(n, spec.size) actor observation. State tensors are (n, ...) in the robot's joint order, quaternions wxyz;
    `ref` an imitation.env.reference.Reference; `frame` (n,) the control frame; `phase` the precomputed
    phase_encoding of `frame` (an optional lookup); `root_pos` (n, 3) in the reference's world frame (needed by the
    "position" term)."""
    if phase is None:
        phase = phase_encoding(spec, frame)
    last = actions if spec.last_actions == "current" else last_actions
    parts = [root_ang_vel_b * 0.25, projected_gravity, dof_pos - default_dof_pos, dof_vel * 0.05, actions, last,
             phase]
    if spec.future_terms:
        n, offsets = len(frame), _offsets(spec.future_frames, frame.device)
        if "joint_pos" in spec.future_terms:
            parts.append((ref.future(frame, offsets, "dof_pos") - default_dof_pos).reshape(n, -1))
        if "attitude" in spec.future_terms:
            qr = ref.future(frame, offsets, "root_quat")
            rel = quat_mul(quat_conj(root_quat)[:, None].expand(-1, len(offsets), 4), qr)
            parts.append(quat_to_rot6d(rel).reshape(n, -1))
        if "position" in spec.future_terms:
            k = len(offsets)
            d = ref.future(frame, offsets, "root_pos") - root_pos[:, None]
            parts.append(quat_rotate_inverse(root_quat[:, None].expand(-1, k, 4).reshape(-1, 4),
                                             d.reshape(-1, 3)).reshape(n, -1))
    return torch.cat(parts, dim=-1)


@lru_cache(maxsize=16)
def _offsets(frames: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The future frames as a tensor, made once per layout and device (the env step asks for it every step)."""
    return torch.tensor(frames, dtype=torch.long, device=device)


def residual_base(ref, mode: str, lead: int, velocity_gain: float) -> torch.Tensor | None:
    """(num_frames, 12) base of the residual PD target per clip frame, or None for action mode "default":
    `mode` "reference" (the clip's joints `lead` frames ahead + velocity_gain x their velocity) or "pd_target"
    (a refined clip's stored open-loop targets)."""
    if mode == "pd_target":
        return ref.pd_target
    if mode == "reference":
        return ref.joints_ahead(lead, velocity_gain)
    return None


def pd_target(base: torch.Tensor | None, ref, frame: torch.Tensor, default_dof_pos: torch.Tensor,
              executed: torch.Tensor, action_scale: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """(n, 12) PD targets of the `executed` actions (n, 12) at control frames `frame` (n,) (into `out` if given)."""
    b = default_dof_pos if base is None else base.index_select(0, ref.row(frame))
    return torch.add(b, executed, alpha=action_scale, out=out)
