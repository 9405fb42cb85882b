"""motion_imitation's JSON motion text files (google-research/motion_imitation), and the AMP_for_hardware
variant of them.

    {"LoopMode": "Wrap" | "Clamp", "FrameDuration": s, "EnableCycleOffsetPosition": bool,
     "EnableCycleOffsetRotation": bool, "Frames": [[...], ...]}

A frame is root position xyz, root quaternion x y z w, then 12 joint angles FR, FL, RR, RL (hip, thigh,
calf each). AMP_for_hardware appends foot positions and velocities (61 numbers); only the first 19
describe the pose, the rest follow from it and are recomputed by the clip.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from .source import (Format, SourceMotion, check_frame_count, check_quaternions, positive_number,
                     read_text)

FORMAT = "motion_imitation"
POSE_WIDTH = 19
WIDTHS = {19: "motion_imitation", 61: "AMP_for_hardware"}
LOOP_MODES = {"wrap": "wrap", "clamp": "none"}
REQUIRED = ("LoopMode", "FrameDuration", "Frames")
OPTIONAL = ("EnableCycleOffsetPosition", "EnableCycleOffsetRotation", "MotionWeight")
_LEGS, _PARTS = ("FR", "FL", "RR", "RL"), ("hip", "thigh", "calf")
LABELS = (["root x", "root y", "root z", "root qx", "root qy", "root qz", "root qw"]
          + [f"{leg} {part}" for leg in _LEGS for part in _PARTS])


def looks_like(text: str) -> bool:
    """Content test for format detection: JSON, an object or an array (whatever the file extension);
    an array is refused by load() with a message saying what the file should hold."""
    return text.lstrip().startswith(("{", "["))


def load(path: str | Path, fps: float | None = None) -> SourceMotion:
    if fps is not None:
        raise InputError(f"{path}: the source fps option applies to CSV files; this file's FrameDuration sets it")
    path = Path(path)
    text = read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    except RecursionError as e:  # garbage such as "[[[[..." nests deeper than the parser's stack
        raise InputError(f"{path}: malformed JSON: lists or objects nested too deeply") from e
    except ValueError as e:  # an integer of more than 4300 digits (Python's int conversion limit)
        raise InputError(f"{path}: malformed JSON: {str(e).split(';')[0]}") from e
    if not isinstance(doc, dict):
        raise InputError(f"{path}: top level is a JSON {type(doc).__name__}, expected an object with 'Frames'")
    unknown = sorted(set(doc) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        # A key we do not know may change what the frame columns mean (e.g. a joint order): refuse it.
        raise InputError(f"{path}: unknown key {unknown[0]!r}; known keys: {', '.join(REQUIRED + OPTIONAL)}")
    for key in REQUIRED:
        if key not in doc:
            raise InputError(f"{path}: key {key!r} missing")

    loop = doc["LoopMode"]
    if not isinstance(loop, str) or loop.lower() not in LOOP_MODES:
        raise InputError(f"{path}: field 'LoopMode' is {loop!r}, expected 'Wrap' or 'Clamp'")
    duration = positive_number(path, doc["FrameDuration"], "FrameDuration")
    flags = {}
    for key in OPTIONAL[:2]:
        value = doc.get(key, False)
        if not isinstance(value, bool):
            raise InputError(f"{path}: field {key!r} is {value!r}, expected true or false")
        flags[key] = value

    values, width = _frames(path, doc["Frames"])
    pose = values[:, :POSE_WIDTH]
    bad = ~np.isfinite(pose)
    if bad.any():  # report the value as the file spells it (null, NaN, Infinity)
        frame, col = np.argwhere(bad)[0]
        raw = json.dumps(doc["Frames"][frame][col])
        raise InputError(f"{path}: frame {frame}: field 'Frames' column {col} ({_label(col)}) is {raw}, "
                         "not a finite number")
    quat_xyzw = check_quaternions(path, pose[:, 3:7], "Frames")
    return SourceMotion(
        path=path, format=FORMAT, fps=1.0 / duration, root_pos=pose[:, :3],
        root_quat=quat_xyzw[:, [3, 0, 1, 2]], joint_pos=pose[:, 7:], joint_names=None,
        loop_mode=LOOP_MODES[loop.lower()], cycle_offset_position=flags["EnableCycleOffsetPosition"],
        cycle_offset_rotation=flags["EnableCycleOffsetRotation"],
        info={"variant": WIDTHS[width], "frame_width": width, "frame_duration": duration},
    )


def _frames(path: Path, frames) -> tuple[np.ndarray, int]:
    """'Frames' as an (N, width) float array; the first malformed frame is named."""
    if not isinstance(frames, list):
        raise InputError(f"{path}: field 'Frames' is a {type(frames).__name__}, expected a list of frames")
    check_frame_count(path, len(frames), "Frames")
    widths = np.fromiter((len(f) if isinstance(f, list) else -1 for f in frames), int, len(frames))
    width = int(widths[0])
    bad = np.flatnonzero((widths != width) | (widths < 0))
    if width not in WIDTHS:
        bad = np.array([0])
    if bad.size:
        i = int(bad[0])
        got = "is not a list" if widths[i] < 0 else f"has {widths[i]} numbers"
        want = " or ".join(f"{w} ({name})" for w, name in WIDTHS.items())
        raise InputError(f"{path}: frame {i}: field 'Frames' {got}, expected {want}")
    # Only JSON numbers (and null, reported by the caller as not finite): np.array would silently
    # turn "0.5" into 0.5 and true into 1.0, and raise OverflowError on an integer like 1e400.
    if not {type(v) for frame in frames for v in frame} <= {int, float, type(None)}:
        for i, frame in enumerate(frames):  # error path only: find the frame holding a non-number
            for j, v in enumerate(frame):
                if v is not None and type(v) not in (int, float):
                    raise InputError(f"{path}: frame {i}: field 'Frames' column {j} ({_label(j)}) is "
                                     f"{v!r}, not a number")
    try:
        return np.array(frames, dtype=float), width
    except OverflowError:
        pass
    for i, frame in enumerate(frames):  # error path only: an integer too large for a float
        for j, v in enumerate(frame):
            if isinstance(v, int) and abs(v) > _MAX_FLOAT:
                raise InputError(f"{path}: frame {i}: field 'Frames' column {j} ({_label(j)}) is an integer "
                                 "too large for a float, not a finite number")
    raise InputError(f"{path}: field 'Frames' is not numeric")


_MAX_FLOAT = int(np.finfo(float).max)


def _label(column: int) -> str:
    return LABELS[column] if column < len(LABELS) else f"extra column {column}"


# Any JSON content (whatever the extension; motion_imitation saves it as .txt), or a .json name whose content is
# not JSON (load says what is wrong with it). Its own clips are Laikago's; AMP_for_hardware's 61-number frames A1's.
FORMAT_SPEC = Format(
    name=FORMAT, suffixes=(".txt", ".json"), load=load, rank=10,
    claims=lambda suffix, text: looks_like(text) or suffix == ".json",
    source_robots={FORMAT: "laikago", "AMP_for_hardware": "a1"},
)
