"""The reference clip: the one HDF5 schema of the project, its writer, validating reader and sampler.

Layout (format version 1). N frames at a fixed rate; arrays are float64 unless noted.

    attributes
      format_version  int        1
      robot           str        robot name (configs/robot/<robot>.yaml)
      fps             float      frames per second
      duration        float      (N - 1) / fps, seconds
      loop_mode       str        "none" (hold the last frame) | "wrap"
      cycle_offset_position  bool  optional (false when absent). With "wrap": each repetition starts where
                                   the previous one ended (the root's x, y displacement over the clip, not z),
                                   motion_imitation's EnableCycleOffsetPosition
      cycle_offset_rotation  bool  optional (false when absent). With "wrap": each repetition is also turned
                                   by the clip's heading change (EnableCycleOffsetRotation); see cycle_delta()
      joint_names     str[12]    order of dof_pos / dof_vel columns
      foot_names      str[4]     order of foot_pos / foot_contact
      quat_convention str        "wxyz"
      source_file     str        file name the clip was made from
      source_sha256   str        its sha256
      retarget_settings  str     JSON of the settings used
      quality         str        JSON of the quality report (retarget/quality.py)
    datasets
      time          (N,)       s, 0 .. duration
      root_pos      (N, 3)     m, base link origin, world frame (z up, ground at z = 0)
      root_quat     (N, 4)     base attitude, world frame, w x y z
      root_lin_vel  (N, 3)     m/s, world frame
      root_ang_vel  (N, 3)     rad/s, world frame
      dof_pos       (N, 12)    rad
      dof_vel       (N, 12)    rad/s
      foot_pos      (N, 4, 3)  m, foot link origins, world frame
      foot_contact  (N, 4)     uint8 (1 = foot on the ground)
      phase         (N,)       time / duration, 0 .. 1
    optional datasets
      pd_target     (N, 12)    rad, open-loop PD position targets that produce the motion in the simulator
                               (physics refinement, `imitation refine`): target k is applied while the robot
                               moves from frame k to frame k + 1 (the last row repeats the one before). The
                               refinement settings are in `retarget_settings`, its report in `quality`.

Velocities are central differences of the stored positions (one-sided at the ends), so integrating
them reproduces the positions and the angular velocity is the quaternion's derivative; except in a
physics recording or refinement, which stores the simulator's own velocities (`retarget_settings`
says which), so that starting the simulator from any frame's state reproduces the next frames.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import h5py
import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from .errors import InputError
from .files import atomic_path

FORMAT_VERSION = 1
LOOP_MODES = ("none", "wrap")
MAX_FRAMES = 1_000_000
# rad a stored joint angle may be past the robot's limit: what a simulated joint passes through at its (soft) limit
# stop. Every stage checks clips against it: read_clip with a robot, and the refinement's feasibility verdict.
LIMIT_TOLERANCE = 0.1

# name -> trailing shape (None = joint/foot count from the attributes)
DATASETS = {
    "time": (),
    "root_pos": (3,),
    "root_quat": (4,),
    "root_lin_vel": (3,),
    "root_ang_vel": (3,),
    "dof_pos": ("J",),
    "dof_vel": ("J",),
    "foot_pos": ("F", 3),
    "foot_contact": ("F",),
    "phase": (),
}
OPTIONAL_DATASETS = {"pd_target": ("J",)}


@dataclass
class Clip:
    fps: float
    root_pos: np.ndarray
    root_quat: np.ndarray
    dof_pos: np.ndarray
    foot_pos: np.ndarray
    foot_contact: np.ndarray
    joint_names: tuple[str, ...]
    foot_names: tuple[str, ...]
    root_lin_vel: np.ndarray = None
    root_ang_vel: np.ndarray = None
    dof_vel: np.ndarray = None
    pd_target: np.ndarray | None = None
    robot: str = "go2"
    loop_mode: str = "none"
    cycle_offset_position: bool = False
    cycle_offset_rotation: bool = False
    source_file: str = ""
    source_sha256: str = ""
    retarget_settings: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)

    def __post_init__(self):
        self.root_quat = canonical_quat(np.asarray(self.root_quat, float))
        if self.root_lin_vel is None:
            self.root_lin_vel = finite_diff(self.root_pos, self.fps)
        if self.dof_vel is None:
            self.dof_vel = finite_diff(self.dof_pos, self.fps)
        if self.root_ang_vel is None:
            self.root_ang_vel = angular_velocity(self.root_quat, self.fps)
        self.foot_contact = np.asarray(self.foot_contact).astype(np.uint8)
        if self.pd_target is not None:
            self.pd_target = np.asarray(self.pd_target, float)

    @property
    def num_frames(self) -> int:
        return len(self.root_pos)

    @property
    def duration(self) -> float:
        return (self.num_frames - 1) / self.fps

    @property
    def time(self) -> np.ndarray:
        return np.arange(self.num_frames) / self.fps

    @property
    def phase(self) -> np.ndarray:
        return self.time / max(self.duration, 1e-12)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every dataset the clip holds: the required ones, then the optional ones it has."""
        out = {name: getattr(self, name) for name in DATASETS}
        out.update({name: getattr(self, name) for name in OPTIONAL_DATASETS if getattr(self, name) is not None})
        return out

    def sample(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """Reference state at arbitrary times (any shape), vectorized.

        Linear interpolation between frames, spherical for the attitude; contacts take the
        nearest frame. Times past the end hold the last frame ("none") or wrap ("wrap").
        """
        t = np.asarray(t, float)
        flat = t.reshape(-1)
        if self.loop_mode == "wrap":
            # Wrap only times outside the clip: t = duration is the last frame, not frame 0
            # (else resample() of a wrapping clip replaced its last frame with its first).
            outside = (flat < 0) | (flat > self.duration)
            flat = np.where(outside, np.mod(flat, self.duration), flat)
        flat = np.clip(flat, 0.0, self.duration)
        x = flat * self.fps
        i0 = np.minimum(np.floor(x).astype(int), self.num_frames - 2)
        w = x - i0
        out = {}
        for name in ("root_pos", "root_lin_vel", "root_ang_vel", "dof_pos", "dof_vel", "foot_pos", "pd_target"):
            a = getattr(self, name)
            if a is None:
                continue
            wb = w.reshape(-1, *([1] * (a.ndim - 1)))
            out[name] = (1 - wb) * a[i0] + wb * a[i0 + 1]
        rots = Rotation.from_quat(self.root_quat, scalar_first=True)
        out["root_quat"] = canonical_quat(Slerp(self.time, rots)(flat).as_quat(scalar_first=True))
        out["foot_contact"] = self.foot_contact[np.rint(x).astype(int)]
        out["time"] = flat
        out["phase"] = flat / self.duration
        return {k: v.reshape(*t.shape, *v.shape[1:]) for k, v in out.items()}

    def resample(self, fps: float) -> "Clip":
        """The same motion at another frame rate (the env resamples to its control rate once).

        A wrapping clip keeps one whole cycle: its frames span exactly [0, duration], the cycle stretched or
        squeezed (by less than half a frame) to a whole number of frames, so that the last frame is still the
        cycle's end and the cycle offsets (displacement, heading change) stay those of the source."""
        n = int(round(self.duration * fps)) + 1
        check_frame_count(n, f"resampling to {fps:g} fps")
        if self.loop_mode == "wrap":
            n = max(n, 2)
            s = self.sample(np.linspace(0.0, self.duration, n))
        else:
            s = self.sample(np.arange(n) / fps)
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        if np.isclose(fps, self.fps) and n == self.num_frames:
            return Clip(**kw)  # the same frames: keep the stored velocities (a recording's are the simulator's)
        kw.update(fps=float(fps), root_lin_vel=None, root_ang_vel=None, dof_vel=None,
                  **{k: s[k] for k in ("root_pos", "root_quat", "dof_pos", "foot_pos", "foot_contact")})
        if self.pd_target is not None:
            kw["pd_target"] = s["pd_target"]
        return Clip(**kw)


def canonical_quat(q: np.ndarray) -> np.ndarray:
    """Unit quaternions with w >= 0 (q and -q are the same attitude)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def cycle_delta(root_pos: np.ndarray, root_quat: np.ndarray) -> tuple[np.ndarray, float]:
    """One cycle's root displacement (x, y, 0) in m and heading change in rad (last frame against the
    first), as motion_imitation offsets each repetition of a wrapping clip by them."""
    delta = np.asarray(root_pos[-1], float) - root_pos[0]
    delta[2] = 0.0
    first, last = Rotation.from_quat(np.asarray(root_quat)[[0, -1]], scalar_first=True)
    forward = (last * first.inv()).apply([1.0, 0.0, 0.0])
    return delta, float(np.arctan2(forward[1], forward[0]))


def finite_diff(x: np.ndarray, fps: float) -> np.ndarray:
    return np.gradient(np.asarray(x, float), 1.0 / fps, axis=0)


def angular_velocity(quat_wxyz: np.ndarray, fps: float) -> np.ndarray:
    """World-frame angular velocity from a quaternion sequence by central rotation differences."""
    r = Rotation.from_quat(quat_wxyz, scalar_first=True)
    n = len(quat_wxyz)
    if n < 2:
        return np.zeros((n, 3))
    fwd = (r[1:] * r[:-1].inv()).as_rotvec() * fps  # (n-1, 3) between frames i and i+1
    out = np.empty((n, 3))
    out[0], out[-1] = fwd[0], fwd[-1]
    out[1:-1] = (r[2:] * r[:-2].inv()).as_rotvec() * (fps / 2)
    return out


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_frame_count(n: int, where: str) -> None:
    """Refuse absurd lengths (a typo like t: 100000 or --fps 1e9) before allocating them."""
    if n > MAX_FRAMES:
        raise InputError(f"{where}: {n} frames is more than {MAX_FRAMES}: check the times and the fps")


def write_clip(clip: Clip, path: str | Path) -> None:
    """Write atomically: a crash or a bad value never leaves a partial clip at `path`."""
    validate(clip, str(path))
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["robot"] = clip.robot
        f.attrs["fps"] = float(clip.fps)
        f.attrs["duration"] = float(clip.duration)
        f.attrs["loop_mode"] = clip.loop_mode
        f.attrs["cycle_offset_position"] = bool(clip.cycle_offset_position)
        f.attrs["cycle_offset_rotation"] = bool(clip.cycle_offset_rotation)
        f.attrs["joint_names"] = list(clip.joint_names)
        f.attrs["foot_names"] = list(clip.foot_names)
        f.attrs["quat_convention"] = "wxyz"
        f.attrs["source_file"] = clip.source_file
        f.attrs["source_sha256"] = clip.source_sha256
        f.attrs["retarget_settings"] = json.dumps(clip.retarget_settings)
        f.attrs["quality"] = json.dumps(clip.quality)
        for name, a in clip.arrays().items():
            f.create_dataset(name, data=a, dtype=np.uint8 if name == "foot_contact" else np.float64)


def read_clip(path: str | Path, robot=None) -> Clip:
    """Read and validate a clip; every problem is an InputError naming the file and field.

    With `robot` (a retarget.robot.Robot), joint and foot names must match its canonical order.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable HDF5 clip ({e})") from e
    try:
        with f:
            clip = _read_open_clip(path, f)
    except (OSError, KeyError, RuntimeError) as e:  # HDF5 structures damaged past the superblock
        msg = e.args[0] if e.args else e
        raise InputError(f"{path}: damaged HDF5 file ({' '.join(str(msg).split())})") from e
    if robot is not None:
        check_robot(clip, robot, str(path))
    return clip


def _read_open_clip(path: Path, f: h5py.File) -> Clip:
    attrs = dict(f.attrs)
    version = attrs.get("format_version")
    if version is None:
        raise InputError(f"{path}: attribute 'format_version' missing: not a clip of this project")
    version = _num_attr(path, attrs, "format_version", integer=True)
    if version != FORMAT_VERSION:
        raise InputError(f"{path}: attribute 'format_version' is {version}, this reader reads {FORMAT_VERSION}")
    for key in ("robot", "fps", "loop_mode", "joint_names", "foot_names", "quat_convention"):
        if key not in attrs:
            raise InputError(f"{path}: attribute {key!r} missing")
    if _str_attr(path, attrs, "quat_convention") != "wxyz":
        raise InputError(f"{path}: attribute 'quat_convention' is {attrs['quat_convention']!r}, expected 'wxyz'")
    loop_mode = _str_attr(path, attrs, "loop_mode")
    if loop_mode not in LOOP_MODES:
        raise InputError(f"{path}: attribute 'loop_mode' is {loop_mode!r}, expected one of {LOOP_MODES}")
    fps = _num_attr(path, attrs, "fps")
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(f"{path}: attribute 'fps' is {fps}, expected a positive number")
    joint_names = _names_attr(path, attrs, "joint_names")
    foot_names = _names_attr(path, attrs, "foot_names")
    sizes = {"J": len(joint_names), "F": len(foot_names)}
    data = {}
    n = None
    for name, tail in DATASETS.items():
        if name not in f:
            raise InputError(f"{path}: dataset {name!r} missing")
        ds = f[name]
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
            raise InputError(f"{path}: dataset {name!r} is not numeric")
        a = ds[()]
        want = tuple(sizes.get(d, d) for d in tail)
        if a.ndim == 0:
            raise InputError(f"{path}: dataset {name!r} is a single number, expected one row per frame")
        n = len(a) if n is None else n
        if a.shape != (n, *want):
            raise InputError(f"{path}: dataset {name!r} has shape {a.shape}, expected {(n, *want)}")
        if not np.all(np.isfinite(a)):
            i = int(np.argmax(~np.isfinite(a.reshape(n, -1)).all(axis=1)))
            raise InputError(f"{path}: dataset {name!r} has a non-finite value at frame {i}")
        data[name] = a
    for name, tail in OPTIONAL_DATASETS.items():
        if name not in f:
            continue
        ds = f[name]
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
            raise InputError(f"{path}: dataset {name!r} is not numeric")
        a = ds[()]
        want = (n, *(sizes.get(d, d) for d in tail))
        if a.shape != want:
            raise InputError(f"{path}: dataset {name!r} has shape {a.shape}, expected {want}")
        if not np.all(np.isfinite(a)):
            i = int(np.argmax(~np.isfinite(a.reshape(n, -1)).all(axis=1)))
            raise InputError(f"{path}: dataset {name!r} has a non-finite value at frame {i}")
        data[name] = a
    if n < 2:
        raise InputError(f"{path}: dataset 'time' has {n} frames, a clip needs at least 2")
    if not np.allclose(data["time"], np.arange(n) / fps, atol=1e-6):
        raise InputError(f"{path}: dataset 'time' does not match attribute 'fps' = {fps}")
    norms = np.linalg.norm(data["root_quat"], axis=-1)
    if np.any(np.abs(norms - 1) > 1e-3):
        i = int(np.argmax(np.abs(norms - 1)))
        raise InputError(f"{path}: dataset 'root_quat' is not unit length at frame {i} (norm {norms[i]:.4f})")
    not_binary = (data["foot_contact"] != 0) & (data["foot_contact"] != 1)
    if not_binary.any():
        i = int(np.argmax(not_binary.any(axis=1)))
        raise InputError(f"{path}: dataset 'foot_contact' is not 0 or 1 at frame {i}")
    return Clip(
        fps=fps, root_pos=data["root_pos"], root_quat=data["root_quat"], dof_pos=data["dof_pos"],
        foot_pos=data["foot_pos"], foot_contact=data["foot_contact"], joint_names=joint_names,
        foot_names=foot_names, root_lin_vel=data["root_lin_vel"], root_ang_vel=data["root_ang_vel"],
        dof_vel=data["dof_vel"], pd_target=data.get("pd_target"), robot=_str_attr(path, attrs, "robot"), loop_mode=loop_mode,
        cycle_offset_position=_bool_attr(path, attrs, "cycle_offset_position"),
        cycle_offset_rotation=_bool_attr(path, attrs, "cycle_offset_rotation"),
        source_file=_str_attr(path, attrs, "source_file", ""), source_sha256=_str_attr(path, attrs, "source_sha256", ""),
        retarget_settings=_json_attr(path, attrs, "retarget_settings"), quality=_json_attr(path, attrs, "quality"),
    )


def _decoded(value):
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, np.bytes_)) else value


def _str_attr(path, attrs, key, default=None) -> str:
    value = _decoded(attrs.get(key, default))
    if not isinstance(value, str):
        raise InputError(f"{path}: attribute {key!r} is {value!r}, expected a string")
    return str(value)


def _bool_attr(path, attrs, key) -> bool:
    value = attrs.get(key, False)  # clips written before the attribute existed do not offset cycles
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{path}: attribute {key!r} is {value!r}, expected true or false")
    return bool(value)


def _num_attr(path, attrs, key, integer=False):
    value = attrs[key]
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if ok and integer:
        ok = float(value) == int(value) if np.isfinite(value) else False
    if not ok:
        raise InputError(f"{path}: attribute {key!r} is {value!r}, expected {'an integer' if integer else 'a number'}")
    return int(value) if integer else float(value)


def _names_attr(path, attrs, key) -> tuple[str, ...]:
    value = attrs[key]
    names = [_decoded(v) for v in value] if isinstance(value, np.ndarray) and value.ndim == 1 else None
    if names is None or not all(isinstance(v, str) for v in names):
        raise InputError(f"{path}: attribute {key!r} is {value!r}, expected a list of names")
    return tuple(str(v) for v in names)


def _json_attr(path, attrs, key) -> dict:
    try:
        value = json.loads(_str_attr(path, attrs, key, "{}"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: attribute {key!r} is not valid JSON ({e})") from e
    if not isinstance(value, dict):
        raise InputError(f"{path}: attribute {key!r} is a JSON {type(value).__name__}, expected an object")
    return value


def check_robot(clip: Clip, robot, where: str) -> None:
    if clip.robot != robot.name:
        raise InputError(f"{where}: attribute 'robot' is {clip.robot!r}, expected {robot.name!r}")
    if tuple(clip.joint_names) != tuple(robot.joint_names):
        raise InputError(f"{where}: attribute 'joint_names' {list(clip.joint_names)} differs from the robot's {list(robot.joint_names)}")
    if tuple(clip.foot_names) != tuple(robot.foot_names):
        raise InputError(f"{where}: attribute 'foot_names' {list(clip.foot_names)} differs from the robot's {list(robot.foot_names)}")
    worst = limit_excess(clip, robot)
    if worst["excess_rad"] > LIMIT_TOLERANCE:
        frame, name = worst["frame"], worst["joint"]
        j = robot.joint_names.index(name)
        raise InputError(f"{where}: dataset 'dof_pos' at frame {frame}: {name} = {clip.dof_pos[frame, j]:.4g} rad is "
                         f"{worst['excess_rad']:.2f} rad outside [{robot.lower[j]:.3f}, {robot.upper[j]:.3f}] (tolerance "
                         f"{LIMIT_TOLERANCE} rad); {made_by(clip)}")


def limit_excess(clip: Clip, robot) -> dict:
    """The largest joint-limit excess of a clip: {'excess_rad' (>= 0), 'frame', 'joint', 'time_s'}."""
    excess = np.maximum(robot.lower - clip.dof_pos, clip.dof_pos - robot.upper)
    frame, j = np.unravel_index(int(np.argmax(excess)), excess.shape)
    return {"excess_rad": float(max(0.0, excess[frame, j])), "frame": int(frame), "joint": robot.joint_names[j],
            "time_s": float(frame / clip.fps)}


def made_by(clip: Clip) -> str:
    """Which stage wrote the clip, and what to do about a clip it should not have written."""
    settings = clip.retarget_settings or {}
    if "refine" in settings:
        return ("written by imitation refine from " + (clip.source_file or "its source") + ", whose refinement "
                "passed the joint limit: refine it again (the refinement now refuses such results)")
    if "recording" in str(settings.get("method", "")) or settings.get("recorded"):
        return "written by imitation record: the replay passed the joint limit"
    return (f"made from {clip.source_file or 'its source'}: the source pose is outside the Go2's joint range "
            "(angles in degrees, or another robot's joint convention?)")


def validate(clip: Clip, where: str) -> None:
    """Refuse to write non-finite or inconsistent arrays."""
    n = clip.num_frames
    if n < 2:
        raise InputError(f"{where}: a clip needs at least 2 frames, got {n}")
    if clip.loop_mode not in LOOP_MODES:
        raise InputError(f"{where}: loop_mode {clip.loop_mode!r} is not one of {LOOP_MODES}")
    for key in ("cycle_offset_position", "cycle_offset_rotation"):
        if not isinstance(getattr(clip, key), (bool, np.bool_)):
            raise InputError(f"{where}: {key} is {getattr(clip, key)!r}, expected true or false")
        if getattr(clip, key) and clip.loop_mode != "wrap":
            raise InputError(f"{where}: {key} is true but loop_mode is {clip.loop_mode!r}: "
                             "offsets apply to repetitions")
    sizes = {"J": len(clip.joint_names), "F": len(clip.foot_names)}
    for name, a in clip.arrays().items():
        want = (n, *(sizes.get(d, d) for d in {**DATASETS, **OPTIONAL_DATASETS}[name]))
        if np.shape(a) != want:
            raise InputError(f"{where}: field {name!r} has shape {np.shape(a)}, expected {want}")
        bad = ~np.isfinite(np.asarray(a, float).reshape(n, -1)).all(axis=1)
        if bad.any():
            raise InputError(f"{where}: field {name!r} is not finite at frame {int(np.argmax(bad))}")
