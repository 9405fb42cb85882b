"""Our leg forward kinematics against Genesis's link positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from retarget.kinematics import body_to_world, leg_link_positions

pytestmark = pytest.mark.genesis


def test_fk_matches_genesis_links(env):
    robot, n = env.robot_desc, env.num_envs
    rng = np.random.default_rng(0)
    links = [f"{leg}_{part}" for leg in robot.legs for part in ("hip", "thigh", "calf", "foot")]
    link_idx = [env.robot.get_link(name).idx_local for name in links]
    for _ in range(3):
        q = rng.uniform(robot.lower, robot.upper, size=(n, 12))
        pos = rng.uniform([-1, -1, 0.3], [1, 1, 1.0], size=(n, 3))
        quat = Rotation.random(n, random_state=rng).as_quat(scalar_first=True)
        qpos = np.zeros((n, env.robot.n_qs))
        qpos[:, :3], qpos[:, 3:7] = pos, quat
        qpos[:, env.q_idx.cpu().numpy()] = q
        env.robot.set_qpos(torch.tensor(qpos, dtype=torch.float32, device=env.device), zero_velocity=True)

        ours = body_to_world(leg_link_positions(robot, q).reshape(n, 16, 3), pos, quat)  # legs x (hip..foot)
        theirs = env.robot.get_links_pos(link_idx).cpu().numpy()
        err = np.linalg.norm(ours - theirs, axis=-1)
        assert err.max() < 1e-3, f"max FK error {err.max() * 1000:.2f} mm at link {links[int(err.max(0).argmax())]}"
    env.reset_envs(torch.ones(n, dtype=torch.bool, device=env.device))
