"""The clip quality report against synthetic clips with known answers."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from retarget.clip import Clip
from retarget.kinematics import feet_world
from retarget.quality import format_report, quality_report
from retarget.robot import load_robot

G = 9.81


@pytest.fixture(scope="module")
def robot():
    return load_robot()


def flip_clip(robot, fps=100.0, vz=2.0, turn_deg=-360.0, z0=0.4):
    """Ground 0.2 s, ballistic flight with a constant-rate turn, ground 0.2 s."""
    t_flight = 2 * vz / G
    n0, nf = int(0.2 * fps), int(round(t_flight * fps))
    t = np.arange(n0 + nf + n0 + 1) / fps
    tf = np.clip(t - 0.2, 0, t_flight)
    z = z0 + vz * tf - 0.5 * G * tf**2
    pos = np.stack([np.zeros_like(t), np.zeros_like(t), z], axis=1)
    pitch = np.radians(turn_deg) * tf / t_flight
    quat = Rotation.from_euler("y", pitch[:, None]).as_quat(scalar_first=True)
    q = np.tile(robot.default_pose, (len(t), 1))
    contact = np.ones((len(t), 4), bool)
    contact[n0 + 1 : n0 + nf] = False
    return Clip(fps=fps, root_pos=pos, root_quat=quat, dof_pos=q, foot_pos=feet_world(robot, pos, quat, q),
                foot_contact=contact, joint_names=robot.joint_names, foot_names=robot.foot_names)


def test_flight_numbers(robot):
    clip = flip_clip(robot)
    r = quality_report(clip, robot)
    assert r["flight_vertical_accel_m_s2"] == pytest.approx(-G, abs=1e-6)
    assert r["apex_base_height_m"] == pytest.approx(0.4 + 2.0**2 / (2 * G), abs=2e-3)
    assert r["flight_time_s"] == pytest.approx(2 * 2.0 / G, abs=0.02)
    assert r["takeoff_vertical_speed_m_s"] == pytest.approx(2.0, abs=0.15)
    assert r["total_pitch_deg"] == pytest.approx(-360.0, abs=1.0)
    assert r["joint_limit_violation_frames"] == 0
    assert "flight vertical accel" in format_report(r)


def test_double_turn_counts_720(robot):
    r = quality_report(flip_clip(robot, turn_deg=-720.0), robot)
    assert r["total_pitch_deg"] == pytest.approx(-720.0, abs=2.0)


def test_limits_penetration_and_skating(robot):
    clip = flip_clip(robot)
    clip.dof_pos[5, 2] = robot.lower[2] - 0.1           # calf 0.1 rad past its limit
    clip.foot_pos[3, 1, 2] = robot.foot_radius - 0.012   # FL 12 mm into the ground
    clip.foot_pos[4:, 0, 0] += 0.001 * np.minimum(np.arange(clip.num_frames - 4) + 1, 6)  # FR slides 1 mm/frame
    clip.dof_vel[:, 7] = 2 * robot.velocity[7]
    r = quality_report(clip, robot)
    assert r["joint_limit_violations"] == {"FR_calf_joint": {"frames": 1, "max_rad": pytest.approx(0.1)}}
    assert r["max_foot_penetration_m"] == pytest.approx(0.012)
    assert r["max_stance_skating_m_s"] == pytest.approx(0.1)
    assert r["peak_joint_speed_ratio"] == pytest.approx(2.0) and r["peak_joint_speed_joint"] == "RR_thigh_joint"
