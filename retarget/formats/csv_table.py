"""CSV tables: one row per frame, root position, root quaternion and one column per joint.

With a header (the usual case) columns are found by name, in any order: the root columns by the
aliases below, every other column is a joint named as the source robot names it (the mapping file
says which names it knows), and an optional time column gives the frame rate. Without a header
(BeyondMimic style) a row is root x y z, quaternion x y z w, then the joints in the mapping's order.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import InputError
from .source import (Format, SourceMotion, check_finite, check_frame_count, check_quaternions, positive_number,
                     read_text)

FORMAT = "csv"
DEFAULT_FPS = 50.0
TIME_TOLERANCE = 0.01  # relative spread of frame intervals still called uniform

# field -> accepted header names (case-insensitive)
ROOT_COLUMNS = {
    "x": ("x", "root_x", "root_pos_x", "base_x", "base_pos_x", "pos_x"),
    "y": ("y", "root_y", "root_pos_y", "base_y", "base_pos_y", "pos_y"),
    "z": ("z", "root_z", "root_pos_z", "base_z", "base_pos_z", "pos_z"),
    "qx": ("qx", "root_qx", "root_quat_x", "base_qx", "base_quat_x", "quat_x"),
    "qy": ("qy", "root_qy", "root_quat_y", "base_qy", "base_quat_y", "quat_y"),
    "qz": ("qz", "root_qz", "root_quat_z", "base_qz", "base_quat_z", "quat_z"),
    "qw": ("qw", "root_qw", "root_quat_w", "base_qw", "base_quat_w", "quat_w"),
}
TIME_COLUMNS = ("time", "t", "timestamp", "time_s")
_ALIAS = {alias: name for name, aliases in ROOT_COLUMNS.items() for alias in aliases}
_ALIAS.update({alias: "time" for alias in TIME_COLUMNS})
_ROOT_ORDER = ("x", "y", "z", "qx", "qy", "qz", "qw")


def load(path: str | Path, fps: float | None = None) -> SourceMotion:
    """`fps` is the file's frame rate when it has no time column (default 50)."""
    path = Path(path)
    rows = [r for r in csv.reader(line for line in read_text(path).splitlines()
                                  if line.strip() and not line.lstrip().startswith("#"))]
    if not rows:
        raise InputError(f"{path}: file is empty")
    header = None if _numeric(rows[0]) else [c.strip() for c in rows[0]]
    body = rows[1:] if header is not None else rows
    if header is not None:
        columns, joint_names, joint_cols = _columns(path, header)
        labels = header
    else:
        width = len(rows[0])
        if width <= len(_ROOT_ORDER):
            raise InputError(f"{path}: frame 0: a row without a header has {width} columns; expected root x y z, "
                             "quaternion x y z w and the joint angles (or give a header row)")
        columns = {name: i for i, name in enumerate(_ROOT_ORDER)}
        joint_names, joint_cols = None, list(range(len(_ROOT_ORDER), width))
        labels = list(_ROOT_ORDER) + [f"joint {j}" for j in range(width - len(_ROOT_ORDER))]
    values = _table(path, body, len(labels), first_row=int(header is not None))
    check_finite(path, values, labels, "row")

    quat_xyzw = check_quaternions(path, values[:, [columns[k] for k in ("qx", "qy", "qz", "qw")]], "row")
    frame_rate = _frame_rate(path, values[:, columns["time"]] if "time" in columns else None, fps)
    return SourceMotion(
        path=path, format=FORMAT, fps=frame_rate,
        root_pos=values[:, [columns[k] for k in ("x", "y", "z")]],
        root_quat=quat_xyzw[:, [3, 0, 1, 2]],
        joint_pos=values[:, joint_cols], joint_names=joint_names, loop_mode="none",
        info={"header": header is not None, "time_column": "time" in columns},
    )


def _numeric(row: list[str]) -> bool:
    try:
        np.array(row, dtype=float)
    except ValueError:
        return False
    return True


def _columns(path: Path, header: list[str]) -> tuple[dict[str, int], tuple[str, ...], list[int]]:
    """Root/time field -> column index; the joint column names and indices in file order."""
    columns: dict[str, int] = {}
    joints: list[str] = []
    joint_cols: list[int] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            raise InputError(f"{path}: header column {i} has no name")
        if name in seen:
            raise InputError(f"{path}: header column {name!r} appears twice (columns {seen[name]} and {i})")
        seen[name] = i
        field = _ALIAS.get(name.lower())
        if field is None:
            joints.append(name)
            joint_cols.append(i)
        elif field in columns:
            raise InputError(f"{path}: header columns {header[columns[field]]!r} and {name!r} both give root {field}")
        else:
            columns[field] = i
    missing = [aliases[0] for field, aliases in ROOT_COLUMNS.items() if field not in columns]
    if missing:
        raise InputError(f"{path}: header has no column for {', '.join(missing)} "
                         f"(root position x y z and quaternion qx qy qz qw are required)")
    return columns, tuple(joints), joint_cols


def _table(path: Path, rows: list[list[str]], width: int, first_row: int) -> np.ndarray:
    check_frame_count(path, len(rows), "rows")
    widths = np.fromiter(map(len, rows), int, len(rows))
    bad = np.flatnonzero(widths != width)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{path}: frame {i} (line {i + first_row + 1}): row has {widths[i]} columns, "
                         f"the {'header' if first_row else 'first row'} has {width}")
    try:
        return np.array(rows, dtype=float)
    except ValueError:
        pass
    for i, row in enumerate(rows):  # error path only: name the first cell that is not a number
        for j, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                raise InputError(f"{path}: frame {i} (line {i + first_row + 1}): column {j} is {cell!r}, "
                                 "not a number") from None
    raise InputError(f"{path}: table is not numeric")


def _frame_rate(path: Path, time: np.ndarray | None, fps: float | None) -> float:
    if time is None:
        return positive_number(path, DEFAULT_FPS if fps is None else fps, "fps")
    dt = np.diff(time)
    if np.any(dt <= 0):
        i = int(np.argmax(dt <= 0)) + 1
        raise InputError(f"{path}: frame {i}: column 'time' is {time[i]}, not after the previous frame's {time[i - 1]}")
    step = float(np.median(dt))
    uneven = np.abs(dt - step) > TIME_TOLERANCE * step
    if uneven.any():
        i = int(np.argmax(uneven)) + 1
        raise InputError(f"{path}: frame {i}: column 'time' steps by {dt[i - 1]:.6g} s, the file's frame interval "
                         f"is {step:.6g} s; resample it to a fixed rate first")
    rate = (len(time) - 1) / (time[-1] - time[0])  # the whole span: less rounding than one step
    if fps is not None and abs(rate - fps) > TIME_TOLERANCE * fps:
        raise InputError(f"{path}: column 'time' gives {rate:.4g} frames/s but the fps option says {fps:g}")
    return rate


# A .csv name, or a .txt whose first line has commas (asked after the JSON formats). A CSV names its joints, most
# often our own robot's.
FORMAT_SPEC = Format(
    name=FORMAT, suffixes=(".csv", ".txt"), load=load, takes_fps=True, rank=20,
    claims=lambda suffix, text: suffix == ".csv" or (suffix == ".txt" and "," in text.lstrip().split("\n", 1)[0]),
    source_robots={FORMAT: "go2"},
)
