"""Foot contacts: detection from foot motion, and the IK clean-up that plants stance feet.

Shared by every source format: whatever produced the joint angles, a foot in contact is pinned to
one world point on the ground for its whole contact interval, and no foot goes below the ground.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .kinematics import feet_world, ik_world
from .robot import Robot


def contact_intervals(contact: np.ndarray) -> list[tuple[int, int, int]]:
    """(foot, first_frame, last_frame_exclusive) for each run of contact frames."""
    out = []
    c = np.asarray(contact, bool)
    for foot in range(c.shape[1]):
        padded = np.concatenate([[False], c[:, foot], [False]]).astype(int)
        edges = np.diff(padded)
        out += [(foot, s, e) for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]
    return out


def detect_contacts(foot_pos: np.ndarray, fps: float, height: float, speed: float) -> np.ndarray:
    """A foot is in contact when it is low (z below `height`) and slow (below `speed` m/s)."""
    vel = np.gradient(foot_pos, 1.0 / fps, axis=0)
    return (foot_pos[..., 2] < height) & (np.linalg.norm(vel, axis=-1) < speed)


def plant_feet(
    robot: Robot,
    root_pos: np.ndarray,
    root_quat: np.ndarray,
    dof_pos: np.ndarray,
    contact: np.ndarray,
    where: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Pin stance feet and lift any foot below the ground, by IK. Returns (dof_pos, foot_pos).

    Each contact interval's foot is held at the ground point under where it touched down
    (x, y of touch-down, z = foot radius). Raises InputError naming the frame and foot when a
    planted foot is out of the leg's reach or would need a joint past its limit.
    """
    feet, target, moved = _targets(robot, root_pos, root_quat, dof_pos, contact)
    if not moved.any():
        return dof_pos, feet
    ik = ik_world(robot, target, root_pos, root_quat)
    bad = moved & ~ik.ok
    if bad.any():
        frame, foot = np.argwhere(bad)[0]
        why = "out of reach" if not ik.reachable[frame, foot] else "past a joint limit"
        raise InputError(
            f"{where}: frame {frame}, foot "
            f"{robot.foot_names[foot]}: planted foot target {np.round(target[frame, foot], 3).tolist()} "
            f"is {why} of the leg"
        )
    q = np.where(np.repeat(moved, 3, axis=1), ik.q, dof_pos)
    return q, feet_world(robot, root_pos, root_quat, q)


def plant_feet_clamped(
    robot: Robot,
    root_pos: np.ndarray,
    root_quat: np.ndarray,
    dof_pos: np.ndarray,
    contact: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """plant_feet for motion files made for another robot, whose stance legs may need more than the
    robot's joint range (a knee straighter than its limit): such a foot gets the IK's clamped
    solution, as close to its target as the leg goes, instead of an error. Returns (dof_pos,
    foot_pos, miss), miss (N, 4) m from each planted target to the foot (0 where held exactly)."""
    feet, target, moved = _targets(robot, root_pos, root_quat, dof_pos, contact)
    if not moved.any():
        return dof_pos, feet, np.zeros(moved.shape)
    ik = ik_world(robot, target, root_pos, root_quat)
    q = np.where(np.repeat(moved, 3, axis=1), ik.q, dof_pos)
    feet = feet_world(robot, root_pos, root_quat, q)
    return q, feet, np.where(moved, np.linalg.norm(feet - target, axis=-1), 0.0)


def _targets(robot: Robot, root_pos, root_quat, dof_pos, contact) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(feet now, planted targets, legs that need new angles), each per frame and foot."""
    ground = robot.foot_radius
    feet = feet_world(robot, root_pos, root_quat, dof_pos)
    target = feet.copy()
    for foot, start, end in contact_intervals(contact):
        anchor = feet[start, foot].copy()
        anchor[2] = ground
        target[start:end, foot] = anchor
    target[..., 2] = np.maximum(target[..., 2], ground)
    moved = np.any(np.abs(target - feet) > 1e-9, axis=-1)
    return feet, target, moved
