"""The env's batched quaternion helpers (w, x, y, z) against scipy's rotations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from imitation.utils import rotations as rot

N = 200


def _wxyz(r: Rotation) -> torch.Tensor:
    return torch.tensor(np.roll(r.as_quat(), 1, axis=-1), dtype=torch.float32)


def _same_attitude(q: torch.Tensor, want: torch.Tensor, atol=1e-6) -> None:
    # q and -q are the same attitude
    err = torch.minimum((q - want).abs().amax(-1), (q + want).abs().amax(-1))
    assert float(err.max()) < atol


@pytest.fixture(scope="module")
def rotations():
    return Rotation.random(N, random_state=1), Rotation.random(N, random_state=2)


def test_quat_mul_composes_like_scipy(rotations):
    a, b = rotations
    _same_attitude(rot.quat_mul(_wxyz(a), _wxyz(b)), _wxyz(a * b), atol=1e-6)
    # leading batch dims broadcast, as the future-frame observation uses them
    qa, qb = _wxyz(a).view(20, 10, 4), _wxyz(b).view(20, 10, 4)
    _same_attitude(rot.quat_mul(qa, qb).view(N, 4), _wxyz(a * b), atol=1e-6)


def test_quat_conj_is_the_inverse(rotations):
    a, _ = rotations
    _same_attitude(rot.quat_conj(_wxyz(a)), _wxyz(a.inv()))


def test_rotate_and_inverse_rotate(rotations):
    a, _ = rotations
    v = torch.tensor(np.random.default_rng(0).normal(size=(N, 3)), dtype=torch.float32)
    want = torch.tensor(a.apply(v.numpy()), dtype=torch.float32)
    assert torch.allclose(rot.quat_rotate(_wxyz(a), v), want, atol=1e-5)
    want_inv = torch.tensor(a.inv().apply(v.numpy()), dtype=torch.float32)
    assert torch.allclose(rot.quat_rotate_inverse(_wxyz(a), v), want_inv, atol=1e-5)


def test_rotvec_and_error_angle(rotations):
    a, b = rotations
    want = torch.tensor(a.as_rotvec(), dtype=torch.float32)  # scipy: angle in [0, pi]
    assert torch.allclose(rot.quat_to_rotvec(_wxyz(a)), want, atol=1e-5)
    angle = torch.tensor((a.inv() * b).magnitude(), dtype=torch.float32)
    assert torch.allclose(rot.quat_error_angle(_wxyz(a), _wxyz(b)), angle, atol=1e-3)  # acos near 1 is coarse


def test_rot6d_is_the_first_two_matrix_columns(rotations):
    a, _ = rotations
    m = torch.tensor(a.as_matrix(), dtype=torch.float32)
    assert torch.allclose(rot.quat_to_rot6d(_wxyz(a)), torch.cat([m[:, :, 0], m[:, :, 1]], dim=-1), atol=1e-5)
