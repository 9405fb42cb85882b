"""The two ways a source's joint angles become the robot's, and what each had to clamp.

joints (the default): the mapping's joint rows (sign, zero offset) give the robot's angles directly,
    and the root is the file's, scaled. Exact when the two robots' legs have the same proportions
    and hip layout (Laikago and A1 scaled to the Go2 are within 1% in length), and the only method
    for a source mapping without leg geometry.
feet: positions carry over instead of angles. The source's hips and feet are placed with its own leg
    geometry (the mapping's `legs`); the robot's root goes where its hip centre is the source's
    scaled (as the root is by the joints method: by the ratio of leg lengths, heights above the
    feet), each foot's offset from its shoulder (the point beside the hip abduction axis where the
    leg's plane starts) is scaled by the same ratio and put at the robot's shoulder, and the robot's
    leg IK gives the angles. This keeps foot paths (stance feet on the ground, step lengths in leg
    lengths) when the legs differ in proportions or in lateral hip offsets: a Laikago's hip turned
    in by 0.2 rad lowers its foot 0.6 cm (scaled), the Go2's with the same angle 2 cm.

Either way an angle past a joint limit is clamped to the limit (a target the leg cannot reach is
projected onto its workspace by the IK), and the feet follow from the clamped angles. `clamp_summary`
turns what was clamped into the numbers the quality report shows: motion files made for another
robot pass a Go2 limit now and then (motion_imitation's hop-turn straightens a knee 0.26 rad past
the Go2's -0.84 rad at take-off), and a reference clamped for a few frames is still worth imitating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from .errors import InputError
from .kinematics import feet_body, leg_ik
from .mapping import SourceMapping
from .robot import Robot

METHODS = ("joints", "feet", "auto")   # auto: joints, or feet where the joints leave the feet floating
EXCESS_REPORTED = 1e-4  # rad: less past a limit is the files' 5-decimal rounding, not a clamp
MISS_REPORTED = 1e-3    # m: a foot this close to its target reached it


@dataclass
class Retargeted:
    root_pos: np.ndarray  # (N, 3) m, the robot's root, world frame
    q: np.ndarray         # (N, 12) rad, within the robot's limits
    excess: np.ndarray    # (N, 12) rad the angle asked for was past its limit (0 inside the range)
    miss: np.ndarray      # (N, 4) m from a foot target to where the clamped leg puts the foot (feet method)


def by_joints(robot: Robot, mapping: SourceMapping, root_pos: np.ndarray, q: np.ndarray) -> Retargeted:
    """`root_pos`: (N, 3) the file's root positions; `q`: (N, 12) the robot's angles as the mapping's
    joint rows give them, unclamped."""
    excess = np.maximum(np.maximum(robot.lower - q, q - robot.upper), 0.0)
    return Retargeted(root_pos=mapping.position_to_robot(robot, root_pos), q=np.clip(q, robot.lower, robot.upper),
                      excess=excess, miss=np.zeros((len(q), 4)))


def by_feet(robot: Robot, mapping: SourceMapping, root_pos: np.ndarray, root_quat: np.ndarray, q: np.ndarray,
            where: str) -> Retargeted:
    """`root_pos`: (N, 3) the file's root positions; `root_quat`: (N, 4) wxyz attitudes in the robot's
    base frame; `q`: (N, 12) the source's angles in the robot's joint convention, unclamped."""
    legs = mapping.legs
    if legs is None:
        raise InputError(f"{where}: retargeting by foot positions needs the source's leg geometry: mapping "
                         f"{mapping.path.name} has no 'legs' section (use the joints method)")
    rot = Rotation.from_quat(root_quat, scalar_first=True)
    hips = mapping.position_to_robot(robot, root_pos + rot.apply(legs.hip_offset.mean(axis=0)))
    from_shoulder = feet_body(legs, q) - legs.hip_offset - legs.thigh_offset
    target = robot.hip_offset + robot.thigh_offset + mapping.scale(robot) * from_shoulder
    ik = leg_ik(robot, target)
    miss = np.linalg.norm(feet_body(robot, ik.q) - target, axis=-1)
    return Retargeted(root_pos=hips - rot.apply(robot.hip_offset.mean(axis=0)), q=ik.q, excess=ik.excess, miss=miss)


def clamp_summary(robot: Robot, result: Retargeted) -> dict:
    """What was clamped, per source frame (JSON-able): frames with a joint clamped (all, and per
    joint), the largest excess (rad, joint, frame), and for the feet method the foot targets missed."""
    clamped = result.excess > EXCESS_REPORTED
    frame, joint = np.unravel_index(int(np.argmax(result.excess)), result.excess.shape)
    worst = float(result.excess[frame, joint])
    missed = result.miss > MISS_REPORTED
    mframe, foot = np.unravel_index(int(np.argmax(result.miss)), result.miss.shape)
    return {
        "source_frames": int(len(result.q)),
        "clamped_frames": int(clamped.any(axis=1).sum()),
        "clamped_frames_per_joint": {name: int(clamped[:, j].sum()) for j, name in enumerate(robot.joint_names)
                                     if clamped[:, j].any()},
        "max_excess_rad": worst if worst > EXCESS_REPORTED else 0.0,
        "max_excess_joint": robot.joint_names[joint] if worst > EXCESS_REPORTED else None,
        "max_excess_frame": int(frame) if worst > EXCESS_REPORTED else None,
        "foot_target_missed_frames": int(missed.any(axis=1).sum()),
        "max_foot_miss_m": float(result.miss.max()) if missed.any() else 0.0,
        "max_foot_miss_foot": robot.foot_names[foot] if missed.any() else None,
        "max_foot_miss_frame": int(mframe) if missed.any() else None,
    }
