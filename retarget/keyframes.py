"""Keyframe motions: a short, hand-written YAML file -> a reference Clip.

Format ``go2-keyframes/1`` (motions/backflip.yaml is a worked example)::

    format: go2-keyframes/1            # required, exactly this
    name: backflip                     # optional
    description: free text             # optional
    loop: none                         # optional: none (default, hold the last frame) | wrap
    cycle_offset_position: false       # optional, with loop: wrap: each repetition starts where the last
                                       # ended (x, y), as motion_imitation's EnableCycleOffsetPosition
    cycle_offset_rotation: false       # optional, with loop: wrap: ... and turned by the clip's heading change
    keyframes:                         # at least 2; t starts at 0, strictly increasing
      - t: 0.0                         # s; keyframes at least one output frame apart
        contact: [FR, FL, RR, RL]      # required: feet on the ground from here to the next keyframe; [] = flight
        base: {pos: [x, y, z], rpy: [roll, pitch, yaw]}
                                       # m and degrees, world frame (z up, ground at z = 0). Attitude is
                                       # intrinsic yaw-pitch-roll; angles are unwrapped: pitch -360 is one
                                       # full backward turn (negative pitch = nose up)
        pose: stand                    # named pose of configs/robot/<robot>.yaml, for the free legs
        legs: {front: crouch, RL: tuck}  # named poses per leg pair (front, rear), then per leg
        joints: {FR_thigh_joint: 45.0} # degrees, by joint name, after the poses
        feet: {FR: [x, y, z]}          # foot link origin targets (m), solved by leg IK, after the joints
        feet_frame: body               # body (default, relative to the base link) | world

Base. ``base.pos`` and ``base.rpy`` are required on every keyframe except inside a flight. A flight
is a maximal run of keyframes with ``contact: []``: it takes off at its first keyframe and touches
down at the next keyframe with a contact (or ends at the last keyframe). In between, the base
follows the exact ballistic arc (g = 9.81 m/s^2) through the take-off and touch-down positions, so a
keyframe inside a flight must not give ``base.pos``; its ``base.rpy`` is optional. Elsewhere the
position is a cubic Hermite spline whose slopes are the ballistic velocities at flight ends (velocity
is continuous at take-off and touch-down) and monotone PCHIP slopes at the other keyframes. Angles
are Hermite splines too, with the flight's mean turn rate as the slope at both ends of a flight.

Legs. A foot on the ground at the previous keyframe is *planted*: it stays at its touch-down point,
so its leg's angles follow from the base pose by IK and the leg takes no pose, legs, joints or feet.
The other legs start from the previous keyframe's angles (the robot's default pose at the first
keyframe) and apply, in order, ``pose``, ``legs``, ``joints`` and ``feet``. A foot that touches down
at a keyframe (in ``contact`` there, not at the previous keyframe) is dropped vertically onto the
ground (foot origin z = foot radius; at most 5 cm) and solved by IK: that point is where it stays.
Joint angles are PCHIP-interpolated between keyframes (never past the keyframe values, hence never
past a limit), then retarget.contacts.plant_feet pins stance feet and lifts any foot below the ground.
Give keyframe times on the output frame grid (multiples of 0.02 s at 50 fps) so that contacts switch
exactly at keyframes.

The output rate is the caller's (``load_keyframes(path, robot, fps=50.0)``), not part of the file.
YAML anchors and merge keys may repeat values; duplicate keys are refused. Every problem in the file
is a one-line InputError naming the file, the keyframe (index and t) and the field.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy.interpolate import CubicHermiteSpline, PchipInterpolator
from scipy.spatial.transform import Rotation

from .clip import Clip, check_frame_count, sha256_of
from .contacts import plant_feet
from .errors import InputError
from .kinematics import body_to_world, feet_body, ik_world
from .robot import Robot

FORMAT = "go2-keyframes/1"
GRAVITY = 9.81
MAX_GROUND_SNAP = 0.05  # m: a touch-down foot further from the ground is an authoring mistake

_TOP_REQUIRED = {"format", "keyframes"}
_TOP_OPTIONAL = {"name", "description", "loop", "cycle_offset_position", "cycle_offset_rotation"}
_CYCLE_KEYS = ("cycle_offset_position", "cycle_offset_rotation")
_KEYFRAME_REQUIRED = {"t", "contact"}
_KEYFRAME_OPTIONAL = {"base", "pose", "legs", "joints", "feet", "feet_frame"}
_BASE_KEYS = {"pos", "rpy"}
_LOOPS = ("none", "wrap")
_FRAMES = ("body", "world")
_PAIRS = ("front", "rear")


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _Loc:
    """Where a value sits in the file, to name it in error messages."""

    file: str
    keyframe: int | None = None
    t: float | None = None

    def error(self, field_name: str, msg: str) -> InputError:
        where = self.file
        if self.keyframe is not None:
            where += f": keyframe {self.keyframe}" + ("" if self.t is None else f" (t={self.t:g})")
        return InputError(f"{where}: {field_name}: {msg}")


@dataclass
class _Keyframe:
    loc: _Loc
    t: float
    contact: np.ndarray                 # (4,) bool, robot leg order
    pos: np.ndarray | None = None       # (3,) m
    rpy: np.ndarray | None = None       # (3,) degrees, roll pitch yaw
    pose: str | None = None
    legs: list[tuple[str, str]] = field(default_factory=list)     # (pair or leg, pose), pairs first
    joints: dict[int, float] = field(default_factory=dict)        # joint index -> rad
    feet: dict[int, np.ndarray] = field(default_factory=dict)     # leg index -> (3,) m
    feet_frame: str = "body"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden on purpose
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: construct_mapping reports it
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path):
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from e
    if b"\x00" in raw:
        raise InputError(f"{path}: not a text file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not a UTF-8 text file (byte {e.start})") from e
    try:
        doc = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{path}: not valid YAML: {e.problem}{at}") from e
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from e
    if doc is None:
        raise InputError(f"{path}: empty file: expected a mapping with format: {FORMAT} and keyframes")
    return doc


def _describe(value) -> str:
    if isinstance(value, str):
        hint = ""
        try:
            float(value)
            hint = " (YAML reads a number like 1e-1 as text: write 1.0e-1)"
        except ValueError:
            pass
        return f"the string {value!r}{hint}"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def _mapping(value, loc: _Loc, name: str, required: set, optional: set) -> dict:
    """Check a mapping's keys; `name` is its field path ("" at the top of the file or a keyframe)."""
    if not isinstance(value, dict):
        raise loc.error(name or "top level", f"expected a mapping, got {_describe(value)}")
    prefix = f"{name}." if name else ""
    known = sorted(required | optional)
    for key in value:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise loc.error(f"{prefix}{key}", f"unknown key ({hint})")
    missing = sorted(required - set(value))
    if missing:
        raise loc.error(f"{prefix}{missing[0]}", "missing")
    return value


def _number(value, loc: _Loc, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise loc.error(name, f"expected a number, got {_describe(value)}")
    if not math.isfinite(value):
        raise loc.error(name, f"{value} is not a finite number")
    return float(value)


def _vector(value, loc: _Loc, name: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != 3:
        raise loc.error(name, f"expected a list of 3 numbers, got {_describe(value)}")
    return np.array([_number(v, loc, f"{name}[{i}]") for i, v in enumerate(value)])


def _choice(value, options, loc: _Loc, name: str, what: str) -> str:
    if not isinstance(value, str) or value not in options:
        close = difflib.get_close_matches(str(value), list(options), n=1) if isinstance(value, str) else []
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(options)}"
        raise loc.error(name, f"unknown {what} {value!r}: {hint}")
    return value


def _parse_top(doc, path: Path) -> tuple[dict, list]:
    loc = _Loc(str(path))
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a mapping with format: {FORMAT} and keyframes, got {_describe(doc)}")
    _mapping(doc, loc, "", _TOP_REQUIRED, _TOP_OPTIONAL)
    if doc["format"] != FORMAT:
        raise loc.error("format", f"is {doc['format']!r}, this reader reads {FORMAT!r}")
    meta = {"name": doc.get("name", path.stem), "loop": doc.get("loop", "none")}
    for key in ("name", "description"):
        if key in doc and not isinstance(doc[key], str):
            raise loc.error(key, f"expected text, got {_describe(doc[key])}")
    _choice(meta["loop"], _LOOPS, loc, "loop", "loop mode")
    for key in _CYCLE_KEYS:
        meta[key] = doc.get(key, False)
        if not isinstance(meta[key], bool):
            raise loc.error(key, f"expected true or false, got {_describe(meta[key])}")
        if meta[key] and meta["loop"] != "wrap":
            raise loc.error(key, "applies to repetitions: give loop: wrap as well")
    frames = doc["keyframes"]
    if not isinstance(frames, list):
        raise loc.error("keyframes", f"expected a list, got {_describe(frames)}")
    if len(frames) < 2:
        raise loc.error("keyframes", f"has {len(frames)} keyframe(s), a motion needs at least 2")
    return meta, frames


def _parse_keyframe(raw, index: int, robot: Robot, file: str) -> _Keyframe:
    loc = _Loc(file, index)
    if not isinstance(raw, dict):
        raise loc.error("keyframe", f"expected a mapping with t, contact, base ..., got {_describe(raw)}")
    if "t" in raw:  # first, so that every later message can give the time
        loc = _Loc(file, index, _number(raw["t"], loc, "t"))
    _mapping(raw, loc, "", _KEYFRAME_REQUIRED, _KEYFRAME_OPTIONAL)
    t = loc.t
    kf = _Keyframe(loc=loc, t=t, contact=_parse_contact(raw["contact"], robot, loc))
    if "base" in raw:
        base = _mapping(raw["base"], loc, "base", set(), _BASE_KEYS)
        if "pos" in base:
            kf.pos = _vector(base["pos"], loc, "base.pos")
        if "rpy" in base:
            kf.rpy = _vector(base["rpy"], loc, "base.rpy")
    if "pose" in raw:
        kf.pose = _choice(raw["pose"], robot.poses, loc, "pose", "pose")
    if "legs" in raw:
        kf.legs = _parse_legs(raw["legs"], robot, loc)
    if "joints" in raw:
        kf.joints = _parse_joints(raw["joints"], robot, loc)
    if "feet" in raw:
        feet = _mapping(raw["feet"], loc, "feet", set(), set(robot.legs))
        kf.feet = {robot.legs.index(leg): _vector(p, loc, f"feet.{leg}") for leg, p in feet.items()}
    if "feet_frame" in raw:
        if "feet" not in raw:
            raise loc.error("feet_frame", "given without feet")
        kf.feet_frame = _choice(raw["feet_frame"], _FRAMES, loc, "feet_frame", "frame")
    return kf


def _parse_contact(value, robot: Robot, loc: _Loc) -> np.ndarray:
    if not isinstance(value, list):
        raise loc.error("contact", f"expected a list of feet like [FR, FL, RR, RL] or [], got {_describe(value)}")
    contact = np.zeros(len(robot.legs), bool)
    for leg in value:
        i = robot.legs.index(_choice(leg, robot.legs, loc, "contact", "leg"))
        if contact[i]:
            raise loc.error("contact", f"lists {leg} twice")
        contact[i] = True
    return contact


def _parse_legs(value, robot: Robot, loc: _Loc) -> list[tuple[str, str]]:
    legs = _mapping(value, loc, "legs", set(), set(_PAIRS) | set(robot.legs))
    for name, pose in legs.items():
        _choice(pose, robot.poses, loc, f"legs.{name}", "pose")
    # Pairs before single legs, so that {front: crouch, FR: stand} means what it says.
    return sorted(legs.items(), key=lambda item: item[0] not in _PAIRS)


def _parse_joints(value, robot: Robot, loc: _Loc) -> dict[int, float]:
    joints = _mapping(value, loc, "joints", set(), set(robot.joint_names))
    out = {}
    for name, degrees in joints.items():
        j = robot.joint_names.index(name)
        rad = math.radians(_number(degrees, loc, f"joints.{name}"))
        lo, hi = robot.lower[j], robot.upper[j]
        if not lo - 1e-9 <= rad <= hi + 1e-9:
            raise loc.error(f"joints.{name}", f"{degrees} degrees is past the joint range "
                            f"[{math.degrees(lo):.1f}, {math.degrees(hi):.1f}] degrees")
        out[j] = rad
    return out


def _check_sequence(kfs: list[_Keyframe], fps: float) -> None:
    """File-wide rules: times, and which keyframes give the base pose."""
    if kfs[0].t != 0:
        raise kfs[0].loc.error("t", "the first keyframe must be at t = 0")
    for prev, kf in zip(kfs, kfs[1:]):
        if (kf.t - prev.t) * fps < 1 - 1e-9:
            raise kf.loc.error("t", f"must be at least one frame ({1 / fps:g} s at {fps:g} fps) "
                               f"after the previous keyframe (t={prev.t:g})")
    inside = _inside_flight(kfs)
    for kf, in_flight in zip(kfs, inside):
        if in_flight and kf.pos is not None:
            raise kf.loc.error("base.pos", "inside a flight the ballistic arc sets the position: remove it")
        if not in_flight and (kf.pos is None or kf.rpy is None):
            missing = "base.pos" if kf.pos is None else "base.rpy"
            raise kf.loc.error(missing, "missing (required except inside a flight)")


def _inside_flight(kfs: list[_Keyframe]) -> np.ndarray:
    """Keyframes strictly between a take-off and its touch-down."""
    air = np.array([not kf.contact.any() for kf in kfs])
    inside = np.zeros(len(kfs), bool)
    inside[1:-1] = air[:-2] & air[1:-1]
    return inside


# ---------------------------------------------------------------------------------------------
# Building


def _flights(kfs: list[_Keyframe]) -> list[tuple[int, int]]:
    """(take-off, touch-down) keyframe indices of each flight (touch-down = last keyframe if none)."""
    out = []
    k, last = 0, len(kfs) - 1
    while k < last:
        if kfs[k].contact.any():
            k += 1
            continue
        end = k
        while end < last and not kfs[end].contact.any():
            end += 1
        out.append((k, end))
        k = end
    return out


def _hermite(t: np.ndarray, y: np.ndarray, slopes: dict[int, np.ndarray]) -> CubicHermiteSpline:
    """C1 spline through (t, y): PCHIP slopes (no overshoot) except where `slopes` fixes them."""
    dydt = PchipInterpolator(t, y, axis=0).derivative()(t)
    for i, s in slopes.items():
        dydt[i] = s
    return CubicHermiteSpline(t, y, dydt, axis=0)


def _base_splines(kfs: list[_Keyframe], flights) -> tuple[CubicHermiteSpline, CubicHermiteSpline]:
    """Position and roll-pitch-yaw (degrees) of the base as functions of time."""
    times = np.array([kf.t for kf in kfs])
    pos_idx = [k for k, kf in enumerate(kfs) if kf.pos is not None]
    rpy_idx = [k for k, kf in enumerate(kfs) if kf.rpy is not None]
    pos_slopes, rpy_slopes = {}, {}
    for a, b in flights:
        duration = kfs[b].t - kfs[a].t
        # Ballistic: p(s) = p_a + v s - g s^2 / 2 reaches p_b at s = duration. A cubic Hermite
        # segment with these end slopes is that parabola exactly (it reproduces cubics).
        v = (kfs[b].pos - kfs[a].pos) / duration
        lift = np.array([0.0, 0.0, 0.5 * GRAVITY * duration])
        pos_slopes[pos_idx.index(a)] = v + lift
        pos_slopes[pos_idx.index(b)] = v - lift
        rate = (kfs[b].rpy - kfs[a].rpy) / duration
        rpy_slopes[rpy_idx.index(a)] = rate
        rpy_slopes[rpy_idx.index(b)] = rate
    pos = _hermite(times[pos_idx], np.array([kfs[k].pos for k in pos_idx]), pos_slopes)
    rpy = _hermite(times[rpy_idx], np.array([kfs[k].rpy for k in rpy_idx]), rpy_slopes)
    return pos, rpy


def _quat(rpy_deg: np.ndarray) -> np.ndarray:
    """(N, 3) roll, pitch, yaw in degrees -> (N, 4) wxyz, intrinsic yaw-pitch-roll."""
    return Rotation.from_euler("ZYX", rpy_deg[:, ::-1], degrees=True).as_quat(scalar_first=True)


def _leg_columns(legs) -> np.ndarray:
    return np.concatenate([np.arange(3 * i, 3 * i + 3) for i in legs])


def _posed(kf: _Keyframe, robot: Robot, q_prev: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """Joint angles of the free legs from pose, legs and joints; planted legs keep q_prev for now."""
    free = np.repeat(~planted, 3)
    q = q_prev.copy()
    why = "is planted (on the ground since an earlier keyframe): its angles follow from the base pose"
    if kf.pose is not None:
        if planted.all():
            raise kf.loc.error("pose", "every foot is planted (on the ground since an earlier keyframe): "
                               "the legs' angles follow from the base pose; remove it")
        q[free] = robot.pose(kf.pose)[free]
    for name, pose in kf.legs:
        legs = [i for i, leg in enumerate(robot.legs) if name in (leg, _PAIRS[leg[0] != "F"])]
        for i in legs:
            if planted[i]:
                raise kf.loc.error(f"legs.{name}", f"{robot.legs[i]} {why}")
        cols = _leg_columns(legs)
        q[cols] = robot.pose(pose)[cols]
    for j, angle in kf.joints.items():
        if planted[j // 3]:
            raise kf.loc.error(f"joints.{robot.joint_names[j]}", f"{robot.legs[j // 3]} {why}")
        q[j] = angle
    for i in kf.feet:
        if planted[i]:
            raise kf.loc.error(f"feet.{robot.legs[i]}", f"{robot.legs[i]} {why}")
    return q


def _keyframe_joints(kfs: list[_Keyframe], robot: Robot, root_pos: np.ndarray,
                     root_quat: np.ndarray) -> np.ndarray:
    """(K, 12) joint angles at the keyframes, every planted foot at its touch-down point."""
    anchors = np.zeros((len(robot.legs), 3))
    q = robot.default_pose
    out = np.empty((len(kfs), 12))
    for k, kf in enumerate(kfs):
        planted = kfs[k - 1].contact if k else np.zeros(len(robot.legs), bool)
        q = _posed(kf, robot, q, planted)
        pose_k = (root_pos[k:k + 1], root_quat[k:k + 1])
        feet = body_to_world(feet_body(robot, q)[None], *pose_k)[0]
        targeted = np.zeros(len(robot.legs), bool)
        for i, p in kf.feet.items():
            feet[i] = p if kf.feet_frame == "world" else body_to_world(p[None, None], *pose_k)[0, 0]
            targeted[i] = True
        touchdown = kf.contact & ~planted
        _snap_to_ground(kf, robot, feet, touchdown)
        anchors[touchdown] = feet[touchdown]
        feet[planted] = anchors[planted]
        solve = planted | touchdown | targeted
        if solve.any():
            ik = ik_world(robot, feet[None], *pose_k)
            _check_ik(kf, robot, ik, solve, planted, feet)
            q = np.where(np.repeat(solve, 3), ik.q[0], q)
        out[k] = q
    return out


def _snap_to_ground(kf: _Keyframe, robot: Robot, feet: np.ndarray, touchdown: np.ndarray) -> None:
    for i in np.flatnonzero(touchdown):
        gap = feet[i, 2] - robot.foot_radius
        if abs(gap) > MAX_GROUND_SNAP:
            leg = robot.legs[i]
            field_name = f"feet.{leg}" if i in kf.feet else "contact"
            side = "above" if gap > 0 else "below"
            raise kf.loc.error(field_name, f"{leg} touches down here but its foot is {abs(gap):.3f} m {side} "
                               f"the ground (at most {MAX_GROUND_SNAP} m is snapped): move the base or "
                               f"give feet.{leg}")
        feet[i, 2] = robot.foot_radius


def _check_ik(kf: _Keyframe, robot: Robot, ik, solve: np.ndarray, planted: np.ndarray, feet: np.ndarray) -> None:
    """Name the first leg IK could not place, by the field that put its foot there."""
    bad = solve & ~ik.ok[0]
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    leg = robot.legs[i]
    problem = "out of the leg's reach" if not ik.reachable[0, i] else "past a joint limit of the leg"
    target = np.round(feet[i], 3).tolist()
    if planted[i]:
        raise kf.loc.error("base", f"{leg} is planted at {target} (world), which this base pose puts {problem}")
    if i in kf.feet:
        raise kf.loc.error(f"feet.{leg}", f"target {np.round(kf.feet[i], 3).tolist()} ({kf.feet_frame} frame) "
                           f"is {problem}")
    raise kf.loc.error("contact", f"{leg} touches down at {target} (world), which is {problem}")


def _frame_contacts(kfs: list[_Keyframe], times: np.ndarray) -> np.ndarray:
    """(N, 4): a keyframe's contact holds from its time until the next keyframe."""
    key_times = np.array([kf.t for kf in kfs])
    k = np.searchsorted(key_times, times, side="right") - 1
    return np.array([kf.contact for kf in kfs])[k]


def _build(kfs: list[_Keyframe], robot: Robot, fps: float, where: str) -> Clip:
    flights = _flights(kfs)
    pos_spline, rpy_spline = _base_splines(kfs, flights)
    key_times = np.array([kf.t for kf in kfs])
    key_q = _keyframe_joints(kfs, robot, pos_spline(key_times), _quat(rpy_spline(key_times)))

    n = int(math.floor(key_times[-1] * fps + 1e-9)) + 1
    check_frame_count(n, where)
    times = np.arange(n) / fps
    root_pos = pos_spline(times)
    root_quat = _quat(rpy_spline(times))
    dof_pos = PchipInterpolator(key_times, key_q, axis=0)(times)
    contact = _frame_contacts(kfs, times)
    dof_pos, foot_pos = plant_feet(robot, root_pos, root_quat, dof_pos, contact, where=where)
    return Clip(
        fps=float(fps), root_pos=root_pos, root_quat=root_quat, dof_pos=dof_pos, foot_pos=foot_pos,
        foot_contact=contact, joint_names=robot.joint_names, foot_names=robot.foot_names, robot=robot.name,
    )


def load_keyframes(path: str | Path, robot: Robot, fps: float = 50.0) -> Clip:
    """Read a go2-keyframes/1 file strictly and build its reference clip at `fps`."""
    path = Path(path)
    fps = float(fps)
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"{path}: fps must be a positive number, got {fps!r}")
    meta, raw_frames = _parse_top(_read_yaml(path), path)
    kfs = [_parse_keyframe(raw, i, robot, str(path)) for i, raw in enumerate(raw_frames)]
    _check_sequence(kfs, fps)
    clip = _build(kfs, robot, fps, where=str(path))
    clip.loop_mode = meta["loop"]
    clip.cycle_offset_position, clip.cycle_offset_rotation = (meta[key] for key in _CYCLE_KEYS)
    clip.source_file = path.name
    clip.source_sha256 = sha256_of(path)
    clip.retarget_settings = {
        "format": "keyframes", "keyframe_format": FORMAT, "name": meta["name"], "fps": float(fps),
        "gravity": GRAVITY, "keyframes": len(kfs),
    }
    return clip
