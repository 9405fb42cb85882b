"""The reward-only backflip terms (docs/facts.md §4) against hand-computed values on tiny synthetic states."""

from __future__ import annotations

import math

import pytest
import torch

from imitation.config import load_config
from imitation.env import rewards
from imitation.env.rewards import TERMS, RewardSum, State

from conftest import ROOT

N = 2


def state(t=0.0, **over) -> State:
    """N standing envs at episode time t (s), upright, everything else zero."""
    z = lambda *s: torch.zeros(N, *s)  # noqa: E731
    ident = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(N, 1)
    t = torch.as_tensor(t, dtype=torch.float32).expand(N).clone()
    kw = dict(
        time=t, episode_time=t, dt=0.02, root_pos=torch.tensor([[0.0, 0.0, 0.3]]).repeat(N, 1),
        root_quat=ident, init_quat=ident.clone(), root_lin_vel=z(3), root_ang_vel=z(3), root_lin_vel_b=z(3),
        root_ang_vel_b=z(3), projected_gravity=torch.tensor([[0.0, 0.0, -1.0]]).repeat(N, 1), dof_pos=z(12),
        dof_vel=z(12), default_dof_pos=torch.zeros(12), torque=z(12), foot_pos=z(4, 3),
        foot_contact=torch.ones(N, 4, dtype=torch.bool), actions=z(12), last_actions=z(12),
    )
    kw.update(over)
    return State(**kw)


def close(a, b):
    torch.testing.assert_close(a, torch.tensor(b, dtype=torch.float32), atol=1e-6, rtol=1e-5)


def test_ang_vel_y_rewards_backward_pitch_rate_in_its_window():
    w = torch.tensor([[0.0, -8.0, 0.0], [0.0, 3.0, 0.0]])  # body pitch rates: backward (clamped), forward
    close(TERMS["ang_vel_y"](state(0.7, root_ang_vel_b=w), None), [7.2, -3.0])
    for t in (0.5, 1.0, 0.3, 1.2):  # open window 0.5 < t < 1.0
        close(TERMS["ang_vel_y"](state(t, root_ang_vel_b=w), None), [0.0, 0.0])
    close(TERMS["ang_vel_y"](state(0.2, root_ang_vel_b=w), None, t_start=0.1, max_rate=10.0), [8.0, -3.0])


def test_lin_vel_z_clamped_above_only_in_its_window():
    v = torch.tensor([[0.0, 0.0, 4.0], [0.0, 0.0, -1.0]])
    close(TERMS["lin_vel_z"](state(0.6, root_lin_vel=v), None), [3.0, -1.0])
    close(TERMS["lin_vel_z"](state(0.75, root_lin_vel=v), None), [0.0, 0.0])
    close(TERMS["lin_vel_z"](state(0.4, root_lin_vel=v), None), [0.0, 0.0])


def test_orientation_control_targets_a_backward_turn():
    up = torch.tensor([[0.0, 0.0, -1.0]]).repeat(N, 1)
    # Env 0 pitched 90 deg backward (nose up: gravity along body -x), env 1 pitched 90 deg forward.
    pitched = torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    f = TERMS["orientation_control"]
    close(f(state(0.2, projected_gravity=up), None), [0.0, 0.0])          # before 0.5 s: the initial attitude
    close(f(state(0.625, projected_gravity=pitched), None), [0.0, 4.0])   # a quarter turn backward at 0.625 s
    close(f(state(0.75, projected_gravity=up), None), [4.0, 4.0])         # upside down at 0.75 s
    close(f(state(1.3, projected_gravity=up), None), [0.0, 0.0])          # one full turn from 1.0 s on
    # The target turns about the body y axis of the initial attitude: a yawed start changes nothing.
    yaw = torch.tensor([[math.cos(0.6), 0.0, 0.0, math.sin(0.6)]]).repeat(N, 1)
    close(f(state(0.625, projected_gravity=pitched, init_quat=yaw), None), [0.0, 4.0])


def test_feet_height_before_backflip():
    feet = torch.zeros(N, 4, 3)
    feet[0, :, 2] = torch.tensor([0.022, 0.10, 0.0, 0.05])
    close(TERMS["feet_height_before_backflip"](state(0.3, foot_pos=feet), None), [0.002 + 0.08 + 0.03, 0.0])
    close(TERMS["feet_height_before_backflip"](state(0.5, foot_pos=feet), None), [0.0, 0.0])


def test_height_control_outside_the_flight():
    pos = torch.tensor([[0.0, 0.0, 0.25], [0.0, 0.0, 0.5]])
    f = TERMS["height_control"]
    close(f(state(0.3, root_pos=pos), None), [0.0025, 0.04])
    close(f(state(1.0, root_pos=pos), None), [0.0, 0.0])
    close(f(state(1.5, root_pos=pos), None), [0.0025, 0.04])


def test_gravity_y_and_ang_vel_z():
    close(TERMS["gravity_y"](state(projected_gravity=torch.tensor([[0.0, 0.6, -0.8], [0.0, 0.0, -1.0]])), None),
          [0.36, 0.0])
    close(TERMS["ang_vel_z"](state(root_ang_vel_b=torch.tensor([[0.0, 0.0, -2.0], [1.0, 1.0, 0.5]])), None),
          [2.0, 0.5])


def test_feet_distance_in_the_body_frame():
    # Base at (1, 2, 0.3) yawed 90 deg; feet at body-frame y = -0.15 (right legs) and +0.15 (left legs).
    q = torch.tensor([[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]]).repeat(N, 1)
    base = torch.tensor([[1.0, 2.0, 0.3]]).repeat(N, 1)
    body = torch.tensor([[0.19, -0.15, -0.3], [0.19, 0.15, -0.3], [-0.19, -0.15, -0.3], [-0.19, 0.15, -0.3]])
    world = base[:, None] + torch.stack([-body[:, 1], body[:, 0], body[:, 2]], -1)[None]  # yaw 90: (x, y) -> (-y, x)
    s = state(root_quat=q, root_pos=base, foot_pos=world.expand(N, 4, 3).clone())
    close(TERMS["feet_distance"](s, None), [4 * 0.15 ** 2] * N)   # the recipe's target: y = 0
    close(TERMS["feet_distance"](s, None, stance_width=0.3), [0.0, 0.0])


def test_actions_symmetry_mirrors_the_hips():
    a = torch.zeros(N, 12)
    a[0] = torch.tensor([0.1, 0.2, 0.3, -0.1, 0.2, 0.3,   # FR, FL: mirrored exactly
                         0.1, 0.0, 0.0, 0.1, 0.5, 0.0])  # RR, RL: hips not mirrored, thighs differ
    close(TERMS["actions_symmetry"](state(actions=a), None), [0.2 ** 2 + 0.5 ** 2, 0.0])


def test_reward_config_uses_only_recipe_terms():
    cfg = load_config(ROOT / "configs" / "reward_backflip.yaml")
    terms = cfg["rewards"]["terms"]
    assert set(terms) == {"ang_vel_y", "lin_vel_z", "orientation_control", "feet_height_before_backflip",
                          "height_control", "gravity_y", "ang_vel_z", "feet_distance", "actions_symmetry",
                          "action_rate"}
    assert cfg["rewards"]["scale_by_dt"] and not cfg["reset"]["rsi"] and cfg["env"]["episode_length_s"] == 2.0
    assert cfg["env"]["action_mode"] == "default"
    t = cfg["termination"]
    assert not t["body_contact"] and t["max_height_error"] is None and t["max_orientation_error"] is None
    # No term reads the reference: they run with ref=None. Weighted by the recipe's weights x dt.
    r = RewardSum(terms, dt=0.02, scale_by_dt=True)
    w = torch.tensor([[0.0, -5.0, 0.0], [0.0, 0.0, 0.0]])
    out = r(state(0.7, root_ang_vel_b=w), None)
    assert out.shape == (N, len(terms)) and torch.isfinite(out).all()
    close(out[:, r.names.index("ang_vel_y")], [5.0 * 0.02 * 5.0, 0.0])


def test_term_parameters_have_the_recipe_defaults():
    assert rewards.term_parameters("ang_vel_y") == {"max_rate": 7.2, "t_start": 0.5, "t_end": 1.0}
    assert rewards.term_parameters("lin_vel_z") == {"max_vel": 3.0, "t_start": 0.5, "t_end": 0.75}
    assert rewards.term_parameters("orientation_control") == {"pitch_rate": pytest.approx(4 * math.pi),
                                                              "t_start": 0.5, "t_end": 1.0}
    assert rewards.term_parameters("height_control") == {"target": 0.3, "t_before": 0.4, "t_after": 1.4}
    assert rewards.term_parameters("feet_height_before_backflip") == {"clearance": 0.02, "t_end": 0.5}
