"""Source robot -> target robot conventions, read from data files (configs/mappings/<name>.yaml).

A mapping says, for a robot whose motions we import: its joint names in the order its files store
them, how each joint angle becomes a target joint angle (target = sign * source + offset), the fixed
rotation between its base frame and the target's (stored attitude = attitude * offset), and its leg
length and foot radius, which scale root translation. Adding a robot is adding a file, not code.

Root translation is scaled by the ratio of leg lengths: with the joint angles copied, a foot's
excursion from its hip scales with the leg, so a root scaled the same way keeps stance feet still.
Heights are scaled above the foot-centre plane (z = foot radius), where every leg stands.

An optional `legs` section gives the source's leg geometry: per leg the hip abduction axis's position
relative to the file's root point (which need not be the base link origin: pybullet-made files store
the base's centre of mass) and the lateral offset from that axis to the leg's plane, and the thigh
and calf lengths, in the target's body axes and joint convention (for the angles the joint rows
produce). Retargeting by foot positions (retarget/methods.py) needs it to place the source's hips
and feet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from .errors import InputError
from .files import read_yaml_mapping
from .robot import PROJECT_ROOT, Robot

MAPPINGS_DIR = PROJECT_ROOT / "configs" / "mappings"

_REQUIRED = {"name", "target_robot", "joints", "root_rotation_offset_euler_xyz_deg", "leg_length",
             "foot_radius", "stand_height"}
_OPTIONAL = {"description", "legs"}
_JOINT_REQUIRED = {"source", "target", "sign", "offset"}
_JOINT_OPTIONAL = {"aliases"}
_LEGS_REQUIRED = {"hip_offset", "hip_lateral_offset", "thigh_length", "calf_length"}
LEG_LENGTH_TOLERANCE = 1e-3  # m: legs.thigh_length + legs.calf_length must agree with leg_length


@dataclass(frozen=True, eq=False)
class SourceLegs:
    """A source robot's legs in the shape of retarget.kinematics (hip about x, then thigh and calf
    about y), so its foot positions come from the same forward kinematics as the target's."""

    hip_offset: np.ndarray         # (4, 3) m, the file's root point -> hip abduction axis, body frame
    lateral: np.ndarray            # (4,) m, hip abduction axis to the leg's plane along +y
    thigh_length: float            # m, hip-pitch axis to knee axis
    calf_length: float             # m, knee axis to foot centre

    @property
    def thigh_offset(self) -> np.ndarray:
        return np.stack([np.zeros(4), self.lateral, np.zeros(4)], axis=-1)

    @property
    def calf_offset(self) -> np.ndarray:
        return np.tile([0.0, 0.0, -self.thigh_length], (4, 1))

    @property
    def foot_offset(self) -> np.ndarray:
        return np.tile([0.0, 0.0, -self.calf_length], (4, 1))


@dataclass(frozen=True, eq=False)
class SourceMapping:
    name: str
    path: Path
    source_names: tuple[str, ...]   # (J,) the source's joint names in its file column order
    aliases: dict                   # every accepted column name -> row in source_names
    target_index: np.ndarray        # (J,) index into robot.joint_names of each row
    sign: np.ndarray                # (J,) +1 / -1
    offset: np.ndarray              # (J,) rad
    root_offset_deg: tuple[float, float, float]
    leg_length: float               # m, thigh + calf
    foot_radius: float              # m
    stand_height: float             # m, a typical standing root height (plausibility check)
    legs: SourceLegs | None = None  # leg geometry, for retargeting by foot positions

    @property
    def root_offset(self) -> Rotation:
        return Rotation.from_euler("xyz", self.root_offset_deg, degrees=True)

    def scale(self, robot: Robot) -> float:
        return robot.leg_length / self.leg_length

    def joint_columns(self, names: tuple[str, ...] | None, where: str) -> np.ndarray:
        """For each mapping row, the file column holding it. None = the file is in mapping order."""
        if names is None:
            return np.arange(len(self.source_names))
        rows = np.full(len(self.source_names), -1)
        for col, name in enumerate(names):
            row = self.aliases.get(name)
            if row is None:
                raise InputError(f"{where}: header column {name!r} is not a joint of source robot {self.name!r} "
                                 f"(mapping {self.path.name} knows {', '.join(self.source_names)})")
            if rows[row] >= 0:
                raise InputError(f"{where}: header columns {names[rows[row]]!r} and {name!r} both give joint "
                                 f"{self.source_names[row]!r}")
            rows[row] = col
        missing = [self.source_names[r] for r in np.flatnonzero(rows < 0)]
        if missing:
            raise InputError(f"{where}: header has no column for joint(s) {', '.join(missing)} "
                             f"of source robot {self.name!r}")
        return rows

    def joints_to_robot(self, q_source: np.ndarray) -> np.ndarray:
        """(N, J) angles in mapping row order -> (N, 12) target angles in the robot's order."""
        q = np.empty_like(q_source)
        q[:, self.target_index] = self.sign * q_source + self.offset
        return q

    def joints_from_robot(self, q: np.ndarray) -> np.ndarray:
        """Inverse of joints_to_robot (for writing files in the source's convention)."""
        return (np.asarray(q)[:, self.target_index] - self.offset) * self.sign

    def root_to_robot(self, robot: Robot, pos: np.ndarray, quat_wxyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rot = Rotation.from_quat(quat_wxyz, scalar_first=True) * self.root_offset.inv()
        return self.position_to_robot(robot, pos), rot.as_quat(scalar_first=True)

    def position_to_robot(self, robot: Robot, pos: np.ndarray) -> np.ndarray:
        """World points (N, 3) of the source's motion -> the robot's: scaled, heights above the feet."""
        s, pos = self.scale(robot), np.asarray(pos, float)
        out = pos * s
        out[:, 2] = s * (pos[:, 2] - self.foot_radius) + robot.foot_radius
        return out

    def root_from_robot(self, robot: Robot, pos: np.ndarray, quat_wxyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = self.scale(robot)
        out = np.asarray(pos, float) / s
        out[:, 2] = (pos[:, 2] - robot.foot_radius) / s + self.foot_radius
        rot = Rotation.from_quat(quat_wxyz, scalar_first=True) * self.root_offset
        return out, rot.as_quat(scalar_first=True)


def available_mappings() -> list[str]:
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))


def mapping_path(name_or_path: str | Path, where: str | None = None) -> Path:
    """A mapping name (configs/mappings/<name>.yaml) or a path to a mapping file."""
    p = Path(name_or_path)
    if p.suffix.lower() in (".yaml", ".yml"):
        return p
    path = MAPPINGS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise InputError(f"{where + ': ' if where else ''}unknown source robot {str(name_or_path)!r}; known: "
                         f"{', '.join(available_mappings())} (or give a mapping file path)")
    return path


def load_mapping(name_or_path: str | Path, robot: Robot, where: str | None = None) -> SourceMapping:
    """`where` (the motion file) prefixes the error for an unknown mapping name."""
    path = mapping_path(name_or_path, where)
    cfg = read_yaml_mapping(path, "mapping file")
    _keys(path, cfg, _REQUIRED, _OPTIONAL, "top level")
    if cfg["target_robot"] != robot.name:
        raise InputError(f"{path}: key 'target_robot' is {cfg['target_robot']!r}, this robot is {robot.name!r}")

    rows = cfg["joints"]
    if not isinstance(rows, list) or len(rows) != len(robot.joint_names):
        raise InputError(f"{path}: key 'joints' must list {len(robot.joint_names)} joints, "
                         f"got {len(rows) if isinstance(rows, list) else type(rows).__name__}")
    names, aliases, target, sign, offset = [], {}, [], [], []
    for i, row in enumerate(rows):
        where = f"joints[{i}]"
        if not isinstance(row, dict):
            raise InputError(f"{path}: {where} must be a mapping with keys {sorted(_JOINT_REQUIRED)}")
        _keys(path, row, _JOINT_REQUIRED, _JOINT_OPTIONAL, where)
        if row["target"] not in robot.joint_names:
            raise InputError(f"{path}: {where}.target {row['target']!r} is not a joint of {robot.name!r}")
        if row["target"] in target:
            raise InputError(f"{path}: {where}.target {row['target']!r} is mapped twice")
        if row["sign"] not in (1, -1) or isinstance(row["sign"], bool):
            raise InputError(f"{path}: {where}.sign is {row['sign']!r}, expected 1 or -1")
        offset.append(_number(path, row["offset"], f"{where}.offset"))
        for alias in [row["source"], *row.get("aliases", [])]:
            if not isinstance(alias, str) or not alias:
                raise InputError(f"{path}: {where}: joint name {alias!r} is not a non-empty string")
            if alias in aliases:
                raise InputError(f"{path}: {where}: joint name {alias!r} is already used by joints[{aliases[alias]}]")
            aliases[alias] = i
        names.append(row["source"])
        target.append(row["target"])
        sign.append(row["sign"])

    rot = cfg["root_rotation_offset_euler_xyz_deg"]
    if not isinstance(rot, list) or len(rot) != 3:
        raise InputError(f"{path}: key 'root_rotation_offset_euler_xyz_deg' must be 3 angles in degrees")
    rot = tuple(_number(path, a, "root_rotation_offset_euler_xyz_deg") for a in rot)
    sizes = {}
    for key in ("leg_length", "foot_radius", "stand_height"):
        sizes[key] = _number(path, cfg[key], key)
        if sizes[key] < 0 or (key != "foot_radius" and sizes[key] == 0):
            raise InputError(f"{path}: key {key!r} is {sizes[key]}, expected a positive length in metres")
    legs = _legs(path, cfg["legs"], robot, sizes["leg_length"]) if "legs" in cfg else None
    return SourceMapping(
        name=str(cfg["name"]), path=path, source_names=tuple(names), aliases=aliases,
        target_index=np.array([robot.joint_names.index(t) for t in target]), sign=np.array(sign, float),
        offset=np.array(offset), root_offset_deg=rot, legs=legs, **sizes,
    )


def _legs(path: Path, cfg, robot: Robot, leg_length: float) -> SourceLegs:
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: key 'legs' must be a mapping with keys {', '.join(sorted(_LEGS_REQUIRED))}")
    _keys(path, cfg, _LEGS_REQUIRED, set(), "legs")
    lengths = {}
    for key in ("thigh_length", "calf_length"):
        lengths[key] = _number(path, cfg[key], f"legs.{key}")
        if lengths[key] <= 0:
            raise InputError(f"{path}: legs.{key} is {lengths[key]}, expected a positive length in metres")
    total = lengths["thigh_length"] + lengths["calf_length"]
    if abs(total - leg_length) > LEG_LENGTH_TOLERANCE:
        raise InputError(f"{path}: legs.thigh_length + legs.calf_length = {total:.4f} m, but leg_length is "
                         f"{leg_length} m")
    per_leg = {}
    for key, what in (("hip_offset", "a position [x, y, z] (m)"), ("hip_lateral_offset", "an offset (m, +y = left)")):
        value = cfg[key]
        if not isinstance(value, dict) or set(value) != set(robot.legs):
            raise InputError(f"{path}: legs.{key} must give {what} for each leg {', '.join(robot.legs)}")
        per_leg[key] = value
    hips = []
    for leg in robot.legs:
        xyz = per_leg["hip_offset"][leg]
        if not isinstance(xyz, list) or len(xyz) != 3:
            raise InputError(f"{path}: legs.hip_offset.{leg} is {xyz!r}, expected [x, y, z] in metres")
        hips.append([_number(path, v, f"legs.hip_offset.{leg}") for v in xyz])
    lateral = [_number(path, per_leg["hip_lateral_offset"][leg], f"legs.hip_lateral_offset.{leg}")
               for leg in robot.legs]
    return SourceLegs(hip_offset=np.array(hips), lateral=np.array(lateral), **lengths)


def _keys(path: Path, d: dict, required: set, optional: set, where: str) -> None:
    unknown = sorted(set(d) - required - optional, key=str)
    if unknown:
        raise InputError(f"{path}: {where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(required | optional))})")
    missing = sorted(required - set(d))
    if missing:
        raise InputError(f"{path}: {where}: key {missing[0]!r} missing")


def _number(path: Path, value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise InputError(f"{path}: {where} is {value!r}, expected a number")
    return float(value)
