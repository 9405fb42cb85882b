"""Early terminations: each one small function of the state (rewards.State), the reference frame and its limit,
returning (n,) bool; the `termination` section of the config switches each by its key (the limit; null or false:
off). Adding one: a function here, its line in TERMS, and its key in the config schema (imitation/config.py)."""

from __future__ import annotations

import torch

from ..utils.rotations import quat_error_angle
from .rewards import State


def body_contact(state: State, ref, on: bool) -> torch.Tensor:
    """Ground contact of a body link (termination.contact_links, above termination.contact_force)."""
    return state.body_contact


def height(state: State, ref, limit: float) -> torch.Tensor:
    return (state.root_pos[:, 2] - ref.root_pos[:, 2]).abs() > limit


def position(state: State, ref, limit: float) -> torch.Tensor:
    """Base position (horizontal and vertical together) further than `limit` from the reference's."""
    return torch.linalg.vector_norm(state.root_pos - ref.root_pos, dim=-1) > limit


def orientation(state: State, ref, limit: float, angle: torch.Tensor | None = None) -> torch.Tensor:
    """The attitude error against the reference's (`angle`: already computed by the caller) above `limit`."""
    return (quat_error_angle(state.root_quat, ref.root_quat) if angle is None else angle) > limit


# name (as logged: Termination/<name>) -> (function, its key in the config's `termination` section)
TERMS = {
    "body_contact": (body_contact, "body_contact"),
    "height": (height, "max_height_error"),
    "position": (position, "max_position_error"),
    "orientation": (orientation, "max_orientation_error"),
}


def limits(termination_cfg: dict) -> dict[str, object]:
    """{name: limit} of the terminations the config switches on."""
    return {name: termination_cfg[key] for name, (_, key) in TERMS.items() if termination_cfg[key] not in (None, False)}


def evaluate(state: State, ref, active: dict[str, object], orientation_error: torch.Tensor | None = None) -> torch.Tensor:
    """(n, len(TERMS)) bool, columns in TERMS order; the terminations not in `active` never fire.
    `orientation_error`: the attitude error against `ref` when the caller has it (the env step logs it)."""
    off = torch.zeros_like(state.foot_contact[:, 0])
    known = {"orientation": {"angle": orientation_error}} if orientation_error is not None else {}
    return torch.stack([fn(state, ref, active[name], **known.get(name, {})) if name in active else off
                        for name, (fn, _) in TERMS.items()], dim=-1)
