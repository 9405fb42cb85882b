"""Import a motion file someone already has into a reference clip for the robot.

    clip = load_motion("dog_pace.txt", robot, source_robot="laikago", fps=50)

Steps: read the file into a SourceMotion (retarget/formats), convert it with the source robot's
mapping (retarget/mapping.py: joint order, signs and zeros, base frame, scale), check it is sane for
this robot (upright at the start, heights in metres, angles in radians), turn the angles into the
robot's by joint mapping or by scaled foot positions and leg IK (retarget/methods.py), clamping what
is past a joint limit, put the feet on the ground, resample, then detect foot contacts and plant
stance feet by IK (retarget/contacts.py). What was clamped is recorded in the clip's
retarget_settings["clamping"] (source frame numbers), which the quality report shows.

Clamping is for motions made for another robot, which pass the Go2's limits now and then; an angle
more than `max_clamp` (1 rad) past a limit is refused as a wrong file instead: a fully straight Go2
knee is 0.84 rad past the calf limit, the most a leg motion can ask, while angles in degrees read as
radians are several radians past. Every problem with the input is an InputError naming the file,
the frame and the field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from .clip import Clip, sha256_of
from .contacts import detect_contacts, plant_feet_clamped
from .errors import InputError
from .formats import SourceMotion, detect_format, load_source, source_robot_for
from .kinematics import feet_world
from .mapping import SourceMapping, available_mappings, load_mapping
from .methods import METHODS, MISS_REPORTED, by_feet, by_joints, clamp_summary
from .robot import Robot, load_robot

HEIGHT_PLAUSIBLE = (0.2, 5.0)  # frame-0 root height / the source's standing height; else units are off


@dataclass(frozen=True)
class ImportSettings:
    contact_height: float = 0.04       # m: a foot centre below this (Go2 feet rest at 0.022) ...
    contact_speed: float = 0.3         # m/s: ... and slower than this is on the ground
    method: str = "auto"               # joints | feet | auto: how angles carry over (retarget/methods.py)
    max_clamp: float = 1.0             # rad: angles past a limit are clamped up to this; further is an error
    upright_tolerance_deg: float = 30.0  # frame 0 tilt beyond this means the wrong source robot
    ground_align: bool = True          # shift the root so the feet stand on z = 0
    plant_feet: bool = True            # pin stance feet by IK and lift feet out of the ground
    csv_fps: float | None = None       # CSV without a time column: its frame rate (default 50)

    @classmethod
    def from_kwargs(cls, kwargs: dict, where: str) -> "ImportSettings":
        known = {f.name: f for f in fields(cls)}
        for key, value in kwargs.items():
            if key not in known:
                raise InputError(f"{where}: unknown import setting {key!r}; known: {', '.join(known)}")
            if key in ("ground_align", "plant_feet"):
                if not isinstance(value, bool):
                    raise InputError(f"{where}: import setting {key!r} is {value!r}, expected true or false")
            elif key == "method":
                if value not in METHODS:
                    raise InputError(f"{where}: import setting 'method' is {value!r}, expected one of "
                                     f"{', '.join(METHODS)}")
            elif not (key == "csv_fps" and value is None):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
                    raise InputError(f"{where}: import setting {key!r} is {value!r}, expected a positive number")
        return cls(**kwargs)


def load_motion(path: str | Path, robot: Robot | None = None, source_robot: str | Path | None = None,
                fps: float | None = None, **settings) -> Clip:
    """Read any supported motion file as a clip for `robot` at `fps` frames/s (None: the file's rate).

    `source_robot` names a mapping in configs/mappings (or is a path to one); None picks the usual
    robot of the file's format. `settings` are ImportSettings fields. Keyframe YAML files go to
    retarget.keyframes.load_keyframes, which takes only the robot and the frame rate.
    """
    path = Path(path)
    robot = robot or load_robot()
    where = str(path)
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not np.isfinite(fps) or fps <= 0):
        raise InputError(f"{where}: output fps is {fps!r}, expected a positive number")
    opts = ImportSettings.from_kwargs(settings, where)
    fmt = detect_format(path)
    if fmt == "keyframes":
        if source_robot not in (None, robot.name):
            raise InputError(f"{where}: keyframe files are written for {robot.name!r}; --source-robot does not apply")
        if opts.method not in ("joints", "auto"):
            raise InputError(f"{where}: keyframe files give the {robot.name}'s own joints and feet; "
                             f"--method {opts.method} does not apply")
        from .keyframes import load_keyframes  # a sibling module; imported here so formats work without it
        return load_keyframes(path, robot, fps=fps) if fps is not None else load_keyframes(path, robot)

    src = load_source(path, fmt, fps=opts.csv_fps)
    assumed = source_robot is None
    if assumed:
        # the format's robot (retarget/formats); the upright check catches a wrong guess and names the right mapping
        source_robot = source_robot_for(src)
    mapping = load_mapping(source_robot, robot, where)
    if opts.method != "auto":
        return retarget(src, mapping, robot, fps=fps, settings=opts, assumed_source=assumed)
    return _auto_method(src, mapping, robot, fps, opts, assumed)


def _auto_method(src: SourceMotion, mapping: SourceMapping, robot: Robot, fps, opts, assumed: bool) -> Clip:
    """The source's joint angles as they are, unless that leaves every foot off the ground while the base does not
    fly (legs of other proportions): then its foot paths by IK, if those keep a foot down."""
    from .quality import floating_feet, quality_report

    clip = retarget(src, mapping, robot, fps=fps, settings=replace(opts, method="joints"), assumed_source=assumed)
    why = floating_feet(quality_report(clip, robot))
    if why is None:
        clip.retarget_settings["method_chosen"] = "joints (auto)"
        return clip
    alt = retarget(src, mapping, robot, fps=fps, settings=replace(opts, method="feet"), assumed_source=assumed)
    if floating_feet(quality_report(alt, robot)) is not None:
        clip.retarget_settings["method_chosen"] = f"joints (auto; feet floats too): {why}"
        return clip
    alt.retarget_settings["method_chosen"] = f"feet (auto): by joints, {why}"
    return alt


def retarget_file(source: str | Path, output: str | Path, robot: Robot | None = None, *,
                  source_robot: str | Path | None = None, fps: float | None = None, method: str = "auto",
                  plot: str | Path | None = None, animate: str | Path | None = None, title: str | None = None) -> Clip:
    """Stage 1 for one file: `source` retargeted (load_motion), its quality report attached, written to `output`
    (HDF5); optionally a plot and a stick-figure animation. Prints the quality report."""
    from .clip import write_clip
    from .quality import format_report, quality_report

    robot = robot or load_robot()
    clip = load_motion(source, robot, source_robot=source_robot, fps=fps, method=method)
    clip.quality = quality_report(clip, robot)
    write_clip(clip, output)
    print(format_report(clip.quality, title=title or f"{source} -> {output}"), end="")
    if plot or animate:
        from .plot import animate_clip, plot_clip  # matplotlib only when asked for
    if plot:
        print(f"plot: {plot_clip(clip, robot, plot, title=Path(source).name)}")
    if animate:
        print(f"animation: {animate_clip(clip, robot, animate)}")
    return clip


def retarget(src: SourceMotion, mapping: SourceMapping, robot: Robot, fps: float | None = None,
             settings: ImportSettings | None = None, assumed_source: bool = False) -> Clip:
    """SourceMotion + mapping -> clip for `robot` (the steps in the module docstring)."""
    opts = settings or ImportSettings()
    where = str(src.path)
    columns = _joint_columns(src, mapping, where)
    quat = mapping.root_to_robot(robot, src.root_pos, src.root_quat)[1]
    _check_upright(src, mapping, robot, quat[0], opts, assumed_source)
    _check_height(src, mapping, where)
    mapped = mapping.joints_to_robot(src.joint_pos[:, columns])
    _check_units(src, mapping, robot, mapped, columns, opts.max_clamp)
    if opts.method == "feet":
        result = by_feet(robot, mapping, src.root_pos, quat, mapped, where)
    else:
        result = by_joints(robot, mapping, src.root_pos, mapped)
    pos, q, clamping = result.root_pos, result.q, clamp_summary(robot, result)

    shift = 0.0
    if opts.ground_align:
        # A robust "lowest foot on the ground": the 5th percentile over frames of the lowest foot, so
        # a flight phase or one bad frame does not decide the ground for the whole clip.
        lowest = feet_world(robot, pos, quat, q)[..., 2].min(axis=1)
        shift = float(robot.foot_radius - np.percentile(lowest, 5))
        pos = pos + [0.0, 0.0, shift]

    clip = Clip(fps=src.fps, root_pos=pos, root_quat=quat, dof_pos=q, foot_pos=feet_world(robot, pos, quat, q),
                foot_contact=np.zeros((len(q), len(robot.foot_names))), joint_names=robot.joint_names,
                foot_names=robot.foot_names, robot=robot.name)  # loop "none": resample within the clip only
    if fps is not None and abs(fps - src.fps) > 1e-9 * fps:
        clip = clip.resample(fps)
    contact = detect_contacts(clip.foot_pos, clip.fps, opts.contact_height, opts.contact_speed)
    q, feet = clip.dof_pos, clip.foot_pos
    if opts.plant_feet:
        # A stance leg whose source pose is past a limit cannot hold its foot exactly: clamped too
        # (counted in the clip's frames, after resampling).
        q, feet, miss = plant_feet_clamped(robot, clip.root_pos, clip.root_quat, q, contact)
        clamping["planted_foot_missed_frames"] = int((miss > MISS_REPORTED).any(axis=1).sum())
        clamping["max_planted_foot_miss_m"] = float(miss.max())

    record = {
        "format": src.format, "source_robot": mapping.name, "source_robot_assumed": assumed_source,
        "mapping_file": mapping.path.name, "scale": mapping.scale(robot), "source_fps": src.fps,
        "fps": clip.fps, "ground_shift": shift, "clamping": clamping, **asdict(opts), **src.info,
        "source_cycle_offset_position": src.cycle_offset_position,
        "source_cycle_offset_rotation": src.cycle_offset_rotation,
    }
    return Clip(
        fps=clip.fps, root_pos=clip.root_pos, root_quat=clip.root_quat, dof_pos=q, foot_pos=feet,
        foot_contact=contact, joint_names=robot.joint_names, foot_names=robot.foot_names, robot=robot.name,
        # The cycle offsets apply to repetitions; a clip that holds its last frame has none.
        loop_mode=src.loop_mode, cycle_offset_position=src.cycle_offset_position and src.loop_mode == "wrap",
        cycle_offset_rotation=src.cycle_offset_rotation and src.loop_mode == "wrap", source_file=src.path.name,
        source_sha256=sha256_of(src.path), retarget_settings=_jsonable(record),
    )


def _joint_columns(src: SourceMotion, mapping: SourceMapping, where: str) -> np.ndarray:
    n = len(mapping.source_names)
    if src.joint_names is None and src.joint_pos.shape[1] != n:
        raise InputError(f"{where}: frame 0: {src.joint_pos.shape[1]} joint columns, source robot "
                         f"{mapping.name!r} has {n} joints")
    return mapping.joint_columns(src.joint_names, where)


def _tilt_deg(quat_wxyz: np.ndarray) -> float:
    up = Rotation.from_quat(quat_wxyz, scalar_first=True).apply([0.0, 0.0, 1.0])
    return float(np.degrees(np.arccos(np.clip(up[2], -1.0, 1.0))))


def _check_upright(src: SourceMotion, mapping: SourceMapping, robot: Robot, quat0: np.ndarray,
                   opts: ImportSettings, assumed: bool) -> None:
    tilt = _tilt_deg(quat0)
    if tilt <= opts.upright_tolerance_deg:
        return
    # Which known source robots would make this frame upright: the likely intended one.
    fits = []
    for name in available_mappings():
        if name == mapping.name:
            continue
        other = load_mapping(name, robot)
        if _tilt_deg(other.root_to_robot(robot, src.root_pos[:1], src.root_quat[:1])[1][0]) <= opts.upright_tolerance_deg:
            fits.append(name)
    how = "assumed for this format" if assumed else "given"
    hint = (f"; the file is upright as {' or '.join(repr(f) for f in fits)}: pass --source-robot {fits[0]}"
            if fits else "; check the quaternion order (x y z w) and --source-robot")
    raise InputError(f"{src.path}: frame 0: field 'root_quat' is {tilt:.0f} deg from upright after converting "
                     f"from source robot {mapping.name!r} ({how}){hint}")


def _check_height(src: SourceMotion, mapping: SourceMapping, where: str) -> None:
    ratio = src.root_pos[0, 2] / mapping.stand_height
    lo, hi = HEIGHT_PLAUSIBLE
    if not lo <= ratio <= hi:
        raise InputError(f"{where}: frame 0: field 'root_pos' z is {src.root_pos[0, 2]:.4g}, but source robot "
                         f"{mapping.name!r} stands at {mapping.stand_height} m: positions not in metres, "
                         f"or the wrong --source-robot?")


def _check_units(src: SourceMotion, mapping: SourceMapping, robot: Robot, q: np.ndarray,
                 columns: np.ndarray, max_clamp: float) -> None:
    """Refuse angles far past a limit (degrees, or the wrong robot); the methods clamp the rest."""
    excess = np.maximum(robot.lower - q, q - robot.upper)
    if np.any(excess > max_clamp):
        frame, joint = np.argwhere(excess > max_clamp)[0]
        row = int(np.flatnonzero(mapping.target_index == joint)[0])
        name = src.joint_names[columns[row]] if src.joint_names is not None else mapping.source_names[row]
        raise InputError(
            f"{src.path}: frame {frame}: joint {name!r} = {src.joint_pos[frame, columns[row]]:.4g} gives "
            f"{robot.joint_names[joint]} = {q[frame, joint]:.3f} rad, {excess[frame, joint]:.2f} rad outside "
            f"[{robot.lower[joint]:.3f}, {robot.upper[joint]:.3f}], more than the {max_clamp:g} rad that is "
            f"clamped: angles in degrees, or the wrong --source-robot ({mapping.name!r})?")


def _jsonable(d: dict) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items()}
