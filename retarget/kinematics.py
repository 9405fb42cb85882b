"""Go2 leg forward kinematics and closed-form 3-DoF inverse kinematics, vectorized over frames.

Joint angles are (..., 12) in the robot's canonical order; feet are (..., 4, 3). Body-frame
positions are relative to the base link origin; world-frame ones use a root position and a
wxyz quaternion. Each leg is hip (about x), thigh and calf (about y), thigh and calf in line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from .robot import Robot


def quat_to_rot(quat_wxyz: np.ndarray) -> Rotation:
    return Rotation.from_quat(np.asarray(quat_wxyz, float).reshape(-1, 4), scalar_first=True)


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def leg_link_positions(robot: Robot, q: np.ndarray) -> np.ndarray:
    """Body-frame positions of (hip, thigh, calf, foot) link origins: (..., 4 legs, 4 links, 3)."""
    q = np.asarray(q, float).reshape(*np.shape(q)[:-1], 4, 3)
    r_hip = _rot_x(q[..., 0])
    r_thigh = r_hip @ _rot_y(q[..., 1])
    r_calf = r_thigh @ _rot_y(q[..., 2])
    hip = np.broadcast_to(robot.hip_offset, r_hip.shape[:-1])
    thigh = hip + np.einsum("...ij,...j->...i", r_hip, robot.thigh_offset)
    calf = thigh + np.einsum("...ij,...j->...i", r_thigh, robot.calf_offset)
    foot = calf + np.einsum("...ij,...j->...i", r_calf, robot.foot_offset)
    return np.stack([hip, thigh, calf, foot], axis=-2)


def body_clearance(robot: Robot, root_pos: np.ndarray, root_quat: np.ndarray, q: np.ndarray) -> dict:
    """Height above the ground (z = 0) of the lowest point of the body links' collision shapes (Robot.body_points)
    over frames (T, ...): {'clearance_m' (T,), 'link' (T,) names}."""
    q = np.asarray(q, float).reshape(-1, 12)
    legs = q.reshape(-1, 4, 3)
    r_hip = _rot_x(legs[..., 0])                           # (T, 4, 3, 3)
    r_thigh = r_hip @ _rot_y(legs[..., 1])
    pos = leg_link_positions(robot, q)                     # (T, 4, 4, 3)
    bp = robot.body_points
    hip = pos[:, :, 0, None, :] + np.einsum("tlij,lkj->tlki", r_hip, bp["hip"])      # (T, 4, K, 3) body frame
    thigh = pos[:, :, 1, None, :] + np.einsum("tlij,lkj->tlki", r_thigh, bp["thigh"])
    up = quat_to_rot(root_quat).as_matrix()[:, 2, :]      # (T, 3): world z of a body-frame vector
    t = len(q)
    groups = {"base": bp["base"] @ up.T}                   # (K, T) -> transposed below
    groups["base"] = groups["base"].T
    for name, pts in (("hip", hip), ("thigh", thigh)):
        per_leg = np.einsum("tj,tlkj->tlk", up, pts)                                  # (T, 4, K)
        for i, leg in enumerate(robot.legs):
            groups[f"{leg}_{name}"] = per_leg[:, i]
    names = list(groups)
    lows = np.stack([g.min(-1) for g in groups.values()], 1) + np.asarray(root_pos)[:, 2:3]  # (T, links)
    worst = lows.argmin(1)
    return {"clearance_m": lows[np.arange(t), worst], "link": [names[i] for i in worst]}


def feet_body(robot: Robot, q: np.ndarray) -> np.ndarray:
    """Body-frame foot positions (..., 4, 3)."""
    return leg_link_positions(robot, q)[..., 3, :]


def body_to_world(points: np.ndarray, root_pos: np.ndarray, root_quat: np.ndarray) -> np.ndarray:
    """Points (N, K, 3) in the body frame of N root poses -> world frame."""
    rot = quat_to_rot(root_quat).as_matrix()  # (N, 3, 3)
    return np.einsum("nij,nkj->nki", rot, points) + np.asarray(root_pos)[:, None, :]


def world_to_body(points: np.ndarray, root_pos: np.ndarray, root_quat: np.ndarray) -> np.ndarray:
    rot = quat_to_rot(root_quat).as_matrix()
    return np.einsum("nji,nkj->nki", rot, points - np.asarray(root_pos)[:, None, :])


def feet_world(robot: Robot, root_pos: np.ndarray, root_quat: np.ndarray, q: np.ndarray) -> np.ndarray:
    """World-frame foot positions (N, 4, 3) for N frames."""
    return body_to_world(feet_body(robot, q), root_pos, root_quat)


@dataclass
class IKResult:
    q: np.ndarray            # (..., 12) joint angles, clipped into the limits
    reachable: np.ndarray    # (..., 4) bool: target within the leg's workspace
    within_limits: np.ndarray  # (..., 4) bool: the exact solution respects the joint limits
    excess: np.ndarray | None = None  # (..., 12) rad each angle of the solution was past its limit

    @property
    def ok(self) -> np.ndarray:
        return self.reachable & self.within_limits


def leg_ik(robot: Robot, feet: np.ndarray, tol: float = 1e-9) -> IKResult:
    """Closed-form IK from body-frame foot positions (..., 4, 3) to joint angles (..., 12).

    Of the two knee solutions it picks the one with the calf bent backwards (calf angle < 0),
    the only one the Go2's calf limits allow. Unreachable targets are projected onto the
    workspace boundary and flagged; solutions past a joint limit are clipped and flagged. A knee
    clipped to its limit has the thigh re-aimed at the target, so the foot stays on the line from
    the thigh joint to the target (the nearest point that knee angle reaches) instead of swinging
    off it by half the clipped angle.
    """
    feet = np.asarray(feet, float)
    p = feet - robot.hip_offset  # relative to the hip joint
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    d = robot.thigh_offset[:, 1]          # signed lateral offset per leg
    l1, l2 = robot.thigh_length, robot.calf_length

    r2 = y**2 + z**2
    lat_ok = r2 >= d**2 - tol
    big_l = np.sqrt(np.maximum(r2 - d**2, 0.0))       # leg length in the sagittal plane
    dist2 = x**2 + big_l**2
    cos_knee = (dist2 - l1**2 - l2**2) / (2 * l1 * l2)
    knee_ok = (cos_knee <= 1 + tol) & (cos_knee >= -1 - tol)
    q_calf = -np.arccos(np.clip(cos_knee, -1.0, 1.0))
    knee_angle = np.arctan2(l2 * np.sin(q_calf), l1 + l2 * np.cos(q_calf))

    lo, hi = robot.lower.reshape(4, 3), robot.upper.reshape(4, 3)
    mid = 0.5 * (lo + hi)
    # Two hip branches: foot below the hip in the leg plane (z' = -L, the usual stance) or above
    # it (z' = +L, a thigh turned past horizontal). Of those within the limits keep the one with
    # less hip abduction: near the hip axis (L -> 0, e.g. a rear leg pushing off a vertical body)
    # both respect the limits, and taking the first one there gave one-frame hip flicks of 20+ deg.
    candidates = []
    for zl in (-big_l, big_l):
        q_hip = np.arctan2(z, y) - np.arctan2(zl, d)
        q_thigh = np.arctan2(-x, -zl) - knee_angle
        qc = np.stack([q_hip, q_thigh, q_calf], axis=-1)  # (..., 4, 3)
        qc = qc - 2 * np.pi * np.round((qc - mid) / (2 * np.pi))  # branch nearest the joint range
        candidates.append((qc, np.all((qc >= lo - 1e-6) & (qc <= hi + 1e-6), axis=-1)))
    (q_a, ok_a), (q_b, ok_b) = candidates
    use_b = ok_b & (~ok_a | (np.abs(q_b[..., 0]) < np.abs(q_a[..., 0])))
    q = np.where(use_b[..., None], q_b, q_a)
    within = ok_a | ok_b
    clipped = np.clip(q, lo, hi)
    excess = np.abs(q - clipped).reshape(*q.shape[:-2], 12)
    calf = clipped[..., 2]
    clipped[..., 1] = np.clip(q[..., 1] + knee_angle - np.arctan2(l2 * np.sin(calf), l1 + l2 * np.cos(calf)),
                              lo[..., 1], hi[..., 1])
    return IKResult(q=clipped.reshape(*q.shape[:-2], 12), reachable=lat_ok & knee_ok, within_limits=within,
                    excess=excess)


def ik_world(robot: Robot, feet_w: np.ndarray, root_pos: np.ndarray, root_quat: np.ndarray) -> IKResult:
    """IK for world-frame foot targets (N, 4, 3) given N root poses."""
    return leg_ik(robot, world_to_body(feet_w, root_pos, root_quat))
