"""The Go2 motion-imitation environment in Genesis, with rsl-rl-lib 5.x's VecEnv interface.

One batch of Go2 robots on a plane tracks a reference clip. Each control step:

    actions -> PD targets (around the default pose, or residual around the next reference frame)
    -> physics -> read state -> terminations -> rewards -> reset finished envs -> observations

Everything stays on the Genesis device in batched tensors: no per-env Python loops and, on a GPU, no
host syncs in `step()` (the exception: the steps that redraw the physics of the envs they reset, 1 in 10 by
default, index them for Genesis' setters). Episode statistics reach rsl-rl's logger through
`extras["episode"]` once per rollout.
The actor observation is the 60-value layout of the Genesis backflip example (optionally followed by
future reference frames); the critic group optionally adds privileged state.
"""

from __future__ import annotations

import itertools
import random
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDict

import genesis as gs
from rsl_rl.env import VecEnv

from retarget.clip import Clip
from retarget.errors import InputError
from retarget.robot import load_robot

from ..config import NOMINAL_DR, ZERO_NOISE, resolve_path
from ..sim import build_scene
from ..utils.rotations import (quat_conj, quat_error_angle, quat_mul, quat_rotate, quat_rotate_inverse,
                               quat_to_rotvec)
from . import success, terminations
from .observations import ObservationSpec, pd_target, phase_encoding, policy_observation, residual_base
from .online_success import OnlineSuccess
from .reference import Reference, episode_length_s
from .rewards import RewardSum, State
from .start_sampler import StartSampler
from .stats import EpisodeStats


# What playback() switches and restores (terminations: the {name: limit} of those switched on).
_PLAYBACK_ATTRS = ("terminations", "dr", "any_delay", "max_episode_length", "action_scale", "_residual_base")

# Columns of the packed per-env state (see _allocate_buffers), in order.
_STATE_LAYOUT = dict(root_pos=3, root_quat=4, root_lin_vel=3, root_ang_vel_b=3, root_ang_vel=3, dof_pos=12, dof_vel=12,
                     root_lin_vel_b=3, projected_gravity=3, torque=12, foot_pos=12)
_START = dict(zip(_STATE_LAYOUT, itertools.accumulate([0, *_STATE_LAYOUT.values()])))


def _span(first: str, last: str | None = None) -> slice:
    """The packed state's columns of field `first` through field `last` (consecutive in _STATE_LAYOUT)."""
    last = last or first
    return slice(_START[first], _START[last] + _STATE_LAYOUT[last])


_RAW = _span("root_pos", "dof_vel")   # the columns read from Genesis; the others are derived from them
# The env's own per-env buffers that `snapshot` saves beside the simulator's state.
_SNAPSHOT_BUFFERS = ("_state_buf", "foot_contact", "pd_target", "actions", "last_actions", "init_quat", "frame",
                     "episode_length_buf", "episode_sums")


class ImitationEnv(VecEnv):
    def __init__(
        self,
        cfg: dict,
        clip: Clip | str | Path | None = None,
        num_envs: int | None = None,
        show_viewer: bool = False,
    ):
        """`cfg` is a loaded config (imitation.config.load_config); `clip` overrides cfg["clip"].

        Genesis must be initialized (gs.init) before; the env lives on gs.device.
        """
        self.cfg = cfg
        self.device = gs.device
        self.num_envs = int(num_envs or cfg["env"]["num_envs"])
        self.num_actions = 12
        self.dt = float(cfg["env"]["dt"])
        self.robot_desc = load_robot(resolve_path(cfg["robot"]))
        clip = self._load_reference(clip if clip is not None else cfg["clip"])
        self._read_settings(clip)
        self._build_scene(show_viewer)
        self._index_robot()
        self._setup_actuators()
        self._allocate_buffers()
        self._setup_statistics()
        self._tabulate_resets()
        self._warm_up()

    # ------------------------------------------------------------------ construction

    def _load_reference(self, clip):
        """The reference on the env's device, the episode length and the sampler of RSI start frames."""
        if clip is None:
            raise ValueError("no reference clip: set `clip` in the config or pass one")
        if not isinstance(clip, Clip):
            clip = resolve_path(clip)
        self.ref = Reference(clip, self.robot_desc, self.dt, self.device)
        ecfg = self.cfg["env"]
        self.episode_length_s = episode_length_s(ecfg, self.ref)
        self.max_episode_length = max(1, int(round(self.episode_length_s / self.dt)))  # clip frame of the time-out
        # RSI: anywhere before the time-out (a loop: in any of its cycles), uniformly or by recent failures
        span = self.max_episode_length if self.ref.loop else min(self.ref.last, self.max_episode_length)
        acfg = self.cfg["reset"]["adaptive"]
        self.start_sampler = StartSampler(span, self.device, adaptive=acfg["enabled"], bins=acfg["bins"],
                                          uniform=acfg["uniform"], decay=acfg["decay"], kernel=acfg["kernel"],
                                          kernel_size=acfg["kernel_size"])
        return clip

    def _read_settings(self, clip) -> None:
        """The config's action, observation, termination, reset, randomization and reward settings, as plain values
        and tensors."""
        cfg, dev, f32 = self.cfg, self.device, torch.float32
        ecfg, ocfg, tcfg = cfg["env"], cfg["env"]["observations"], cfg["termination"]
        self.action_scale = float(ecfg["action_scale"])
        self.clip_actions = float(ecfg["clip_actions"])
        self.residual = ecfg["action_mode"] == "residual"
        self.residual_lead = int(ecfg["residual_lead"])
        self.residual_velocity_gain = float(ecfg["residual_velocity_gain"])
        self.default_dof_pos = torch.tensor(self.robot_desc.default_pose, dtype=f32, device=dev)
        self.privileged_critic = ocfg["privileged_critic"]
        self.contact_force = float(tcfg["contact_force"])
        self.rsi = cfg["reset"]["rsi"]
        self.start_at_zero_fraction = float(cfg["reset"]["start_at_zero_fraction"])
        self.dr = cfg["domain_randomization"]
        self.dr_on = self.dr["enabled"]
        self.env_steps = 0  # training env steps so far (what a randomization curriculum follows)
        # Decides which steps redraw physics at their resets (see _randomize); seeded for reproducible runs.
        self._redraw_rng = random.Random(cfg.get("seed"))
        self.rewards = RewardSum(cfg["rewards"]["terms"], self.dt, cfg["rewards"]["scale_by_dt"])
        self.residual_base_kind = self._residual_base_kind(ecfg["residual_base"], clip)
        # Per clip frame k, the base of the residual PD target (None: around the default pose). Made once: step()
        # then does one row lookup.
        self._residual_base = residual_base(self.ref, self.residual_base_kind, self.residual_lead,
                                            self.residual_velocity_gain)
        self.obs_spec = ObservationSpec.from_config(cfg, self.ref, self.episode_length_s)

    def _build_scene(self, show_viewer: bool) -> None:
        """A plane and one Go2 per env, built for num_envs envs (per-env gains and masses under randomization)."""
        ecfg = self.cfg["env"]
        substeps = int(ecfg["substeps"])
        self.scene = gs.Scene(
            sim_options=gs.options.SimOptions(dt=self.dt, substeps=substeps),
            rigid_options=gs.options.RigidOptions(
                dt=self.dt / substeps,
                constraint_solver=gs.constraint_solver.Newton,
                enable_collision=True,
                enable_joint_limit=True,
                enable_self_collision=ecfg["self_collision"],
                max_collision_pairs=ecfg["max_collision_pairs"],
                batch_dofs_info=self.dr_on,   # per-env kp / kd
                batch_links_info=self.dr_on,  # per-env base mass
            ),
            viewer_options=gs.options.ViewerOptions(
                refresh_rate=int(1 / self.dt), camera_pos=(2.0, -2.0, 1.5), camera_lookat=(0.0, 0.0, 0.4)
            ),
            vis_options=gs.options.VisOptions(rendered_envs_idx=[0]),
            show_viewer=show_viewer,
        )
        self.plane = self.scene.add_entity(gs.morphs.URDF(file="urdf/plane/plane.urdf", fixed=True))
        self.robot = self.scene.add_entity(
            gs.morphs.URDF(
                file=str(self.robot_desc.urdf_path),
                pos=tuple(float(v) for v in self.ref.root_pos[0].cpu()),
                quat=tuple(float(v) for v in self.ref.root_quat[0].cpu()),
                links_to_keep=list(self.robot_desc.foot_names),
            )
        )
        build_scene(self.scene, n_envs=self.num_envs)
        self.rigid_solver = self.scene.sim.rigid_solver

    def _index_robot(self) -> None:
        """Genesis indices of the joints (in the robot's order FR, FL, RR, RL; Genesis orders dofs differently),
        feet, contact links and base."""
        robot, dev, tcfg = self.robot_desc, self.device, self.cfg["termination"]
        self.dof_idx = torch.tensor(
            [self.robot.get_joint(n).dofs_idx_local[0] for n in robot.joint_names], dtype=torch.long, device=dev
        )
        self.q_idx = torch.tensor(
            [self.robot.get_joint(n).qs_idx_local[0] for n in robot.joint_names], dtype=torch.long, device=dev
        )
        self.dof_idx_list = self.dof_idx.tolist()
        self.foot_link_idx = torch.tensor(
            [self.robot.get_link(n).idx_local for n in robot.foot_names], dtype=torch.long, device=dev
        )
        contact_links = tcfg["contact_links"] if tcfg["contact_links"] is not None else list(robot.body_links)
        self.contact_link_idx = torch.tensor(
            [self.robot.get_link(n).idx_local for n in contact_links], dtype=torch.long, device=dev
        )
        # {name: limit} of the early terminations switched on (imitation/env/terminations.py)
        self.terminations = terminations.limits({**tcfg, "body_contact": tcfg["body_contact"] and len(contact_links) > 0})
        self.base_link_idx = self.robot.get_link(robot.base_link).idx_local

    def _setup_actuators(self) -> None:
        """PD gains and torque limits of the joints."""
        ecfg, robot, dev = self.cfg["env"], self.robot_desc, self.device
        self.kp, self.kd = float(ecfg["kp"]), float(ecfg["kd"])
        self.robot.set_dofs_kp([self.kp] * 12, self.dof_idx_list)
        self.robot.set_dofs_kv([self.kd] * 12, self.dof_idx_list)
        effort = robot.effort if ecfg["torque_limits"] else np.full(12, 1e6)
        self.robot.set_dofs_force_range(-effort, effort, self.dof_idx_list)
        # The robot's actuator model, explicit (Genesis would otherwise give every joint 0.1 kg m^2 of armature).
        self.nominal_actuators = {k: torch.tensor(v, dtype=torch.float32, device=dev) for k, v in (
            ("armature", robot.armature), ("friction_loss", robot.friction_loss), ("joint_damping", robot.joint_damping))}
        self._set_actuators(None, **{k: v.expand(self.num_envs, 12) for k, v in self.nominal_actuators.items()})
        self.effort = torch.tensor(effort, dtype=torch.float32, device=dev)
        self.dof_lower = torch.tensor(robot.lower, dtype=torch.float32, device=dev)
        self.dof_upper = torch.tensor(robot.upper, dtype=torch.float32, device=dev)
        if self.dr_on:
            self.base_mass = float(self.robot.get_links_mass([self.base_link_idx])[0, 0])

    def _allocate_buffers(self) -> None:
        """The per-env buffers. The physical state lives in one packed tensor (named views into it), so a reset
        rewrites it with a single masked copy. The order of _STATE_LAYOUT lets _read_state copy Genesis' free-base
        pose (qpos 0-6) and velocities (dofs 0-5) with one copy each, rotate root_lin_vel_b and projected_gravity in
        one call, and check the raw state for non-finite values in one slice (_RAW)."""
        n, dev, f32 = self.num_envs, self.device, torch.float32
        z = lambda *s: torch.zeros(n, *s, dtype=f32, device=dev)  # noqa: E731
        self._state_buf = z(sum(_STATE_LAYOUT.values()))
        views = torch.split(self._state_buf, list(_STATE_LAYOUT.values()), dim=1)
        for name, v in zip(_STATE_LAYOUT, views):
            setattr(self, name, v)
        self._root_pose = self._state_buf[:, _span("root_pos", "root_quat")]
        self._root_vel = self._state_buf[:, _span("root_lin_vel", "root_ang_vel_b")]
        self._vel_b_gravity = self._state_buf[:, _span("root_lin_vel_b", "projected_gravity")].view(n, 2, 3)
        self.foot_pos = self.foot_pos.view(n, 4, 3)
        self._lin_vel_gravity = torch.zeros(n, 2, 3, dtype=f32, device=dev)
        self._lin_vel_gravity[:, 1, 2] = -1.0
        self.foot_contact = torch.zeros(n, 4, dtype=torch.bool, device=dev)
        self.pd_target = z(12)
        self.kp_env = torch.full((n, 1), self.kp, dtype=f32, device=dev)
        self.kd_env = torch.full((n, 1), self.kd, dtype=f32, device=dev)
        self.actions, self.last_actions = z(12), z(12)
        self.init_quat = z(4)
        self.frame = torch.zeros(n, dtype=torch.long, device=dev)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=dev)
        latency = bool(self.cfg["env"]["action_latency"])
        self.delayed = torch.full((n,), latency, dtype=torch.bool, device=dev)
        self.any_delay = latency or (self.dr_on and self.dr["action_latency_probability"] > 0)
        self.episode_sums = z(len(self.rewards.names))
        # The phase encoding of every frame a training episode reaches: a lookup per step instead of computing it.
        self._phase_table = phase_encoding(self.obs_spec, torch.arange(self.max_episode_length + 1, device=dev))
        self.gravity = torch.tensor([0.0, 0.0, -1.0], dtype=f32, device=dev).expand(n, 3)
        self.extras: dict = {}
        self.termination_reasons = torch.zeros(n, len(terminations.TERMS), dtype=torch.bool, device=dev)

    def _setup_statistics(self) -> None:
        """Episode statistics for rsl-rl's logger, and the learning curves of the episodes that start at t = 0,
        judged against the reference's own outcome."""
        dev = self.device
        self.stats = EpisodeStats(
            names=[f"rew_{t}" for t in self.rewards.names] + [f"Termination/{t}" for t in (*terminations.TERMS, "time_out")],
            counters=["Physics/faults"],
            steps=["Tracking/joint_pos_rmse", "Tracking/root_pos_error", "Tracking/root_orientation_error",
                   "Tracking/foot_pos_error"],
            device=dev,
            interval=self.cfg["ppo"]["num_steps_per_env"],
        )
        self._fault_count = torch.zeros((), device=dev)
        self.success_tolerances = self.cfg["success"]
        self.online_success = OnlineSuccess(self.num_envs, self.dt, dev,
                                            success.expected(self.ref, 0, self.max_episode_length),
                                            self.success_tolerances, loop=self.ref.loop)

    def _tabulate_resets(self) -> None:
        """Reset rows of every clip frame without initial-state noise: a reset without noise (the usual case, DR on
        or off) only gathers rows of this table. Noise, if configured (read at each reset: evaluation switches it),
        is drawn per reset instead. A looping clip's table spans a whole episode: its cycles are offset from each
        other."""
        dev = self.device
        table_frames = max(self.ref.num_frames, self.max_episode_length + 1) if self.ref.loop else self.ref.num_frames
        self._reset_table = self._reset_rows(torch.arange(table_frames, device=dev), noise=False)
        # The scene's geoms (plane and robot), which all get an env's friction ratio in one setter call.
        self._friction_geoms = list(range(self.plane.geom_start, self.plane.geom_end)) + list(
            range(self.robot.geom_start, self.robot.geom_end))

    def _warm_up(self) -> None:
        """Touch every Genesis accessor step() uses, so that the tensor views Genesis caches on first use are made
        here and not under rsl-rl's torch.inference_mode (such views refuse later in-place writes outside inference
        mode, e.g. when evaluating after training in the same process); then reset every env."""
        n, dev = self.num_envs, self.device
        self.robot.control_dofs_position(self.default_dof_pos.expand(n, 12).contiguous(), self.dof_idx_list)
        self.rigid_solver.get_error_envs_mask()
        self._reset(torch.ones(n, dtype=torch.bool, device=dev))
        self._read_state()
        self.obs = self._observations()

    def _residual_base_kind(self, setting: str, clip) -> str | None:
        """What the residual PD target is built around: "reference", "pd_target", or None (action mode default)."""
        if not self.residual:
            return None
        has = self.ref.pd_target is not None
        if setting == "pd_target" and not has:
            raise InputError(f"{getattr(clip, 'name', clip)}: env.residual_base is pd_target but the clip has no "
                             f"'pd_target' dataset (make one with: imitation refine)")
        return "pd_target" if setting == "pd_target" or (setting == "auto" and has) else "reference"

    # ------------------------------------------------------------------ VecEnv interface

    def get_observations(self) -> TensorDict:
        return self.obs

    def step(self, actions: torch.Tensor):
        # 1. actions -> PD targets -> physics
        self.actions[:] = actions.to(self.device).clamp(-self.clip_actions, self.clip_actions)
        executed = torch.where(self.delayed[:, None], self.last_actions, self.actions) if self.any_delay else self.actions
        pd_target(self._residual_base if self.residual else None, self.ref, self.frame, self.default_dof_pos,
                  executed, self.action_scale, out=self.pd_target)
        self.robot.control_dofs_position(self.pd_target, self.dof_idx_list)
        self.scene.step()
        self.frame += 1
        self.episode_length_buf += 1
        self.env_steps += self.num_envs
        self._read_state()

        # 2. terminations
        ref = self.ref.frame(self.frame)
        # root pose, velocities (world and body angular), joints: the state as read (derived values follow)
        fault = ~torch.isfinite(self._state_buf[:, _RAW]).all(-1) | self.rigid_solver.get_error_envs_mask().to(
            self.device)
        orientation_error = quat_error_angle(self.root_quat, ref.root_quat)
        state = self.state()
        reasons = terminations.evaluate(state, ref, self.terminations, orientation_error) & ~fault[:, None]
        terminated = reasons.any(-1)
        self.start_sampler.record(self.frame, terminated)
        time_out = (self.frame >= self.max_episode_length) & ~terminated & ~fault
        dones = terminated | time_out | fault

        # 3. rewards (zero for envs whose physics failed)
        terms = torch.nan_to_num(self.rewards(state, ref), nan=0.0, posinf=0.0, neginf=0.0)
        terms.masked_fill_(fault[:, None], 0.0)
        rewards = terms.sum(-1)
        self.episode_sums += terms
        self.termination_reasons = reasons

        # 4. logging, reset, observations. (On CPU, skipping the reset when no env is done is free;
        # on a GPU that test would be a host sync, and the masked reset of no env is cheap there.)
        any_done = self.device.type != "cpu" or bool(dones.any())
        self._log(ref, dones, any_done, reasons, time_out, fault, orientation_error)
        if any_done:
            self._reset(dones, redraw_physics=self._redraw_rng.random() * self.dr["physics_redraw_every"] < 1.0)
        self.obs = self._observations()
        self.last_actions[:] = self.actions
        self.extras["time_outs"] = time_out.to(torch.float32)
        return self.obs, rewards, dones, self.extras

    # ------------------------------------------------------------------ state

    def _read_state(self) -> None:
        r = self.robot
        qpos, qvel = r.get_qpos(), r.get_dofs_velocity()
        self._root_pose.copy_(qpos[:, 0:7])         # root_pos, root_quat
        self._root_vel.copy_(qvel[:, 0:6])          # free joint: world-frame linear, body-frame angular velocity
        self.dof_pos.copy_(qpos.index_select(1, self.q_idx))  # (index_select: ~4x faster than [:, idx] on CPU)
        self.dof_vel.copy_(qvel.index_select(1, self.dof_idx))
        self.root_ang_vel.copy_(quat_rotate(self.root_quat, self.root_ang_vel_b))
        # root_lin_vel_b and projected_gravity: one inverse rotation of (lin_vel, gravity)
        self._lin_vel_gravity[:, 0] = self.root_lin_vel
        self._vel_b_gravity.copy_(quat_rotate_inverse(self.root_quat[:, None, :], self._lin_vel_gravity))
        # PD torque at the new state, clamped at the effort limits (what get_dofs_control_force computes).
        tau = self.kp_env * (self.pd_target - self.dof_pos) - self.kd_env * self.dof_vel
        torch.clamp(tau, -self.effort, self.effort, out=self.torque)
        self.foot_pos.copy_(r.get_links_pos(self.foot_link_idx))
        self.contact_forces = r.get_links_net_contact_force()
        force = torch.linalg.vector_norm(self.contact_forces, dim=-1)  # (n, n_links)
        torch.gt(force.index_select(1, self.foot_link_idx), 1.0, out=self.foot_contact)
        # Any non-foot ground contact (the links of termination.contact_links), whether it terminates or not.
        self.body_contact_now = (force.index_select(1, self.contact_link_idx) > self.contact_force).any(-1)

    def state(self) -> State:
        """The current state as reward terms see it."""
        return State(
            time=self.frame * self.dt, episode_time=self.episode_length_buf * self.dt, dt=self.dt,
            root_pos=self.root_pos, root_quat=self.root_quat, init_quat=self.init_quat,
            root_lin_vel=self.root_lin_vel, root_ang_vel=self.root_ang_vel,
            root_lin_vel_b=self.root_lin_vel_b, root_ang_vel_b=self.root_ang_vel_b,
            projected_gravity=self.projected_gravity, dof_pos=self.dof_pos, dof_vel=self.dof_vel,
            default_dof_pos=self.default_dof_pos, torque=self.torque, foot_pos=self.foot_pos,
            foot_contact=self.foot_contact, actions=self.actions, last_actions=self.last_actions,
            body_contact=self.body_contact_now,
        )

    @contextmanager
    def playback(self, steps: int, *, dr_ranges: dict | None = None, latency: bool | None = None,
                 residual_base: torch.Tensor | None = None, action_scale: float | None = None):
        """The env's playback mode, for rollouts that evaluate, record, render or refine: early terminations and
        the time-out off for `steps` control steps (body contact is still detected), and optionally

        - `dr_ranges` (an env built with domain randomization): the ranges resets draw from (NOMINAL_DR: the
          nominal robot), without initial-state noise;
        - `latency`: the action latency of every env (the latency probability then comes from `dr_ranges`);
        - `residual_base` (num_frames, 12) and `action_scale`: the PD target's base and the action's scale.

        Everything is restored on exit and all envs are reset. Callers reset the envs to their start frames."""
        saved = {a: getattr(self, a) for a in _PLAYBACK_ATTRS}
        saved_delayed = self.delayed.clone()
        all_envs = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        try:
            self.terminations = {}
            self.max_episode_length = steps + 1
            self.dr = {**self.dr, "curriculum_env_steps": 0}  # evaluations draw from the full ranges
            if self.dr_on and dr_ranges is not None:
                # (actuator ranges not given: the nominal actuator model)
                self.dr = {**self.dr, **{k: dr_ranges.get(k, NOMINAL_DR[k]) for k in NOMINAL_DR},
                           "init_noise": dict(ZERO_NOISE)}
            if latency is not None:
                self.delayed.fill_(latency)
                self.any_delay = latency or (self.dr_on and self.dr["action_latency_probability"] > 0)
            if residual_base is not None:
                if not self.residual:
                    raise ValueError("playback with a residual base needs an env in residual action mode")
                self._residual_base = residual_base.to(self.device, torch.float32)
            if action_scale is not None:
                self.action_scale = float(action_scale)
            yield self
        finally:
            for a, v in saved.items():
                setattr(self, a, v)
            self.delayed.copy_(saved_delayed)
            self.reset_envs(all_envs)

    # ------------------------------------------------------------------ reset

    def reset_envs(self, mask: torch.Tensor, frames: torch.Tensor | None = None,
                   redraw_physics: bool = True) -> TensorDict:
        """Reset the envs in `mask` (n,) bool, at clip `frames` (n,) if given (with domain randomization: new physics
        for all of them if `redraw_physics`, else they keep theirs); returns the observations."""
        self._reset(mask, frames, redraw_physics)
        self.obs = self._observations()
        return self.obs

    def snapshot(self) -> dict[str, torch.Tensor]:
        """Every env's state as an open-loop continuation needs it (the simulator's joint positions and
        velocities, the state read from them, the PD target and actions, the clip frame and episode step), for
        `restore`. Episode statistics and the start sampler are not part of it."""
        return {"qpos": self.robot.get_qpos().clone(), "qvel": self.robot.get_dofs_velocity().clone(),
                **{name: getattr(self, name).clone() for name in _SNAPSHOT_BUFFERS}}

    def restore(self, snapshot: dict[str, torch.Tensor], rows: torch.Tensor) -> TensorDict:
        """Put every env i in the state of env `rows[i]` of `snapshot` (physics parameters stay as set);
        returns the observations. Stepping on continues that env's rollout."""
        rows = rows.to(self.device).long()
        self.robot.set_dofs_velocity(snapshot["qvel"][rows], skip_forward=True)
        self.robot.set_qpos(snapshot["qpos"][rows], zero_velocity=False)
        for name in _SNAPSHOT_BUFFERS:
            getattr(self, name).copy_(snapshot[name][rows])
        self.obs = self._observations()
        return self.obs

    def reward_terms(self) -> torch.Tensor:
        """(n, n_terms) weighted reward terms of the current state against the current frame."""
        return self.rewards(self.state(), self.ref.frame(self.frame))

    def _reset(self, mask: torch.Tensor, frames: torch.Tensor | None = None, redraw_physics: bool = True) -> None:
        """Reset the envs in `mask` (n,) bool to the reference state at a sampled clip frame (with domain
        randomization: new physics if `redraw_physics`, else the envs keep theirs)."""
        n, dev = self.num_envs, self.device
        # Start frames: uniform over the clip (RSI) with a share at t = 0.
        if frames is not None:
            start = frames.to(dev).long()
        elif self.rsi:
            start = self.start_sampler.sample(n)
            start = torch.where(torch.rand(n, device=dev) < self.start_at_zero_fraction, 0, start)
        else:
            start = torch.zeros(n, dtype=torch.long, device=dev)
        if self.dr_on and any(self.dr["init_noise"].values()):  # initial-state noise: computed per reset
            vel, qpos, new_state, foot_contact = self._reset_rows(start)
        else:                                                   # no noise: rows of the table of every clip frame
            rows = start.clamp(0, len(self._reset_table[0]) - 1)
            vel, qpos, new_state, foot_contact = (t.index_select(0, rows) for t in self._reset_table)
        # Genesis: velocities first (no forward pass), then the pose with forward kinematics.
        self.robot.set_dofs_velocity(vel, envs_idx=mask, skip_forward=True)
        self.robot.set_qpos(qpos, envs_idx=mask, zero_velocity=False)
        if self.dr_on:
            self._randomize(mask, redraw_physics)

        # Buffers of the reset envs from the state just written (no read-back needed).
        m = mask[:, None]
        quat, dof_pos = new_state[:, _span("root_quat")], new_state[:, _span("dof_pos")]
        torch.where(m, new_state, self._state_buf, out=self._state_buf)
        torch.where(m, quat, self.init_quat, out=self.init_quat)
        torch.where(m, foot_contact, self.foot_contact, out=self.foot_contact)
        torch.where(m, dof_pos, self.pd_target, out=self.pd_target)
        self.actions.masked_fill_(m, 0.0)
        self.last_actions.masked_fill_(m, 0.0)
        self.episode_sums.masked_fill_(m, 0.0)
        torch.where(mask, start, self.frame, out=self.frame)
        self.online_success.reset(mask, start, self.root_pos, self.root_quat)
        self.episode_length_buf.masked_fill_(mask, 0)

    def _reset_rows(self, start: torch.Tensor, noise: bool = True):
        """Reset state at clip frames `start` (k,), with initial-state noise if randomizing (and `noise`): Genesis
        dof velocities (k, n_dofs), qpos (k, n_qs), the packed state buffer rows (k, width) and foot contacts."""
        k, dev = len(start), self.device
        ref = self.ref.frame(start)
        pos, quat, lin_vel, ang_vel_b = ref.root_pos, ref.root_quat, ref.root_lin_vel, ref.root_ang_vel_b
        dof_pos, dof_vel = ref.dof_pos, ref.dof_vel
        if self.dr_on:
            pos, quat, lin_vel, ang_vel_b, dof_pos, dof_vel = self._init_noise(
                pos, quat, lin_vel, ang_vel_b, dof_pos, dof_vel, self.dr["init_noise"] if noise else {})
        # Genesis: free-base dofs 0-2 take the world linear velocity, 3-5 the BODY angular velocity.
        vel = torch.zeros(k, self.robot.n_dofs, device=dev)
        vel[:, 0:3], vel[:, 3:6] = lin_vel, ang_vel_b
        vel[:, self.dof_idx] = dof_vel
        qpos = torch.zeros(k, self.robot.n_qs, device=dev)
        qpos[:, 0:3], qpos[:, 3:7] = pos, quat
        qpos[:, self.q_idx] = dof_pos
        gravity = self.gravity[:1].expand(k, 3)
        fields = dict(root_pos=pos, root_quat=quat, root_lin_vel=lin_vel, root_ang_vel_b=ang_vel_b,
                      root_ang_vel=quat_rotate(quat, ang_vel_b), dof_pos=dof_pos, dof_vel=dof_vel,
                      root_lin_vel_b=quat_rotate_inverse(quat, lin_vel),
                      projected_gravity=quat_rotate_inverse(quat, gravity), torque=torch.zeros_like(dof_pos),
                      foot_pos=ref.foot_pos.reshape(k, 12))
        new_state = torch.cat([fields[name] for name in _STATE_LAYOUT], dim=1)
        return vel, qpos, new_state, ref.foot_contact

    def _init_noise(self, pos, quat, lin_vel, ang_vel_b, dof_pos, dof_vel, stds: dict):
        """Gaussian noise of standard deviations `stds` (a missing or zero one: none, and no draw) on the reset
        state; joint positions clamped to their limits in any case."""
        rn = lambda x, name: x + stds[name] * torch.randn_like(x) if stds.get(name) else x  # noqa: E731
        if stds.get("root_rot"):
            rotvec = stds["root_rot"] * torch.randn_like(pos)
            angle = torch.linalg.vector_norm(rotvec, dim=-1, keepdim=True)
            axis = rotvec / angle.clamp_min(1e-9)
            dq = torch.cat([torch.cos(angle / 2), axis * torch.sin(angle / 2)], dim=-1)
            quat = quat_mul(dq, quat)
        dof_pos = torch.max(torch.min(rn(dof_pos, "dof_pos"), self.dof_upper), self.dof_lower)
        return (rn(pos, "root_pos"), quat, rn(lin_vel, "root_lin_vel"), rn(ang_vel_b, "root_ang_vel"),
                dof_pos, rn(dof_vel, "dof_vel"))

    def _randomize(self, mask: torch.Tensor, redraw_physics: bool = True) -> None:
        """Domain randomization of the envs being reset.

        The action latency is drawn at every reset (masked, without a host sync, where the physics is kept). Friction,
        base mass and kp / kd only if `redraw_physics`: an env that resets without keeps the values of its previous
        episode, themselves a draw from the same ranges, so every episode still runs with randomized physics.
        The redraw is what costs: Genesis recomputes the inverse weights of the trees whose mass changes (a large
        share of step()'s time if done at every reset: docs/performance.md), and its setters take the envs as
        indices (a host sync on a GPU). step() redraws on a random 1 in `physics_redraw_every` of its steps, drawn
        per step and not per env, so the envs whose episodes end in lockstep are not left out."""
        dev, d = self.device, self.dr
        s = self.randomization_scale()
        latency, p_latency = bool(self.cfg["env"]["action_latency"]), d["action_latency_probability"] * s
        if not redraw_physics:
            if p_latency > 0:
                torch.where(mask, (torch.rand(self.num_envs, device=dev) < p_latency) | latency, self.delayed,
                            out=self.delayed)
            return
        idx = mask.nonzero(as_tuple=False).squeeze(-1)
        k = len(idx)
        if k == 0:
            return

        def u(lo_hi, nominal, *shape):  # a draw from the full range, pulled towards nominal by the curriculum's s
            x = lo_hi[0] + (lo_hi[1] - lo_hi[0]) * torch.rand(k, *shape, device=dev)
            return x if s == 1.0 else nominal + s * (x - nominal)

        friction = u(d["friction"], NOMINAL_DR["friction"][0], 1)
        added_mass = u(d["added_base_mass"], NOMINAL_DR["added_base_mass"][0], 1)
        self.set_physics(idx, friction, added_mass, u(d["kp_scale"], 1.0, 1), u(d["kd_scale"], 1.0, 1),
                         {name: nominal.expand(k, 12) if d.get(name) is None else u(d[name], nominal, 12)
                          for name, nominal in self.nominal_actuators.items()})
        if p_latency > 0:  # after the physics, per reset env: the order of the draws a seeded evaluation repeats
            self.delayed[idx] = (torch.rand(k, device=dev) < p_latency) | latency

    def randomization_scale(self) -> float:
        """How far the randomization's draws reach from the nominal robot towards the full ranges (0-1): 1 unless
        `domain_randomization.curriculum_env_steps` makes it grow with the training env steps."""
        steps = self.dr.get("curriculum_env_steps", 0)
        return 1.0 if not steps else min(1.0, self.env_steps / steps)

    def set_physics(self, idx: torch.Tensor, friction, added_mass, kp_scale, kd_scale,
                    actuators: dict | None = None) -> None:
        """Friction ratio, added base mass (kg) and kp / kd scales, each (k, 1), and the actuator model (armature,
        friction_loss, joint_damping, each (k, 12); None: the robot's nominal one) of the envs `idx` (k,) (an env
        built with domain randomization: per-env gains and masses)."""
        k = len(idx)
        # One solver call for the geoms of both entities (what set_friction_ratio of each does, in one kernel).
        geoms = self._friction_geoms
        self.rigid_solver.set_geoms_friction_ratio(friction.expand(k, len(geoms)), geoms, idx)
        self.robot.set_links_mass(self.base_mass + added_mass, [self.base_link_idx], idx)
        kp, kd = self.kp * kp_scale, self.kd * kd_scale
        self.kp_env[idx], self.kd_env[idx] = kp, kd
        self.robot.set_dofs_kp(kp.expand(k, 12), self.dof_idx_list, idx)
        self.robot.set_dofs_kv(kd.expand(k, 12), self.dof_idx_list, idx)
        if actuators is None:
            actuators = {name: nominal.expand(k, 12) for name, nominal in self.nominal_actuators.items()}
        self._set_actuators(idx, **actuators)

    def _set_actuators(self, idx: torch.Tensor | None, armature, friction_loss, joint_damping) -> None:
        """Armature (kg m^2), friction loss (N m) and passive damping (N m s/rad), each (k, 12), of the envs `idx`
        (k,) (None: all envs; the same values for every env unless the scene has per-env dofs)."""
        if idx is None and not self.dr_on:
            armature, friction_loss, joint_damping = armature[0], friction_loss[0], joint_damping[0]
        self.robot.set_dofs_armature(armature, self.dof_idx_list, idx)
        self.robot.set_dofs_frictionloss(friction_loss, self.dof_idx_list, idx)
        self.robot.set_dofs_damping(joint_damping, self.dof_idx_list, idx)

    # ------------------------------------------------------------------ observations

    def _observations(self) -> TensorDict:
        if self.max_episode_length < len(self._phase_table):
            phase = self._phase_table.index_select(0, self.frame.clamp(max=self.max_episode_length))
        else:  # evaluation or rendering runs episodes past the training length
            phase = None
        policy = policy_observation(
            self.obs_spec, self.ref, self.frame, root_quat=self.root_quat, root_ang_vel_b=self.root_ang_vel_b,
            projected_gravity=self.projected_gravity, dof_pos=self.dof_pos, dof_vel=self.dof_vel,
            default_dof_pos=self.default_dof_pos, actions=self.actions, last_actions=self.last_actions, phase=phase,
            root_pos=self.root_pos)
        critic = policy
        if self.privileged_critic:
            ref = self.ref.frame(self.frame)
            rel = quat_mul(quat_conj(self.root_quat), ref.root_quat)
            critic = torch.cat(
                [
                    policy,
                    self.root_lin_vel_b * 2.0,
                    self.root_pos[:, 2:3],
                    self.foot_contact.to(torch.float32),
                    self.dof_pos - ref.dof_pos,
                    quat_rotate_inverse(self.root_quat, ref.root_pos - self.root_pos),
                    quat_to_rotvec(rel),
                ],
                dim=-1,
            )
        return TensorDict({"policy": policy, "critic": critic}, batch_size=[self.num_envs], device=self.device)

    # ------------------------------------------------------------------ logging

    def _log(self, ref, dones, any_done: bool, reasons, time_out, fault, orientation_error) -> None:
        if any_done:
            episode_values = torch.cat([self.episode_sums, reasons.to(torch.float32), time_out[:, None].to(torch.float32)],
                                       -1)
            self.stats.add_episodes(dones, episode_values)
        n_fault = fault.sum().to(torch.float32)
        self._fault_count += n_fault
        self.stats.add_counts(n_fault[None])
        errors = torch.stack(
            [
                torch.sqrt(torch.mean(torch.square(self.dof_pos - ref.dof_pos), dim=-1)),
                torch.linalg.vector_norm(self.root_pos - ref.root_pos, dim=-1),
                orientation_error,
                torch.linalg.vector_norm(self.foot_pos - ref.foot_pos, dim=-1).mean(-1),
            ],
            dim=-1,
        )
        errors.masked_fill_(fault[:, None], 0.0)  # (not a product with 0: NaN * 0 is NaN)
        self.stats.add_step(errors.sum(0) / (self.num_envs - n_fault).clamp(min=1))  # mean over the envs without faults
        self.online_success.step(self.root_quat, self.body_contact_now, self.foot_contact, torch.square(errors[:, 0]),
                                 errors[:, 2])
        self.online_success.end(dones, time_out, self.root_pos, self.root_quat, self.foot_pos[..., 2])
        window = self.stats.tick()
        if window is not None:
            window.update(self.online_success.emit())
            if self.dr_on and self.dr.get("curriculum_env_steps"):
                window["Curriculum/randomization_scale"] = torch.tensor(self.randomization_scale())
            self.extras["episode"] = window
        else:
            self.extras.pop("episode", None)

    @property
    def num_faults(self) -> int:
        """Envs reset because of a physics fault since construction (syncs: not for the hot loop)."""
        return int(self._fault_count.item())

    def desynchronize(self) -> None:
        """Spread the episode clocks of all envs uniformly over one episode (what rsl-rl's
        init_at_random_ep_len does, applied to both counters the env keeps), so that envs that all start
        at t = 0 (no RSI) do not run in lockstep and every rollout sees every phase. Only the first
        episodes are cut short; they do not count as episodes starting at t = 0."""
        t = torch.randint(0, self.max_episode_length, (self.num_envs,), device=self.device)
        self.frame.copy_(t)
        self.episode_length_buf.copy_(t)
        self.online_success.from_zero &= t == 0
        self.obs = self._observations()

    def set_log_interval(self, steps: int) -> None:
        self.stats.interval = steps

    def close(self) -> None:
        pass
