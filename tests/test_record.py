"""`imitation record`: a zero-action replay in Genesis written as a clip of the simulated motion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from imitation.config import NOMINAL_DR, ZERO_NOISE
from imitation.refine.record import record_clip
from retarget.clip import finite_diff, read_clip, sha256_of
from retarget.errors import InputError


def test_record_refuses_a_missing_clip_without_genesis(tmp_path):
    with pytest.raises(InputError, match="clip not found"):
        record_clip(tmp_path / "nope.h5", tmp_path / "out.h5", config="configs/imitation_backflip.yaml")
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.genesis
def test_record_writes_the_simulated_motion(env, hop_clip_path, tmp_path):
    out = tmp_path / "hop_physical.h5"
    rec = record_clip(hop_clip_path, out, env=env)
    assert rec.body_contact_time is None and not rec.faulted
    clip = read_clip(out, env.robot_desc)       # valid in the project's schema
    n = env.ref.num_frames
    assert clip.num_frames == n and clip.fps == pytest.approx(1 / env.dt)
    assert clip.source_file == hop_clip_path.name and clip.source_sha256 == sha256_of(hop_clip_path)
    settings = clip.retarget_settings
    assert "physics recording" in settings["method"]
    assert settings["pd"]["action_mode"] == "residual" and settings["pd"]["kp"] == env.kp
    assert settings["pd"]["residual_lead"] == env.residual_lead
    assert clip.quality["frames"] == n and "total_pitch_deg" in clip.quality

    # Velocities are the central differences of the recorded positions.
    np.testing.assert_allclose(clip.root_lin_vel, finite_diff(clip.root_pos, clip.fps), atol=1e-9)
    np.testing.assert_allclose(clip.dof_vel, finite_diff(clip.dof_pos, clip.fps), atol=1e-9)

    # The base height is the simulated one: a zero-action rollout of the env from t = 0 passes through
    # the recorded states, which differ from the kinematic reference.
    # The session env randomizes its robots on reset: this rollout uses the nominal ones, as the recording.
    all_envs = torch.ones(env.num_envs, dtype=torch.bool)
    saved_dr = env.dr
    env.dr = {**saved_dr, **NOMINAL_DR, "init_noise": dict(ZERO_NOISE)}
    try:
        env.reset_envs(all_envs, torch.zeros(env.num_envs, dtype=torch.long))
        sim_z = [env.root_pos[0, 2].item()]
        sim_q = [env.dof_pos[0].clone()]
        for _ in range(30):
            env.step(torch.zeros(env.num_envs, 12))
            sim_z.append(env.root_pos[0, 2].item())
            sim_q.append(env.dof_pos[0].clone())
    finally:
        env.dr = saved_dr
        env.reset_envs(all_envs)
    np.testing.assert_allclose(clip.root_pos[:31, 2], sim_z, atol=2e-3)
    np.testing.assert_allclose(clip.dof_pos[:31], torch.stack(sim_q).double().numpy(), atol=2e-2)
    ref_z = env.ref.root_pos[:, 2].cpu().numpy()
    assert np.abs(clip.root_pos[:, 2] - ref_z).max() > 2e-3
    # Feet: on the ground while standing, by the contact forces.
    assert clip.foot_contact[:10].all()
    assert clip.foot_pos[:10, :, 2].max() < env.robot_desc.foot_radius + 0.01


@pytest.mark.genesis
def test_record_refuses_a_fall(env, hop_clip_path, tmp_path):
    out = tmp_path / "fall.h5"
    saved = env.contact_link_idx
    env.contact_link_idx = env.foot_link_idx   # the feet count as body: the replay "falls" at once
    try:
        with pytest.raises(InputError, match=r"falls \(body contact at t = 0\.\d\d s\).*--allow-fall") as e:
            record_clip(hop_clip_path, out, env=env)
        assert "\n" not in str(e.value)
        assert not out.exists()
        rec = record_clip(hop_clip_path, out, env=env, allow_fall=True)
    finally:
        env.contact_link_idx = saved
    assert rec.body_contact_time is not None
    clip = read_clip(out)
    assert clip.num_frames == env.ref.num_frames
    assert json.loads(json.dumps(clip.retarget_settings))["body_contact_time_s"] == pytest.approx(rec.body_contact_time)
