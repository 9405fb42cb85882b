"""Chains of clips: one clip that performs several in a row (e.g. stand -> trot -> backflip -> pace), to judge a
policy's transitions with the same rule as any clip.

Each segment starts where the previous one ended: turned about the vertical to the previous segment's final
heading and moved to its final horizontal position. A looping clip runs for the segment's seconds through its
cycles, each repetition offset as the clip says (cycle displacement and heading change, as an env repeats it); a
clip that ends runs once. Over the first `blend_s` of each segment its pose is blended from the previous segment's
last frame (joints and base height linearly, attitude by slerp, with smoothstep weights), so the chained reference
has no jump; feet follow from the blended pose by forward kinematics, velocities from finite differences.

`STAND` names a segment of the robot standing still in its default pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from .clip import Clip, cycle_delta
from .errors import InputError
from .kinematics import feet_body, feet_world

STAND = "stand"


@dataclass
class Segment:
    clip: Clip | str         # a clip, or STAND
    seconds: float | None    # how long: None = a clip that ends runs once, a loop one cycle; STAND needs it
    label: str = ""


def _heading(quat_wxyz: np.ndarray) -> np.ndarray:
    forward = Rotation.from_quat(quat_wxyz, scalar_first=True).apply([1.0, 0.0, 0.0])
    return np.arctan2(forward[..., 1], forward[..., 0])


def _yaw(angle: float) -> Rotation:
    return Rotation.from_euler("z", angle)


def unrolled(clip: Clip, seconds: float | None, fps: float) -> dict[str, np.ndarray]:
    """root_pos, root_quat, dof_pos, foot_contact of `clip` at `fps` over `seconds` (see the module docstring)."""
    loop = clip.loop_mode == "wrap"
    total = clip.duration if seconds is None else float(seconds)
    if not loop:
        total = min(total, clip.duration)
    n = max(2, int(round(total * fps)) + 1)
    t = np.arange(n) / fps
    if not loop:
        s = clip.sample(t)
        return {k: s[k] for k in ("root_pos", "root_quat", "dof_pos", "foot_contact")}
    cycle = np.floor(t / clip.duration + 1e-9).astype(int)
    s = clip.sample(t - cycle * clip.duration)
    delta, dyaw = cycle_delta(clip.root_pos, clip.root_quat)
    delta = delta if clip.cycle_offset_position else np.zeros(3)
    dyaw = dyaw if clip.cycle_offset_rotation else 0.0
    origin = clip.root_pos[0] * np.array([1.0, 1.0, 0.0])
    pos, quat = s["root_pos"].copy(), s["root_quat"].copy()
    shift = np.zeros(3)
    for c in range(int(cycle.max()) + 1):
        rows = cycle == c
        turn = _yaw(c * dyaw)
        pos[rows] = turn.apply(s["root_pos"][rows] - origin) + origin + shift
        quat[rows] = (turn * Rotation.from_quat(s["root_quat"][rows], scalar_first=True)).as_quat(scalar_first=True)
        shift = shift + turn.apply(delta)
    return {"root_pos": pos, "root_quat": quat, "dof_pos": s["dof_pos"], "foot_contact": s["foot_contact"]}


def _stand(robot, seconds: float, fps: float) -> dict[str, np.ndarray]:
    """The default pose with all four feet on the ground: the body pitched so the front and rear feet are level."""
    n = max(2, int(round(seconds * fps)) + 1)
    q = np.tile(robot.default_pose, (n, 1))
    feet = feet_body(robot, robot.default_pose)               # (4, 3) in the body frame
    front, rear = feet[[0, 1]].mean(0), feet[[2, 3]].mean(0)   # legs FR, FL, RR, RL
    pitch = np.arctan2(front[2] - rear[2], front[0] - rear[0])  # about +y: tips the front feet down
    quat = Rotation.from_euler("y", pitch).as_quat(scalar_first=True)
    height = robot.foot_radius - feet_world(robot, np.zeros((1, 3)), quat[None], q[:1])[0, :, 2].min()
    return {"root_pos": np.tile([0.0, 0.0, height], (n, 1)), "root_quat": np.tile(quat, (n, 1)),
            "dof_pos": q, "foot_contact": np.ones((n, 4), np.uint8)}


def _placed(seg: dict, after: dict | None) -> dict:
    """`seg` turned and moved to start where `after` ended (its first frame's heading and horizontal position)."""
    if after is None:
        return seg
    turn = _yaw(float(_heading(after["root_quat"][-1]) - _heading(seg["root_quat"][0])))
    start = seg["root_pos"][0] * np.array([1.0, 1.0, 0.0])
    end = after["root_pos"][-1] * np.array([1.0, 1.0, 0.0])
    quat = (turn * Rotation.from_quat(seg["root_quat"], scalar_first=True)).as_quat(scalar_first=True)
    return {**seg, "root_pos": turn.apply(seg["root_pos"] - start) + end, "root_quat": quat}


def _blended(seg: dict, after: dict | None, frames: int) -> dict:
    """`seg` with its first `frames` frames blended from `after`'s last pose."""
    k = min(frames, len(seg["dof_pos"]) - 1)
    if after is None or k < 1:
        return seg
    x = np.arange(1, k + 1) / (k + 1)
    w = x * x * (3 - 2 * x)  # smoothstep
    out = {name: v.copy() for name, v in seg.items()}
    out["dof_pos"][:k] = (1 - w[:, None]) * after["dof_pos"][-1] + w[:, None] * seg["dof_pos"][:k]
    out["root_pos"][:k, 2] = (1 - w) * after["root_pos"][-1, 2] + w * seg["root_pos"][:k, 2]
    for i in range(k):
        pair = Rotation.from_quat(np.stack([after["root_quat"][-1], seg["root_quat"][i]]), scalar_first=True)
        out["root_quat"][i] = Slerp([0.0, 1.0], pair)(w[i]).as_quat(scalar_first=True)
    out["foot_contact"][:k] = np.where((w < 0.5)[:, None], after["foot_contact"][-1], seg["foot_contact"][:k])
    return out


def chain(segments: list[Segment], robot, fps: float = 50.0, blend_s: float = 0.3) -> Clip:
    """One clip (loop_mode none) performing `segments` in order (see the module docstring)."""
    if not segments:
        raise InputError("chain: no segments")
    if blend_s < 0:
        raise InputError(f"chain: blend {blend_s:g} s must not be negative")
    labels = [s.label or (s.clip if isinstance(s.clip, str) else s.clip.source_file) for s in segments]
    parts, prev = [], None
    for seg, name in zip(segments, labels):
        if isinstance(seg.clip, str):
            if seg.clip != STAND or not seg.seconds or seg.seconds <= 0:
                raise InputError(f"chain: segment {name!r}: '{STAND}' with a positive number of seconds, or a clip")
            part = _stand(robot, seg.seconds, fps)
        else:
            if tuple(seg.clip.joint_names) != tuple(robot.joint_names):
                raise InputError(f"chain: segment {name}: its joints are not {robot.name}'s")
            if seg.seconds is not None and seg.seconds <= 0:
                raise InputError(f"chain: segment {name}: seconds must be positive, got {seg.seconds:g}")
            part = unrolled(seg.clip, seg.seconds, fps)
        part = _blended(_placed(part, prev), prev, int(round(blend_s * fps)))
        parts.append(part)
        prev = part
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    feet = feet_world(robot, arrays["root_pos"], arrays["root_quat"], arrays["dof_pos"])
    return Clip(fps=float(fps), root_pos=arrays["root_pos"], root_quat=arrays["root_quat"], dof_pos=arrays["dof_pos"],
                foot_pos=feet, foot_contact=arrays["foot_contact"], joint_names=tuple(robot.joint_names),
                foot_names=tuple(robot.foot_names), robot=robot.name, loop_mode="none",
                source_file=" -> ".join(labels),
                retarget_settings={"chain": [{"segment": lbl, "seconds": s.seconds} for lbl, s in zip(labels, segments)],
                                   "blend_s": float(blend_s), "fps": float(fps)})
