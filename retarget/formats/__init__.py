"""Loaders for motion files people already have; each returns a SourceMotion in source conventions.

Format detection looks at the content as well as the extension, since motion_imitation files are
JSON saved as .txt. Keyframe YAML files are not a source format: retarget.keyframes reads them.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from . import csv_table, motion_imitation
from .source import SourceMotion, read_text

KEYFRAME_SUFFIXES = (".yaml", ".yml")
CSV_SUFFIXES = (".csv",)
JSON_SUFFIXES = (".json", ".txt")

__all__ = ["SourceMotion", "detect_format", "load_source", "csv_table", "motion_imitation"]


def detect_format(path: str | Path) -> str:
    """'keyframes' | 'motion_imitation' | 'csv', from the extension and the first bytes."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in KEYFRAME_SUFFIXES:
        return "keyframes"
    text = read_text(path)
    if motion_imitation.looks_like(text):
        return motion_imitation.FORMAT
    if suffix == ".json":
        # Named JSON but not an object: let the JSON loader say what is wrong with it.
        return motion_imitation.FORMAT
    if suffix in CSV_SUFFIXES or (suffix == ".txt" and "," in text.lstrip().split("\n", 1)[0]):
        return csv_table.FORMAT
    raise InputError(f"{path}: unrecognised motion file: expected motion_imitation JSON (.txt/.json), "
                     f"a CSV table (.csv) or keyframes (.yaml)")


def load_source(path: str | Path, fmt: str | None = None, fps: float | None = None) -> SourceMotion:
    """Read a source motion. `fps` is the CSV frame rate when the table has no time column."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == motion_imitation.FORMAT:
        if fps is not None:
            raise InputError(f"{path}: the source fps option applies to CSV files; this file's FrameDuration sets it")
        return motion_imitation.load(path)
    if fmt == csv_table.FORMAT:
        return csv_table.load(path, fps=fps)
    raise InputError(f"{path}: format {fmt!r} is not a source motion format")
