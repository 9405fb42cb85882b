"""Leg FK/IK of retarget.kinematics against independent expectations (the FK-vs-Genesis check is in
test_genesis_fk.py)."""

import numpy as np
import pytest

from retarget.kinematics import feet_body, feet_world, ik_world, leg_ik, leg_link_positions
from retarget.robot import load_robot


@pytest.fixture(scope="module")
def robot():
    return load_robot()


def test_robot_description_matches_urdf_facts(robot):
    # Values from the Go2 URDF as listed in docs/facts.md §1, independent of our parser.
    assert robot.joint_names[:3] == ("FR_hip_joint", "FR_thigh_joint", "FR_calf_joint")
    assert robot.legs == ("FR", "FL", "RR", "RL")
    np.testing.assert_allclose(robot.lower[:3], [-1.0472, -1.5708, -2.7227])
    np.testing.assert_allclose(robot.upper[6:9], [1.0472, 4.5379, -0.83776])
    np.testing.assert_allclose(robot.effort[:3], [23.7, 23.7, 35.55])
    assert robot.thigh_length == pytest.approx(0.213) and robot.calf_length == pytest.approx(0.213)
    np.testing.assert_allclose(robot.pose("stand")[:3], [0.0, 0.8, -1.5])
    np.testing.assert_allclose(robot.pose("stand")[6:9], [0.0, 1.0, -1.5])


def test_fk_of_straight_leg(robot):
    # All joints at zero: the foot hangs straight below the thigh joint, 0.426 m down.
    feet = feet_body(robot, np.zeros(12))
    expected = robot.hip_offset + robot.thigh_offset + np.array([0, 0, -0.426])
    np.testing.assert_allclose(feet, expected, atol=1e-12)
    # Thigh at +90 deg swings the straight leg backwards (rotation about +y takes -z to -x).
    q = np.zeros(12)
    q[1] = np.pi / 2
    foot = feet_body(robot, q)[0]
    np.testing.assert_allclose(foot, robot.hip_offset[0] + robot.thigh_offset[0] + [-0.426, 0, 0], atol=1e-12)


def test_link_chain_lengths(robot, rng=np.random.default_rng(1)):
    q = rng.uniform(robot.lower, robot.upper, size=(500, 12))
    links = leg_link_positions(robot, q)
    np.testing.assert_allclose(np.linalg.norm(links[..., 2, :] - links[..., 1, :], axis=-1), 0.213, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(links[..., 3, :] - links[..., 2, :], axis=-1), 0.213, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(links[..., 1, :] - links[..., 0, :], axis=-1), 0.0955, atol=1e-12)


def test_ik_round_trip_across_workspace(robot):
    rng = np.random.default_rng(0)
    q = rng.uniform(robot.lower, robot.upper, size=(20000, 12))
    feet = feet_body(robot, q)
    ik = leg_ik(robot, feet)
    assert ik.ok.all()
    err = np.linalg.norm(feet_body(robot, ik.q) - feet, axis=-1)
    assert err.max() < 1e-4  # FK(IK(p)) within 0.1 mm
    assert np.all((ik.q >= robot.lower) & (ik.q <= robot.upper))


def test_ik_random_points_reachable_ones_round_trip(robot):
    rng = np.random.default_rng(2)
    hip = robot.hip_offset
    pts = hip + rng.uniform(-0.5, 0.5, size=(20000, 4, 3))
    ik = leg_ik(robot, pts)
    err = np.linalg.norm(feet_body(robot, ik.q) - pts, axis=-1)
    assert ik.ok.mean() > 0.05  # a cube of 1 m around the hip is mostly out of reach
    assert err[ik.ok].max() < 1e-4
    # Points past the leg's full reach are reported unreachable.
    rel = pts - hip
    d = robot.thigh_offset[:, 1]
    far = rel[..., 0] ** 2 + rel[..., 1] ** 2 + rel[..., 2] ** 2 - d**2 > 0.426**2 + 1e-6
    assert not ik.reachable[far].any()


def test_unreachable_target_flagged(robot):
    feet = feet_body(robot, robot.default_pose)
    feet[0, 2] -= 0.5  # half a metre below the stance foot
    ik = leg_ik(robot, feet)
    assert ik.reachable.tolist() == [False, True, True, True]


def test_world_ik_with_rotated_base(robot):
    rng = np.random.default_rng(3)
    n = 200
    q = rng.uniform(robot.lower, robot.upper, size=(n, 12))
    from scipy.spatial.transform import Rotation
    quat = Rotation.random(n, random_state=4).as_quat(scalar_first=True)
    pos = rng.normal(size=(n, 3))
    feet = feet_world(robot, pos, quat, q)
    ik = ik_world(robot, feet, pos, quat)
    np.testing.assert_allclose(feet_world(robot, pos, quat, ik.q), feet, atol=1e-9)


def test_body_clearance_of_straight_legs(robot):
    # Go2 URDF: the thigh's collision box (0.11 long, turned upright) is centred 0.1065 m below the thigh joint, which
    # sits at the base's height; with every joint at zero and the base upright at H its bottom, H - 0.1615, is the
    # lowest body point (the hip cylinders and the trunk box reach 0.046 and 0.057 m below the base).
    from retarget.kinematics import body_clearance

    heights = np.array([0.30, 0.16, 0.10])
    pos = np.stack([np.zeros(3), np.zeros(3), heights], 1)
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (3, 1))
    c = body_clearance(robot, pos, quat, np.zeros((3, 12)))
    np.testing.assert_allclose(c["clearance_m"], heights - 0.1615, atol=1e-6)
    assert all(str(link).endswith("_thigh") for link in c["link"])
    # Rolled 90 degrees onto its right side (quaternion w, x, y, z): the right thighs, whose joints are
    # 0.0465 + 0.0955 m right of the base, lowest by the box's half thickness 0.01225 more.
    rolled = body_clearance(robot, pos[:1], np.array([[np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0]]),
                            np.zeros((1, 12)))
    assert rolled["clearance_m"][0] == pytest.approx(0.30 - 0.142 - 0.01225, abs=1e-6)
    assert rolled["link"][0] in ("FR_thigh", "RR_thigh")
