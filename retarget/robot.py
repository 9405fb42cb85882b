"""The robot description: joint order, limits and leg geometry, derived from the URDF Genesis ships.

`configs/robot/go2.yaml` names the URDF and adds what the URDF lacks (canonical order, named poses,
foot radius); everything geometric is parsed from the URDF itself, without importing genesis.
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import InputError
from .files import read_yaml_mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROBOT = PROJECT_ROOT / "configs" / "robot" / "go2.yaml"

_ROBOT_KEYS = {
    "name", "urdf", "base_link", "legs", "leg_joints", "foot_link", "foot_radius", "body_links",
    "poses", "default_pose", "actuators",
}
_ACTUATOR_KEYS = ("armature", "damping", "friction_loss")


def genesis_assets_dir() -> Path:
    """genesis-world's asset folder, located without importing genesis (and so torch)."""
    spec = importlib.util.find_spec("genesis")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("genesis-world is not installed: the Go2 URDF ships inside it")
    return Path(list(spec.submodule_search_locations)[0]) / "assets"


@dataclass(frozen=True)
class Robot:
    name: str
    urdf_path: Path
    base_link: str
    legs: tuple[str, ...]                 # e.g. FR, FL, RR, RL
    joint_names: tuple[str, ...]          # 12, leg-major in `legs` order, hip/thigh/calf
    foot_names: tuple[str, ...]           # 4 foot links, `legs` order
    body_links: tuple[str, ...]
    foot_radius: float
    lower: np.ndarray                     # (12,) rad
    upper: np.ndarray                     # (12,) rad
    effort: np.ndarray                    # (12,) N m
    velocity: np.ndarray                  # (12,) rad/s
    hip_offset: np.ndarray                # (4, 3) base -> hip joint, body frame
    thigh_offset: np.ndarray              # (4, 3) hip -> thigh joint (lateral)
    calf_offset: np.ndarray               # (4, 3) thigh -> calf joint
    foot_offset: np.ndarray               # (4, 3) calf -> foot
    poses: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (12,)
    default_pose_name: str = "stand"
    armature: np.ndarray = field(default_factory=lambda: np.zeros(12))       # (12,) kg m^2, reflected rotor inertia
    joint_damping: np.ndarray = field(default_factory=lambda: np.zeros(12))  # (12,) N m s/rad, passive
    friction_loss: np.ndarray = field(default_factory=lambda: np.zeros(12))  # (12,) N m, Coulomb joint friction
    # Points on the collision shapes of the body links (trunk with what is fixed to it, hips, thighs), each in its
    # link's frame: (K, 3) for "base" and (4 legs, K, 3) for "hip" and "thigh"; what retargeting checks the ground
    # clearance of.
    body_points: dict = field(default_factory=dict)

    @property
    def default_pose(self) -> np.ndarray:
        return self.poses[self.default_pose_name]

    @property
    def thigh_length(self) -> float:
        return float(-self.calf_offset[0, 2])

    @property
    def calf_length(self) -> float:
        return float(-self.foot_offset[0, 2])

    @property
    def leg_length(self) -> float:
        return self.thigh_length + self.calf_length

    def pose(self, name: str) -> np.ndarray:
        if name not in self.poses:
            raise KeyError(f"unknown pose {name!r}; known: {', '.join(sorted(self.poses))}")
        return self.poses[name]


def _floats(text: str | None, n: int, where: str) -> np.ndarray:
    values = np.array([float(v) for v in (text or "").split()])
    if values.shape != (n,):
        raise InputError(f"{where}: expected {n} numbers, got {text!r}")
    return values


@lru_cache(maxsize=None)
def load_robot(path: str | Path = DEFAULT_ROBOT) -> Robot:
    path = Path(path)
    cfg = read_yaml_mapping(path, "robot description")
    unknown = set(cfg) - _ROBOT_KEYS
    missing = _ROBOT_KEYS - set(cfg)
    if unknown or missing:
        raise InputError(f"{path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")

    urdf_path = genesis_assets_dir() / cfg["urdf"]
    root = ET.parse(urdf_path).getroot()
    joints = {j.get("name"): j for j in root.findall("joint")}
    legs = tuple(cfg["legs"])
    parts = tuple(cfg["leg_joints"])
    joint_names = tuple(f"{leg}_{part}_joint" for leg in legs for part in parts)
    foot_names = tuple(cfg["foot_link"].format(leg=leg) for leg in legs)

    lower, upper, effort, velocity = (np.zeros(12) for _ in range(4))
    offsets = np.zeros((4, 4, 3))  # leg, (hip, thigh, calf, foot), xyz
    for i, name in enumerate(joint_names):
        if name not in joints:
            raise InputError(f"{urdf_path}: no joint {name!r}")
        j = joints[name]
        lim = j.find("limit")
        lower[i], upper[i] = float(lim.get("lower")), float(lim.get("upper"))
        effort[i], velocity[i] = float(lim.get("effort")), float(lim.get("velocity"))
        offsets[i // 3, i % 3] = _floats(j.find("origin").get("xyz"), 3, f"{urdf_path}: {name} origin")
        axis = _floats(j.find("axis").get("xyz"), 3, f"{urdf_path}: {name} axis")
        expected = [1, 0, 0] if i % 3 == 0 else [0, 1, 0]
        if not np.allclose(axis, expected):
            raise InputError(f"{urdf_path}: {name} axis {axis} is not {expected}: leg IK assumes x-y-y legs")
    for leg_i, foot in enumerate(foot_names):
        fj = next((j for j in joints.values() if j.find("child").get("link") == foot), None)
        if fj is None:
            raise InputError(f"{urdf_path}: no joint leads to foot link {foot!r}")
        offsets[leg_i, 3] = _floats(fj.find("origin").get("xyz"), 3, f"{urdf_path}: {foot} origin")

    poses = {}
    for pname, spec in cfg["poses"].items():
        front, rear = np.asarray(spec["front"], float), np.asarray(spec["rear"], float)
        angles = []
        for leg in legs:
            a = (front if leg[0] == "F" else rear).copy()
            if leg[1] == "L":
                a[0] = -a[0]  # hip abduction mirrors between left and right
            angles.append(a)
        poses[pname] = np.concatenate(angles)
    if cfg["default_pose"] not in poses:
        raise InputError(f"{path}: default_pose {cfg['default_pose']!r} is not among poses")

    act = cfg["actuators"]
    if not isinstance(act, dict) or set(act) != set(_ACTUATOR_KEYS):
        raise InputError(f"{path}: actuators: needs exactly the keys {list(_ACTUATOR_KEYS)}")
    per_joint = {}
    for key in _ACTUATOR_KEYS:
        v = act[key]
        if (not isinstance(v, list) or len(v) != len(parts)
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in v)):
            raise InputError(f"{path}: actuators.{key}: {len(parts)} non-negative numbers per leg joint "
                             f"{list(parts)}, got {v!r}")
        per_joint[key] = np.tile(np.asarray(v, float), len(legs))

    robot = Robot(
        name=cfg["name"], urdf_path=urdf_path, base_link=cfg["base_link"], legs=legs,
        joint_names=joint_names, foot_names=foot_names, body_links=tuple(cfg["body_links"]),
        foot_radius=float(cfg["foot_radius"]), lower=lower, upper=upper, effort=effort,
        velocity=velocity, hip_offset=offsets[:, 0], thigh_offset=offsets[:, 1],
        calf_offset=offsets[:, 2], foot_offset=offsets[:, 3], poses=poses,
        default_pose_name=cfg["default_pose"], armature=per_joint["armature"],
        joint_damping=per_joint["damping"], friction_loss=per_joint["friction_loss"],
        body_points=_body_points(root, cfg["base_link"], legs),
    )
    _check_leg_structure(robot, urdf_path)
    for pname, q in poses.items():
        bad = (q < lower - 1e-9) | (q > upper + 1e-9)
        if bad.any():
            raise InputError(f"{path}: pose {pname!r} violates limits of {np.array(joint_names)[bad].tolist()}")
    return robot


def _shape_points(collision) -> np.ndarray:
    """Points on a URDF collision shape (box corners, cylinder rims, sphere poles), in its link's frame."""
    from scipy.spatial.transform import Rotation

    geom = collision.find("geometry")[0]
    if geom.tag == "box":
        hx, hy, hz = np.asarray(geom.get("size").split(), float) / 2
        pts = np.array([[x, y, z] for x in (-hx, hx) for y in (-hy, hy) for z in (-hz, hz)])
    elif geom.tag == "cylinder":
        r, half = float(geom.get("radius")), float(geom.get("length")) / 2
        a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
        ring = np.stack([r * np.cos(a), r * np.sin(a)], -1)
        pts = np.concatenate([np.column_stack([ring, np.full(12, z)]) for z in (-half, half)])
    elif geom.tag == "sphere":
        r = float(geom.get("radius"))
        pts = np.concatenate([np.eye(3) * r, -np.eye(3) * r])
    else:  # meshes: the link origin stands for them
        pts = np.zeros((1, 3))
    origin = collision.find("origin")
    xyz, rpy = _origin(origin)
    return Rotation.from_euler("xyz", rpy).apply(pts) + xyz


def _origin(element) -> tuple[np.ndarray, np.ndarray]:
    """(xyz, rpy) of a URDF <origin> (zeros where missing)."""
    get = lambda key: np.array(((element.get(key) if element is not None else None) or "0 0 0").split(), float)  # noqa: E731
    return get("xyz"), get("rpy")


def _body_points(root, base: str, legs) -> dict:
    """Robot.body_points from the URDF: the base's shapes with those of links fixed to it (the head), the hips' and
    the thighs'."""
    from scipy.spatial.transform import Rotation

    links = {ln.get("name"): ln for ln in root.findall("link")}
    shapes = lambda name: [_shape_points(c) for c in links[name].findall("collision")] if name in links else []  # noqa: E731
    base_pts = shapes(base)
    for j in root.findall("joint"):
        if j.get("type") == "fixed" and j.find("parent").get("link") == base:
            xyz, rpy = _origin(j.find("origin"))
            base_pts += [Rotation.from_euler("xyz", rpy).apply(p) + xyz for p in shapes(j.find("child").get("link"))]
    out = {"base": np.concatenate(base_pts) if base_pts else np.zeros((1, 3))}
    for part in ("hip", "thigh"):
        per_leg = [np.concatenate(shapes(f"{leg}_{part}") or [np.zeros((1, 3))]) for leg in legs]
        k = min(len(p) for p in per_leg)
        out[part] = np.stack([p[:k] for p in per_leg])
    return out


def _check_leg_structure(robot: Robot, where: Path) -> None:
    # The closed-form IK assumes a purely lateral hip->thigh offset and in-line thigh and calf.
    ok = (
        np.allclose(robot.thigh_offset[:, [0, 2]], 0)
        and np.allclose(robot.calf_offset[:, :2], 0)
        and np.allclose(robot.foot_offset[:, :2], 0)
    )
    if not ok:
        raise InputError(f"{where}: leg geometry is not of the x-y-y in-line kind the IK solves")
