"""Loaders for motion files people already have; each returns a SourceMotion in source conventions.

A format is one module of this package that declares `FORMAT_SPEC = Format(...)` (retarget/formats/source.py):
its extensions, a content test, its loader and the robot its files are written for. Adding a format is adding
such a module; nothing else changes. Detection asks the formats in rank order, since motion_imitation files are
JSON saved as .txt. Keyframe YAML files are not a source format: retarget.keyframes reads them.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from ..errors import InputError
from .source import Format, SourceMotion, read_text

KEYFRAME_SUFFIXES = (".yaml", ".yml")


def _discover() -> dict[str, Format]:
    specs = []
    for info in pkgutil.iter_modules(__path__):
        spec = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FORMAT_SPEC", None)
        if spec is not None:
            specs.append(spec)
    return {s.name: s for s in sorted(specs, key=lambda s: (s.rank, s.name))}


FORMATS = _discover()
# Every extension a motion file may have (keyframes first)
MOTION_SUFFIXES = KEYFRAME_SUFFIXES + tuple(dict.fromkeys(x for f in FORMATS.values() for x in f.suffixes))

__all__ = ["FORMATS", "Format", "MOTION_SUFFIXES", "SourceMotion", "detect_format", "load_source",
           "source_robot_for"]


def detect_format(path: str | Path) -> str:
    """'keyframes' or the name of a source format, from the extension and the content."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in KEYFRAME_SUFFIXES:
        return "keyframes"
    text = read_text(path)
    for fmt in FORMATS.values():
        if fmt.claims(suffix, text):
            return fmt.name
    names = ", ".join(f"{f.name} ({'/'.join(f.suffixes)})" for f in FORMATS.values())
    raise InputError(f"{path}: unrecognised motion file: expected {names} or keyframes (.yaml)")


def load_source(path: str | Path, fmt: str | None = None, fps: float | None = None) -> SourceMotion:
    """Read a source motion. `fps`: the frame rate, for formats whose files may not give it."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(f"{path}: format {fmt!r} is not a source motion format")
    spec = FORMATS[fmt]
    return spec.load(path, fps=fps) if spec.takes_fps or fps is not None else spec.load(path)


def source_robot_for(src: SourceMotion) -> str:
    """The robot `src`'s file is written for when the caller does not say."""
    robots = FORMATS[src.format].source_robots
    return robots.get(src.info.get("variant"), robots[src.format])
