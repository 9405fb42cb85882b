"""Run a policy bundle in MuJoCo: the second engine judges a policy from its exported files alone.

The policy (policy.onnx through onnxruntime) acts every control period; its PD target is held in between while
MuJoCo's actuators apply the PD torque `kp (target - q) - kd qd`, clamped at the effort limits, at every physics
step (500 Hz by default; `model.set_pd`). The observation and the PD target come from imitation.env.observations, the very functions
the Genesis env calls. Every episode starts at t = 0 in the reference's first frame and runs the full episode;
the recorded states make an imitation.analysis.metrics.Trajectory, judged by the same success rule and metrics
as a Genesis evaluation.

Physics per episode (`Physics`): nominal (the bundle's robot and actuator model), the "realistic actuators"
variant, or a randomized draw (`draw_physics`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path

import mujoco
import numpy as np
import torch

from retarget.errors import InputError

from ..analysis.metrics import Trajectory
from ..env.observations import ObservationSpec, pd_target, policy_observation, projected_gravity, residual_base
from .model import Go2Model, build_model, set_pd

DEFAULT_PHYSICS_HZ = 500.0
CONTACT_FORCE_N = 1.0          # a foot is in contact above this net ground force (as in the Genesis env)

# The MuJoCo Menagerie Go2 model's joint figures (unitree_go2/go2.xml, torque-motor version: default class
# "go2"): what people use for the Go2 in MuJoCo. Reported beside nominal.
REALISTIC_ACTUATORS = {"armature": 0.01, "friction_loss": 0.2, "damping": 0.1}

# Randomized evaluation: the Genesis ranges (from the bundle's training randomization) plus what a second engine
# differs in. Absolute values per joint for the actuator terms.
SECOND_ENGINE_RANGES = {
    "armature": [0.0, 0.02],          # kg m^2
    "friction_loss": [0.0, 0.3],      # N m
    "damping": [0.0, 0.3],            # N m s/rad
    "solref_time": [0.005, 0.03],     # s, contact softness (MuJoCo's default 0.02)
    "physics_hz": [250.0, 1000.0],
}


@dataclass
class Physics:
    """One episode's physics in MuJoCo."""

    friction: float = 1.0
    added_base_mass: float = 0.0
    kp_scale: float = 1.0
    kd_scale: float = 1.0
    latency: bool = False
    armature: np.ndarray | None = None       # (12,) or None: the bundle's
    friction_loss: np.ndarray | None = None
    damping: np.ndarray | None = None
    solref_time: float = 0.02
    physics_hz: float = DEFAULT_PHYSICS_HZ

    def to_json(self) -> dict:
        out = {}
        for k, v in self.__dict__.items():
            out[k] = None if v is None else (np.round(v, 6).tolist() if isinstance(v, np.ndarray) else v)
        return out


def nominal_physics(bundle: dict, physics_hz: float = DEFAULT_PHYSICS_HZ) -> Physics:
    return Physics(latency=bool(bundle["control"]["latency_steps"]), physics_hz=physics_hz)


def realistic_physics(bundle: dict, physics_hz: float = DEFAULT_PHYSICS_HZ) -> Physics:
    full = lambda v: np.full(12, float(v))  # noqa: E731
    return replace(nominal_physics(bundle, physics_hz), armature=full(REALISTIC_ACTUATORS["armature"]),
                   friction_loss=full(REALISTIC_ACTUATORS["friction_loss"]),
                   damping=full(REALISTIC_ACTUATORS["damping"]))


def draw_physics(bundle: dict, rng: np.random.Generator) -> Physics:
    """A randomized episode: the training's ranges of friction, base mass, kp / kd and latency (a latency
    probability of 0 in training counts as 0.5, as in the Genesis evaluation) and SECOND_ENGINE_RANGES."""
    dr = bundle["randomization"]
    u = lambda r, n=None: rng.uniform(r[0], r[1], n)  # noqa: E731
    p_latency = dr.get("action_latency_probability") or 0.5
    s = SECOND_ENGINE_RANGES
    return Physics(
        friction=float(u(dr["friction"])), added_base_mass=float(u(dr["added_base_mass"])),
        kp_scale=float(u(dr["kp_scale"])), kd_scale=float(u(dr["kd_scale"])),
        latency=bool(bundle["control"]["latency_steps"]) or bool(rng.random() < p_latency),
        armature=u(s["armature"], 12), friction_loss=u(s["friction_loss"], 12), damping=u(s["damping"], 12),
        solref_time=float(u(s["solref_time"])),
        # a whole number of physics steps per control period, 250-1000 Hz
        physics_hz=float(rng.integers(round(s["physics_hz"][0] * 0.02), round(s["physics_hz"][1] * 0.02) + 1) / 0.02),
    )


# ---------------------------------------------------------------------------- the runner


class BundleRobot:
    """The bundle's robot fields in the shape build_model reads (a retarget.robot.Robot's attributes)."""

    def __init__(self, bundle: dict):
        from retarget.robot import genesis_assets_dir

        r = bundle["robot"]
        self.urdf_path = genesis_assets_dir() / r["urdf"]
        if not self.urdf_path.is_file():
            raise InputError(f"bundle field robot.urdf: {self.urdf_path} not found")
        self.name, self.base_link = r["name"], r["base_link"]
        self.joint_names, self.foot_names = tuple(r["joint_names"]), tuple(r["foot_names"])
        self.body_links = tuple(r["body_links"])
        a = lambda k: np.asarray(r[k], float)  # noqa: E731
        self.default_pose, self.effort, self.lower, self.upper = a("default_pose"), a("effort"), a("lower"), a("upper")
        self.armature, self.joint_damping, self.friction_loss = a("armature"), a("damping"), a("friction_loss")


@dataclass
class Episode:
    """One recorded episode: sample k is the state at k * dt (k = 0 .. T)."""

    arrays: dict                 # Trajectory field -> (T + 1, ...) array
    physics: Physics
    fault_at: int = -1           # sample at which the physics failed (-1: none)
    extras: dict = field(default_factory=dict)


class MujocoRunner:
    """Runs one bundle (a shipped policy folder) in MuJoCo, episode by episode."""

    def __init__(self, folder: str | Path, clip: str | Path | None = None, bundle: dict | None = None):
        from ..bundle import FILE, bundle_of_folder, read_bundle

        self.folder = Path(folder)
        if bundle is None:
            # a run folder (or a policy shipped before bundles): its bundle made from its config
            made = not (self.folder / FILE).is_file() and (self.folder / "config.yaml").is_file()
            bundle = bundle_of_folder(self.folder) if made else read_bundle(self.folder)
        self.bundle = bundle
        b = self.bundle
        self.robot = BundleRobot(b)
        self.clip_path = self._clip_path(clip)
        from ..env.reference import Reference

        self.dt = float(b["control"]["dt"])
        from retarget.clip import read_clip

        clip_data = read_clip(self.clip_path)
        if tuple(clip_data.joint_names) != self.robot.joint_names:
            raise InputError(f"{self.clip_path}: its joints {list(clip_data.joint_names)} are not in the bundle's "
                             f"order robot.joint_names")
        self.ref = Reference(clip_data, None, self.dt, "cpu")
        from retarget.clip import sha256_of

        from ..bundle import library_entry

        # this clip's episode length and success rule (a policy of several clips: its entry for the clip)
        self.settings = library_entry(b, self.clip_path, sha256_of(self.clip_path))
        o = b["observation"]
        self.spec = ObservationSpec(dt=self.dt, episode_length_s=float(self.settings["episode_length_s"]),
                                    loop=self.ref.loop,
                                    cycle=int(self.ref.cycle), last_actions=o["last_actions"],
                                    future_frames=tuple(o["future_frames"]), future_terms=tuple(o["future_terms"]))
        if self.spec.size != o["size"]:
            raise InputError(f"{self.folder}: bundle field observation.size: {o['size']}, the layout makes "
                             f"{self.spec.size}")
        c = b["control"]
        self.residual = c["action_mode"] == "residual"
        rb = c["residual_base"] or {}
        if self.residual and rb["kind"] == "pd_target" and self.ref.pd_target is None:
            raise InputError(f"{self.clip_path}: bundle field control.residual_base.kind is pd_target but the clip "
                             f"has no pd_target dataset")
        self.base = residual_base(self.ref, rb.get("kind"), rb.get("lead", 0), rb.get("velocity_gain", 0.0)) \
            if self.residual else None
        self.default = torch.tensor(self.robot.default_pose, dtype=torch.float32)
        self.steps = max(1, int(round(float(self.settings["episode_length_s"]) / self.dt)))
        self._policy = None
        self._models: dict[float, Go2Model] = {}

    def _clip_path(self, clip) -> Path:
        from retarget.clip import sha256_of

        from ..config import resolve_path

        b = self.bundle["reference"]
        if clip is not None:
            path = resolve_path(clip)
            if not path.is_file():
                raise InputError(f"{clip}: reference clip not found")
            return path
        path = resolve_path(b["clip"])
        if not path.is_file():
            raise InputError(f"{self.folder}: bundle field reference.clip: {b['clip']} not found")
        if sha256_of(path) != b["sha256"]:
            raise InputError(f"{path}: bundle field reference.sha256: the clip's sha256 differs (the policy was "
                             f"trained on another version of it)")
        return path

    @property
    def policy(self):
        if self._policy is None:
            self._policy = self._load_policy()
        return self._policy

    def _load_policy(self):
        """obs (n, D) float32 numpy -> actions (n, 12): the ONNX export through onnxruntime."""
        import onnxruntime as ort

        path = self.folder / "policy.onnx"
        if not path.is_file() and (self.folder / "exported" / "policy.onnx").is_file():
            path = self.folder / "exported" / "policy.onnx"     # a run folder's export
        if not path.is_file():
            raise InputError(f"{self.folder}: no policy.onnx (re-ship the policy with: imitation ship RUN DEST)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        dim = inp.shape[-1]
        if isinstance(dim, int) and dim != self.spec.size:
            raise InputError(f"{path}: takes {dim} observation values, the bundle's layout makes {self.spec.size}")
        name = inp.name
        rows = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) else None  # a fixed batch size

        def run(obs: np.ndarray) -> np.ndarray:
            obs = obs.astype(np.float32)
            if rows is None or rows == len(obs):
                return sess.run(None, {name: obs})[0]
            return np.concatenate([sess.run(None, {name: obs[i:i + rows]})[0] for i in range(0, len(obs), rows)])

        return run

    def model(self, physics_hz: float) -> Go2Model:
        if physics_hz not in self._models:
            self._models[physics_hz] = build_model(self.robot, 1.0 / physics_hz)
        return self._models[physics_hz]

    # ------------------------------------------------------------------ one episode

    def _physics_model(self, phys: Physics) -> tuple[Go2Model, mujoco.MjModel]:
        g = self.model(phys.physics_hz)
        m = copy.copy(g.model)
        m.geom_friction[:, 0] = phys.friction
        m.body_mass[g.base_body] = g.base_mass + phys.added_base_mass
        for key, arr in (("armature", m.dof_armature), ("friction_loss", m.dof_frictionloss),
                         ("damping", m.dof_damping)):
            v = getattr(phys, key)
            if v is not None:
                arr[g.dof_idx] = v
        m.geom_solref[:, 0] = phys.solref_time
        return g, m

    def reset_state(self, g: Go2Model, m: mujoco.MjModel, d: mujoco.MjData, frame: int = 0) -> None:
        f = self.ref.frame(torch.tensor([frame]))
        d.qpos[:] = 0.0
        d.qvel[:] = 0.0
        d.qpos[0:3] = f.root_pos[0].numpy()
        d.qpos[3:7] = f.root_quat[0].numpy()           # w x y z in both engines
        d.qpos[g.qpos_idx] = f.dof_pos[0].numpy()
        d.qvel[0:3] = f.root_lin_vel[0].numpy()        # free joint: world linear velocity ...
        d.qvel[3:6] = f.root_ang_vel_b[0].numpy()      # ... and body-frame angular velocity
        d.qvel[g.dof_idx] = f.dof_vel[0].numpy()
        mujoco.mj_forward(m, d)

    def read_state(self, g: Go2Model, m: mujoco.MjModel, d: mujoco.MjData) -> dict:
        """The robot's state as the observation and the judge read it: float64 numpy arrays (root_quat
        normalized) and contact flags."""
        state = {"root_pos": d.qpos[0:3].copy(), "root_quat": d.qpos[3:7] / np.linalg.norm(d.qpos[3:7]),
                 "root_ang_vel_b": d.qvel[3:6].copy(), "dof_pos": d.qpos[g.qpos_idx].copy(),
                 "dof_vel": d.qvel[g.dof_idx].copy(), "foot_pos": d.xpos[g.foot_body].copy()}
        force = self._link_forces(g, m, d)
        state["foot_contact"] = np.array([force.get(n, 0.0) > CONTACT_FORCE_N for n in self.robot.foot_names])
        state["body_contact"] = any(force.get(n, 0.0) > CONTACT_FORCE_N for n in self.robot.body_links)
        return state

    @staticmethod
    def _link_forces(g: Go2Model, m, d) -> dict:
        """Norm of the net ground contact force on each Genesis link that touches the ground."""
        net: dict[str, np.ndarray] = {}
        f6 = np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = int(c.geom1), int(c.geom2)
            if g.ground_geom not in (g1, g2):
                continue
            mujoco.mj_contactForce(m, d, i, f6)
            fw = c.frame.reshape(3, 3).T @ f6[:3]     # contact frame -> world: the force on geom2
            link = g.link_of_geom[g2 if g1 == g.ground_geom else g1]
            sign = 1.0 if g1 == g.ground_geom else -1.0
            net[link] = net.get(link, np.zeros(3)) + sign * fw
        return {k: float(np.linalg.norm(v)) for k, v in net.items()}

    def observation(self, states: list[dict], frame: int, actions: torch.Tensor,
                    last_actions: torch.Tensor) -> torch.Tensor:
        """(E, D) observations of E episodes at control step `frame` (their states from read_state)."""
        t = lambda key: torch.from_numpy(np.stack([st[key] for st in states])).float()  # noqa: E731
        root_quat = t("root_quat")
        return policy_observation(
            self.spec, self.ref, torch.full((len(states),), frame), root_quat=root_quat,
            root_ang_vel_b=t("root_ang_vel_b"), projected_gravity=projected_gravity(root_quat),
            dof_pos=t("dof_pos"), dof_vel=t("dof_vel"), default_dof_pos=self.default, actions=actions,
            last_actions=last_actions, root_pos=t("root_pos"))

    def run_episode(self, phys: Physics, steps: int | None = None, policy=True, on_frame=None) -> Episode:
        """One episode from t = 0 with `phys`; `policy` False: zero actions (the reference's replay through the
        residual base). `on_frame(model, data, k)` is called at every sample (e.g. to render)."""
        return self.run_episodes([phys], steps, policy, on_frame=on_frame)[0]

    def run_episodes(self, physics: list[Physics], steps: int | None = None, policy=True, on_frame=None) -> list[Episode]:
        """Episodes from t = 0, one per Physics, stepped side by side: one policy call for all of them per control
        step (each keeps its own model, substeps and PD loop). A faulting episode ends there; the rest go on."""
        steps = self.steps if steps is None else steps
        c = self.bundle["control"]
        clip, scale = float(c["clip_actions"]), float(c["action_scale"])
        effort = self.robot.effort if c["torque_limits"] else np.full(12, np.inf)
        sims = []
        for phys in physics:
            g, m = self._physics_model(phys)
            kp, kd = np.asarray(c["kp"]) * phys.kp_scale, np.asarray(c["kd"]) * phys.kd_scale
            set_pd(m, kp, kd, effort)
            d = mujoco.MjData(m)
            self.reset_state(g, m, d)
            sims.append((g, m, d, kp, kd, max(1, int(round(self.dt * phys.physics_hz)))))
        n = len(sims)
        actions, last_actions = torch.zeros(n, 12), torch.zeros(n, 12)
        target = np.repeat(self.ref.dof_pos[0].numpy().astype(np.float64)[None], n, axis=0)
        keys = ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel", "torque", "actions", "foot_pos",
                "foot_contact", "body_contact")
        recs = [{k: [] for k in keys} for _ in range(n)]
        fault_at = [-1] * n
        latency = np.array([bool(p.latency) for p in physics])
        for k in range(steps + 1):
            live = [i for i in range(n) if fault_at[i] < 0]
            states = {}
            for i in live:
                g, m, d, kp, kd, _ = sims[i]
                st = states[i] = self.read_state(g, m, d)
                rec = recs[i]
                for key in ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel"):
                    rec[key].append(st[key].astype(np.float32))
                rec["foot_pos"].append(st["foot_pos"].astype(np.float32).reshape(-1, 3))
                rec["torque"].append(np.clip(kp * (target[i] - st["dof_pos"]) - kd * st["dof_vel"], -effort, effort))
                rec["actions"].append(actions[i].numpy().copy())
                rec["foot_contact"].append(st["foot_contact"])
                rec["body_contact"].append(bool(st["body_contact"]) and k > 0)
                if on_frame is not None:
                    on_frame(m, d, k)
            if k == steps or not live:
                break
            new = torch.zeros(n, 12)
            if policy:
                obs = self.observation([states[i] for i in live], k, actions[live], last_actions[live])
                new[live] = torch.from_numpy(self.policy(obs.numpy())).reshape(len(live), 12).clamp(-clip, clip)
            last_actions, actions = actions, new
            executed = torch.where(torch.from_numpy(latency)[:, None], last_actions, actions)
            target = pd_target(self.base, self.ref, torch.full((n,), k), self.default, executed,
                               scale).numpy().astype(np.float64)
            for i in live:
                g, m, d, kp, kd, substeps = sims[i]
                d.ctrl[:] = target[i]
                mujoco.mj_step(m, d, nstep=substeps)
                if not (np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all()):
                    fault_at[i] = k + 1
        return [Episode(arrays={key: np.asarray(v) for key, v in rec.items()}, physics=phys, fault_at=fault_at[i])
                for i, (rec, phys) in enumerate(zip(recs, physics))]


def trajectory(episodes: list[Episode], dt: float, joint_names, foot_names) -> tuple[Trajectory, np.ndarray]:
    """The episodes as one Trajectory (padded to the longest, `length` marking the valid samples) and (E,) faults."""
    t = max(len(e.arrays["root_pos"]) for e in episodes)
    length = np.array([len(e.arrays["root_pos"]) for e in episodes])

    def pad(key):
        out = []
        for e in episodes:
            a = e.arrays[key]
            if len(a) < t:
                a = np.concatenate([a, np.repeat(a[-1:], t - len(a), axis=0)])
            out.append(a)
        return np.stack(out)

    fields = ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel", "torque", "actions", "foot_pos",
              "foot_contact", "body_contact")
    traj = Trajectory(dt=dt, **{k: pad(k) for k in fields}, length=length, joint_names=tuple(joint_names),
                      foot_names=tuple(foot_names))
    return traj, np.array([e.fault_at >= 0 for e in episodes])

