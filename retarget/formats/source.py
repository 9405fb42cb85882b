"""The intermediate every format loader returns, and the checks all loaders share.

A SourceMotion is the file's content made numeric and checked, still in the SOURCE robot's
conventions: its joint order, joint zeros and signs, its base frame. Converting to the Go2 is the
mapping's job (retarget/mapping.py), so one loader serves every robot that writes the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError

QUAT_NORM_TOLERANCE = 0.01  # files round to ~5 decimals; more than this is not a rounding error


@dataclass(frozen=True)
class Format:
    """A source motion format, declared by its module as `FORMAT_SPEC` (retarget/formats/__init__.py finds it).

    `claims(suffix, text)` says whether a file with this extension (lower case) and content is in the format; formats
    are asked in `rank` order, lowest first. `load(path, fps)` reads it (`fps`: the caller's frame rate, for formats
    whose files may not say; None otherwise). `source_robots`: the robot a file is written for when the caller does
    not say, by format variant (SourceMotion.info["variant"]) or by the format's name."""

    name: str
    suffixes: tuple[str, ...]
    claims: Callable[[str, str], bool]
    load: Callable[..., "SourceMotion"]
    source_robots: dict[str, str]
    takes_fps: bool = False
    rank: int = 50


@dataclass
class SourceMotion:
    path: Path
    format: str                          # "motion_imitation" | "csv"
    fps: float                           # frames per second of the file
    root_pos: np.ndarray                 # (N, 3) m, source world frame
    root_quat: np.ndarray                # (N, 4) w x y z, unit, the source base frame's attitude
    joint_pos: np.ndarray                # (N, J) rad, source convention and column order
    joint_names: tuple[str, ...] | None  # column names; None = positional, in the mapping's order
    loop_mode: str = "none"              # "none" | "wrap"
    cycle_offset_position: bool = False  # a wrapped repetition starts where the last one ended (x, y) ...
    cycle_offset_rotation: bool = False  # ... and facing where it ended (heading)
    info: dict = field(default_factory=dict)  # format details worth recording (JSON-able)

    @property
    def num_frames(self) -> int:
        return len(self.root_pos)


def read_text(path: Path) -> str:
    """The file as text; empty and binary files are refused before any parser sees them."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read file ({e.strerror or e})") from e
    if not data.strip():
        raise InputError(f"{path}: file is empty")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{path}: binary content (NUL byte at offset {nul}), not a text motion file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: binary content (byte 0x{data[e.start]:02x} at offset {e.start} is not UTF-8), "
                         "not a text motion file") from e


def check_frame_count(path: Path, n: int, field_name: str) -> None:
    if n < 2:
        raise InputError(f"{path}: field {field_name!r} has {n} frame(s), a motion needs at least 2")


def check_finite(path: Path, values: np.ndarray, labels: list[str], field_name: str) -> None:
    """values (N, K) with a label per column; names the first bad frame and column."""
    bad = ~np.isfinite(values)
    if bad.any():
        frame, col = np.argwhere(bad)[0]
        raise InputError(f"{path}: frame {frame}: field {field_name!r} column {col} ({labels[col]}) "
                         f"is {values[frame, col]}, not a finite number")


def check_quaternions(path: Path, quat: np.ndarray, field_name: str) -> np.ndarray:
    """Unit quaternions (any component order) returned normalized; zero or non-unit ones refused."""
    norm = np.linalg.norm(quat, axis=-1)
    off = np.abs(norm - 1.0)
    if np.any(off > QUAT_NORM_TOLERANCE):
        frame = int(np.argmax(off))
        what = "has zero length" if norm[frame] < 1e-9 else f"is not unit length (norm {norm[frame]:.4f})"
        raise InputError(f"{path}: frame {frame}: field {field_name!r} root quaternion {what}")
    return quat / norm[:, None]


def positive_number(path: Path, value, field_name: str) -> float:
    # bool is an int in Python; `true` is never a duration or a rate. float() of an integer past the
    # float range (JSON allows 1000...0) raises OverflowError: not a usable number either.
    number = None
    if not isinstance(value, bool) and isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            pass
    if number is None or not np.isfinite(number) or number <= 0:
        shown = repr(value) if number is not None or not isinstance(value, int) else "an integer too large for a float"
        raise InputError(f"{path}: field {field_name!r} is {shown}, expected a positive number")
    return number
