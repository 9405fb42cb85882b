"""Batched quaternion helpers in torch (w, x, y, z order, like Genesis and the clip format)."""

from __future__ import annotations

import torch


def quat_conj(q: torch.Tensor) -> torch.Tensor:
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def _hamilton_table(device, dtype) -> torch.Tensor:
    """(16, 4) T with quat_mul(a, b) = (a outer b).flatten() @ T: the Hamilton product as one matrix product,
    4 torch calls instead of ~30 elementwise ones (the env calls it every step on small batches, where the
    cost is per call and not per element)."""
    key = (device, dtype)
    if key not in _HAMILTON:
        t = torch.zeros(4, 4, 4, dtype=dtype)
        # (component of a, component of b) -> (sign, component of the product), w x y z
        for (i, j), (sign, k) in {
            (0, 0): (1, 0), (1, 1): (-1, 0), (2, 2): (-1, 0), (3, 3): (-1, 0),
            (0, 1): (1, 1), (1, 0): (1, 1), (2, 3): (1, 1), (3, 2): (-1, 1),
            (0, 2): (1, 2), (1, 3): (-1, 2), (2, 0): (1, 2), (3, 1): (1, 2),
            (0, 3): (1, 3), (1, 2): (1, 3), (2, 1): (-1, 3), (3, 0): (1, 3),
        }.items():
            t[i, j, k] = sign
        _HAMILTON[key] = t.reshape(16, 4).to(device)
    return _HAMILTON[key]


_HAMILTON: dict = {}


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    outer = (a.unsqueeze(-1) * b.unsqueeze(-2)).flatten(-2)
    return outer @ _hamilton_table(outer.device, outer.dtype)


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4): body frame -> world frame."""
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v + w * t + torch.cross(u, t, dim=-1)


def quat_rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """World frame -> body frame."""
    return quat_rotate(quat_conj(q), v)


def quat_to_rotvec(q: torch.Tensor) -> torch.Tensor:
    """Axis * angle (..., 3), angle in [0, pi]."""
    q = torch.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(s, q[..., :1])
    scale = torch.where(s > 1e-8, angle / s.clamp_min(1e-8), 2.0 / q[..., :1].clamp_min(1e-8))
    return v * scale


def quat_error_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rotation angle (rad, in [0, pi]) between attitudes a and b."""
    dot = torch.abs(torch.sum(a * b, dim=-1)).clamp(max=1.0)
    return 2.0 * torch.acos(dot)


def quat_to_rot6d(q: torch.Tensor) -> torch.Tensor:
    """First two columns of the rotation matrix (..., 6): a continuous attitude encoding."""
    w, x, y, z = q.unbind(-1)
    col0 = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], dim=-1)
    col1 = torch.stack([2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)], dim=-1)
    return torch.cat([col0, col1], dim=-1)
