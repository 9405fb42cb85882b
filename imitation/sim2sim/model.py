"""The Go2 in MuJoCo, built from the very URDF the Genesis env loads, plus a ground plane.

The URDF's visual meshes (.dae, which MuJoCo does not read) are dropped; its collision shapes are all boxes,
cylinders and spheres. Every joint gets the robot description's actuator model (armature, passive damping,
friction loss: configs/robot/go2.yaml) and an actuator that `set_pd` makes the policy's PD servo.

Genesis merges the links fixed to a parent into it (the head into the base, the lower calf cylinders into the
calf) and keeps the feet apart; `Go2Model.link_of_geom` maps every MuJoCo geom to that Genesis link, so contact
rules name the same links in both engines.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import mujoco
import numpy as np

GROUND = "ground"


@dataclass
class Go2Model:
    model: mujoco.MjModel
    qpos_idx: np.ndarray        # (12,) qpos address of each joint, robot order
    dof_idx: np.ndarray         # (12,) qvel address of each joint, robot order
    foot_body: np.ndarray       # (4,) body id of each foot link, robot order
    link_of_geom: list[str]     # geom id -> the Genesis link that owns it ("ground" for the plane)
    ground_geom: int
    base_body: int
    base_mass: float


def _urdf_without_visuals(robot) -> str:
    root = ET.parse(robot.urdf_path).getroot()
    for link in root.findall("link"):
        for visual in link.findall("visual"):
            link.remove(visual)
    # keep every link a body of its own (the feet are fixed links), as Genesis keeps the feet
    ext = ET.SubElement(root, "mujoco")
    ET.SubElement(ext, "compiler", {"fusestatic": "false", "discardvisual": "true", "balanceinertia": "false"})
    return ET.tostring(root, encoding="unicode")


def build_model(robot, physics_dt: float = 0.002) -> Go2Model:
    """The robot description `robot` (retarget.robot.Robot) as a floating-base MuJoCo model on a plane."""
    spec = mujoco.MjSpec.from_string(_urdf_without_visuals(robot))
    spec.option.timestep = float(physics_dt)
    # Euler is implicit in the joints' passive damping only: the PD servo's damping term stays explicit, computed
    # from the state at the start of each physics step as a PD loop written around mj_step would.
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_EULER
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    base = spec.body(robot.base_link)
    base.add_freejoint(name="root")
    plane = spec.worldbody.add_geom(name=GROUND, type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 1])
    plane.friction = [1.0, 0.005, 0.0001]
    for i, name in enumerate(robot.joint_names):
        j = spec.joint(name)
        j.armature, j.frictionloss = float(robot.armature[i]), float(robot.friction_loss[i])
        j.damping = [float(robot.joint_damping[i]), 0.0, 0.0]   # (linear term first)
        j.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        j.range = [float(robot.lower[i]), float(robot.upper[i])]
        spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
    for g in spec.geoms:
        g.friction = [1.0, 0.005, 0.0001]
    model = spec.compile()

    qpos_idx = np.array([model.jnt_qposadr[model.joint(n).id] for n in robot.joint_names])
    dof_idx = np.array([model.jnt_dofadr[model.joint(n).id] for n in robot.joint_names])
    foot_body = np.array([model.body(n).id for n in robot.foot_names])
    keep = {model.body(robot.base_link).id, *foot_body.tolist()}

    def owner(b: int) -> int:   # the nearest ancestor that moves on its own (or a kept link)
        while b not in keep and model.body_jntnum[b] == 0 and model.body_parentid[b] != 0:
            b = int(model.body_parentid[b])
        return b

    ground = model.geom(GROUND).id
    link_of_geom = [GROUND if g == ground else model.body(owner(int(model.geom_bodyid[g]))).name
                    for g in range(model.ngeom)]
    base = model.body(robot.base_link).id
    return Go2Model(model=model, qpos_idx=qpos_idx, dof_idx=dof_idx, foot_body=foot_body, link_of_geom=link_of_geom,
                    ground_geom=ground, base_body=base, base_mass=float(model.body_mass[base]))


def set_pd(model: mujoco.MjModel, kp, kd, effort) -> None:
    """Make actuator i (joint i in the robot's order) a PD servo on its control, the target angle:
    torque = kp (target - q) - kd qdot, clamped at +-effort (np.inf: no limit); each (12,) or scalar. MuJoCo then
    runs the PD loop at every physics step of a multi-step mj_step."""
    n = model.nu
    kp, kd, effort = (np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for v in (kp, kd, effort))
    model.actuator_gaintype[:] = mujoco.mjtGain.mjGAIN_FIXED
    model.actuator_biastype[:] = mujoco.mjtBias.mjBIAS_AFFINE
    model.actuator_gainprm[:, :] = 0.0
    model.actuator_biasprm[:, :] = 0.0
    model.actuator_gainprm[:, 0] = kp
    model.actuator_biasprm[:, 1] = -kp
    model.actuator_biasprm[:, 2] = -kd
    limited = np.isfinite(effort)
    model.actuator_forcelimited[:] = limited
    model.actuator_forcerange[:, 0] = np.where(limited, -effort, 0.0)
    model.actuator_forcerange[:, 1] = np.where(limited, effort, 0.0)
    model.actuator_ctrllimited[:] = False
