"""A synthetic reference clip for tests and smoke trainings: stand, crouch, hop, land, stand.

Built from base height and pitch curves plus planted feet, solved with the project's leg IK, so it
is kinematically consistent (feet on the ground while in contact). Run as a script to write it:
    python tests/synthetic_clip.py runs/hop.h5
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retarget.clip import Clip, write_clip  # noqa: E402
from retarget.kinematics import feet_body, feet_world, ik_world  # noqa: E402
from retarget.robot import load_robot  # noqa: E402


def hop_clip(robot=None, fps: float = 50.0, duration: float = 2.0) -> Clip:
    robot = robot or load_robot()
    t = np.arange(int(round(duration * fps)) + 1) / fps
    stance = feet_body(robot, robot.default_pose)              # (4, 3) body frame at the stand pose
    h0 = robot.foot_radius - stance[:, 2].mean()               # base height with feet on the ground
    ground = np.concatenate([stance[:, :2], np.full((4, 1), robot.foot_radius)], axis=1)

    # Base height and pitch keyframes (s, m / rad): stand, crouch, push, flight, land, stand.
    key_t = [0.0, 0.4, 0.7, 0.85, 0.975, 1.1, 1.3, 1.7, duration]
    key_z = [h0, h0, h0 - 0.07, h0 + 0.02, h0 + 0.06, h0 + 0.01, h0 - 0.05, h0, h0]
    key_pitch = [0.0, 0.0, 0.08, -0.1, -0.05, 0.0, 0.05, 0.0, 0.0]
    z = PchipInterpolator(key_t, key_z)(t)
    pitch = PchipInterpolator(key_t, key_pitch)(t)
    root_pos = np.stack([np.zeros_like(t), np.zeros_like(t), z], axis=1)
    root_quat = Rotation.from_euler("y", pitch[:, None]).as_quat(scalar_first=True)

    # Feet planted except during the flight window, where they lift by a smooth bump.
    flight = (t > 0.85) & (t < 1.1)
    bump = np.where(flight, 0.05 * np.sin(np.pi * (t - 0.85) / 0.25), 0.0)
    targets = np.repeat(ground[None], len(t), axis=0)
    targets[..., 2] += bump[:, None]
    ik = ik_world(robot, targets, root_pos, root_quat)
    if not ik.ok.all():
        raise RuntimeError("synthetic hop: a foot target is out of reach")
    dof_pos = ik.q
    foot_pos = feet_world(robot, root_pos, root_quat, dof_pos)
    contact = np.repeat(~flight[:, None], 4, axis=1)
    return Clip(
        fps=fps, root_pos=root_pos, root_quat=root_quat, dof_pos=dof_pos, foot_pos=foot_pos,
        foot_contact=contact, joint_names=robot.joint_names, foot_names=robot.foot_names,
        robot=robot.name, source_file="synthetic hop",
    )


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/hop.h5")
    write_clip(hop_clip(), out)
    print(f"wrote {out}")
