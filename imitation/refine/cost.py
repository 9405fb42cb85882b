"""The cost of a refinement candidate: how far its simulated rollout is from the kinematic source, batched over
the envs of one scene (one candidate per env).

Tracking terms are means over the scored frames 1..last (frame 0 is the shared start state):

    root_pos        |p - p_src| (m)                       root_rot      attitude error angle (rad)
    joint_pos       joint RMSE (rad)                      foot_pos      mean foot position error (m)
    contact         share of feet whose contact differs from the source's schedule
    body_contact    share of frames with non-foot ground contact
    height_deficit  base height below the source's by more than `height_margin` (m)
    joint_limit     sum over joints of the angle within 0.02 rad of, or past, a limit (rad)
    torque_limit    mean over joints of the commanded PD torque past the effort limit (fraction of the limit)

and outcome terms, from the last scored frame:

    net_rotation    |net turn about the body axes - the source's| (rad): the body-frame rotation accumulated frame
                    by frame, which counts full turns (a flip's -360 degrees is not 0)
    end_pos, end_height, end_rot, end_contact   horizontal position (m), height (m) and attitude (rad) error,
                    and the share of feet whose contact differs from the source's, at the clip's end (only when the
                    scored frames reach it)

and, for a looping clip, whose refined cycle must end in the state it began in (the next cycle starts there):

    closure_joints    joint RMSE at the cycle's end against the reference there (its frame 0) (rad)
    closure_velocity  body-frame base velocity error (m/s) + 0.1 x angular (rad/s) + 0.05 x joint velocity RMSE
                      (rad/s) at the cycle's end

The total is the weighted sum (weights from the config's `refine.costs`).
"""

from __future__ import annotations

import torch

from ..env.success import step_turn
from ..utils.rotations import quat_error_angle

TERMS = ("root_pos", "root_rot", "joint_pos", "foot_pos", "contact", "body_contact", "height_deficit",
         "joint_limit", "torque_limit", "net_rotation", "end_pos", "end_height", "end_rot", "end_contact")
LOOP_TERMS = ("closure_joints", "closure_velocity")
_STEP_TERMS = TERMS[:9]
LIMIT_MARGIN = 0.02   # rad


def net_rotation(quat: torch.Tensor) -> torch.Tensor:
    """(..., T, 4) attitudes -> (..., T, 3) body-frame rotation accumulated from the first one (rad)."""
    steps = step_turn(quat[..., :-1, :], quat[..., 1:, :])
    return torch.cat([torch.zeros_like(steps[..., :1, :]), torch.cumsum(steps, dim=-2)], dim=-2)


class Cost:
    """Accumulates the terms of every env's rollout; `step` after each control step, `result` at the end."""

    def __init__(self, ref, weights: dict, height_margin: float, robot_limits: tuple, num_envs: int, device):
        self.ref = ref
        self.names = TERMS + (LOOP_TERMS if ref.loop else ())
        self.weights = torch.tensor([weights[t] for t in self.names], dtype=torch.float32, device=device)
        self.height_margin = height_margin
        self.lower, self.upper, self.effort = (torch.as_tensor(v, dtype=torch.float32, device=device)
                                               for v in robot_limits)
        self.ref_rotation = net_rotation(ref.root_quat)          # (F, 3)
        self.n, self.device = num_envs, device
        self.reset(None)

    def reset(self, quat: torch.Tensor | None) -> None:
        """Start new rollouts from attitudes `quat` (n, 4)."""
        self.sums = torch.zeros(self.n, len(_STEP_TERMS), device=self.device)
        self.rotation = torch.zeros(self.n, 3, device=self.device)
        self.prev_quat = quat.clone() if quat is not None else None
        self.frames = 0
        self.faulted = torch.zeros(self.n, dtype=torch.bool, device=self.device)

    def snapshot(self) -> dict:
        """The accumulated terms of every env, for `restore`."""
        return {"sums": self.sums.clone(), "rotation": self.rotation.clone(), "prev_quat": self.prev_quat.clone(),
                "faulted": self.faulted.clone(), "frames": self.frames}

    def restore(self, snapshot: dict, rows: torch.Tensor) -> None:
        """Continue env i's accumulation from env `rows[i]` of `snapshot` (rollouts restored at the same frame)."""
        for name in ("sums", "rotation", "prev_quat", "faulted"):
            setattr(self, name, snapshot[name][rows].clone())
        self.frames = snapshot["frames"]

    def step(self, env, frame: int, faults: torch.Tensor) -> None:
        """Score every env's state after the step that reached `frame`; `faults` (n,) bool: physics failures."""
        r = self.ref.frame(torch.full((self.n,), frame, dtype=torch.long, device=self.device))
        q, quat = env.dof_pos, env.root_quat
        tau = env.kp_env * (env.pd_target - q) - env.kd_env * env.dof_vel
        terms = torch.stack([
            torch.linalg.vector_norm(env.root_pos - r.root_pos, dim=-1),
            quat_error_angle(quat, r.root_quat),
            torch.sqrt(torch.mean(torch.square(q - r.dof_pos), dim=-1)),
            torch.linalg.vector_norm(env.foot_pos - r.foot_pos, dim=-1).mean(-1),
            (env.foot_contact != r.foot_contact).float().mean(-1),
            env.body_contact_now.float(),
            torch.relu(r.root_pos[:, 2] - self.height_margin - env.root_pos[:, 2]),
            (torch.relu(q - self.upper + LIMIT_MARGIN) + torch.relu(self.lower + LIMIT_MARGIN - q)).sum(-1),
            torch.relu(tau.abs() / self.effort - 1.0).mean(-1),
        ], dim=-1)
        self.sums += torch.nan_to_num(terms, nan=0.0, posinf=0.0, neginf=0.0)
        self.rotation += torch.nan_to_num(step_turn(self.prev_quat, quat), nan=0.0)
        self.prev_quat = quat.clone()
        self.faulted |= faults | ~torch.isfinite(terms).all(-1)
        self.frames += 1
        self.last = frame
        self._end_state = (env.root_pos.clone(), quat.clone(), env.foot_contact.clone())
        if self.ref.loop:
            self._end_motion = (q.clone(), env.dof_vel.clone(), env.root_lin_vel_b.clone(), env.root_ang_vel_b.clone())

    def result(self, at_end: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(terms (n, len(TERMS)) unweighted, total (n,)): the mean tracking terms and the outcome terms.
        Faulted rollouts cost +inf."""
        step_means = self.sums / max(self.frames, 1)
        pos, quat, contact = self._end_state
        r = self.ref.frame(torch.full((self.n,), self.last, dtype=torch.long, device=self.device))
        rotation = torch.linalg.vector_norm(self.rotation - self.ref_rotation[self.last], dim=-1)
        if at_end:
            end = torch.stack([
                torch.linalg.vector_norm(pos[:, :2] - r.root_pos[:, :2], dim=-1),
                (pos[:, 2] - r.root_pos[:, 2]).abs(),
                quat_error_angle(quat, r.root_quat),
                (contact != r.foot_contact).float().mean(-1),
            ], dim=-1)
        else:
            end = torch.zeros(self.n, 4, device=self.device)
        terms = torch.cat([step_means, rotation[:, None], end], dim=-1)
        if self.ref.loop:
            terms = torch.cat([terms, self._closure(r) if at_end else torch.zeros(self.n, 2, device=self.device)], -1)
        total = terms @ self.weights
        total = torch.where(self.faulted | ~torch.isfinite(total), torch.inf, total)
        return terms, total

    def _closure(self, r) -> torch.Tensor:
        """(n, 2): how far the end state is from the state the next cycle starts in (the reference's there)."""
        q, dq, v, w = self._end_motion
        rms = lambda a, b: torch.sqrt(torch.mean(torch.square(a - b), dim=-1))  # noqa: E731
        velocity = (torch.linalg.vector_norm(v - r.root_lin_vel_b, dim=-1)
                    + 0.1 * torch.linalg.vector_norm(w - r.root_ang_vel_b, dim=-1) + 0.05 * rms(dq, r.dof_vel))
        return torch.stack([rms(q, r.dof_pos), velocity], dim=-1)
