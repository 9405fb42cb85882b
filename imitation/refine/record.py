"""Physics recording of a clip: replay it in the Genesis env with zero policy action and store what the
simulated robot did as a new clip.

The replay uses the env's own control path (`ImitationEnv.step` with zero actions): PD targets from the
config's action mode (residual: reference of frame k + lead, plus the velocity feed-forward), gains, torque
limits and physics. It starts at t = 0 in the clip's first frame, one deterministic episode without
terminations, time-out or domain randomization. The result is written in the project's one clip schema
(`retarget.clip`): base pose, joint angles and foot positions as simulated, foot contacts from the
Genesis foot contact forces, velocities recomputed by the Clip from the recorded positions. Such a clip
is physically exact for this simulator and these PD settings: every frame, including the in-flight
states that reference state initialization starts from, is a state the robot really passes through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from retarget.clip import Clip, read_clip, sha256_of
from retarget.errors import InputError

from .. import config as config_mod
from ..config import NOMINAL_DR, resolve_path
from ..env.rollout import rollout

CONTACT_FORCE = 1.0        # N, a foot is on the ground (as the env's foot_contact)
START_CONTACT_HEIGHT = 0.005  # m above the foot radius: contact of the first frame (no forces before a step)


@dataclass
class Recording:
    clip: Clip
    body_contact_time: float | None = None   # s, first non-foot ground contact (None: none)
    faulted: bool = False
    settings: dict = field(default_factory=dict)


def pd_settings(cfg: dict) -> dict:
    """The settings of a config that decide what a zero-action replay does."""
    e = cfg["env"]
    out = {k: e[k] for k in ("dt", "substeps", "kp", "kd", "action_mode", "action_scale", "torque_limits",
                             "self_collision", "action_latency")}
    if e["action_mode"] == "residual":
        out.update(residual_lead=e["residual_lead"], residual_velocity_gain=e["residual_velocity_gain"])
    out["termination_contact_force_n"] = cfg["termination"]["contact_force"]
    return out


def record(env, *, seconds: float | None = None, stop_on_fall: bool = False, actions: torch.Tensor | None = None,
           simulated_velocities: bool = False, store_pd_target: bool = False, residual_base=None,
           action_scale: float | None = None, latency: bool | None = None) -> Recording:
    """Replay the env's reference from frame 0 with zero actions, or with `actions` (steps, 12): the action of
    every env at each step; record env 0.

    `seconds`: length of the recording (default: the clip's duration, or the length of `actions`; past the
    clip's end the PD targets hold the last frame). `stop_on_fall`: stop at the first body contact (the clip is
    then incomplete). `simulated_velocities`: store the simulator's velocities instead of differences of the
    recorded positions. `store_pd_target`: store the PD targets applied at each step (`pd_target`: an env whose
    residual base is the clip's pd_target then replays the recording with zero action). `residual_base` and
    `action_scale` replace the env's for the recording (see ImitationEnv.playback); `latency` the config's action
    latency.
    The env runs in playback mode: no terminations or time-out, the nominal robot (an env built with domain
    randomization draws its nominal values), the config's action latency; all envs are reset afterwards.
    """
    import genesis as gs

    if seconds is not None:
        steps = max(1, int(round(seconds / env.dt)))
    else:
        steps = env.ref.last if actions is None else len(actions)
    if actions is not None and len(actions) < steps:
        raise ValueError(f"record: {len(actions)} actions for {steps} steps")
    robot = env.robot_desc
    names = ("root_pos", "root_quat", "dof_pos", "foot_pos", "root_lin_vel", "root_ang_vel", "dof_vel")
    rows: dict[str, list] = {k: [] for k in (*names, "foot_contact", "pd_target")}
    outcome = {"body_time": None, "faulted": False}

    def sample(contact):
        for name in names:
            rows[name].append(getattr(env, name)[0].double().cpu().numpy().copy())
        rows["foot_contact"].append(contact)

    def on_step(k, dones):
        if k == 0:
            # The reset state; foot positions from Genesis' forward kinematics, contact by height.
            env.foot_pos.copy_(env.robot.get_links_pos(env.foot_link_idx))
            z0 = env.foot_pos[0, :, 2].cpu().numpy() - robot.foot_radius
            sample(z0 < START_CONTACT_HEIGHT)
            return True
        if bool(dones[0]):  # no termination, no time-out before `steps`: a physics fault
            outcome["faulted"] = True
            return False
        rows["pd_target"].append(env.pd_target[0].double().cpu().numpy().copy())
        sample(env.foot_contact[0].cpu().numpy().copy())
        if outcome["body_time"] is None and bool(env.body_contact_now[0]):
            outcome["body_time"] = k * env.dt
            return not stop_on_fall
        return True

    latency = bool(env.cfg["env"]["action_latency"]) if latency is None else latency
    with env.playback(steps, dr_ranges=NOMINAL_DR, latency=latency, residual_base=residual_base,
                      action_scale=action_scale):
        rollout(env, steps, actions, on_step)
    body_time, faulted = outcome["body_time"], outcome["faulted"]

    rows["pd_target"].append(rows["pd_target"][-1] if rows["pd_target"] else rows["dof_pos"][0])
    arr = {k: np.stack(v) for k, v in rows.items()}
    dev = env.device
    settings = {
        "method": "physics recording: zero-action replay of the source clip in Genesis, from t = 0",
        "simulator": f"genesis-world {getattr(gs, '__version__', '?')}, backend {'cpu' if dev.type == 'cpu' else dev.type}",
        "pd": pd_settings(env.cfg),
        "policy_action": 0.0,
        "foot_contact": f"Genesis foot contact force > {CONTACT_FORCE:g} N "
                        f"(frame 0: foot within {START_CONTACT_HEIGHT * 1000:g} mm of the ground)",
        "velocities": "the simulator's" if simulated_velocities else
                      "recomputed from the recorded positions (central differences)",
        "recorded_seconds": (len(arr["root_pos"]) - 1) * env.dt,
        "body_contact_time_s": body_time,
    }
    velocities = {k: arr[k] for k in ("root_lin_vel", "root_ang_vel", "dof_vel")} if simulated_velocities else {}
    clip = Clip(
        fps=1.0 / env.dt, root_pos=arr["root_pos"], root_quat=arr["root_quat"], dof_pos=arr["dof_pos"],
        foot_pos=arr["foot_pos"], foot_contact=arr["foot_contact"], joint_names=tuple(robot.joint_names),
        foot_names=tuple(robot.foot_names), robot=robot.name, loop_mode="none", retarget_settings=settings,
        pd_target=arr["pd_target"] if store_pd_target else None, **velocities,
    )
    return Recording(clip=clip, body_contact_time=body_time, faulted=faulted, settings=settings)


def record_clip(source: str | Path, output: str | Path, *, config: str | Path | None = None,
                seconds: float | None = None, allow_fall: bool = False, device: str = "cpu", env=None) -> Recording:
    """`imitation record`: replay `source` with the PD settings of `config`, write the recording to `output`.

    `env`: an already built ImitationEnv whose reference is `source` (tests reuse one); `config` is then
    only named in the settings. Raises InputError (nothing written) when the replay falls, unless `allow_fall`.
    """
    from retarget.clip import write_clip
    from retarget.quality import quality_report

    source = Path(source)
    if not resolve_path(source).is_file():
        raise InputError(f"{source}: clip not found")
    source_path = resolve_path(source)
    if seconds is not None and not seconds > 0:
        raise InputError(f"--seconds must be positive, got {seconds}")
    if env is None:
        if config is None:
            raise InputError("record: a config file is needed (its PD settings replay the clip)")
        cfg = config_mod.load_config(config, {
            "clip": str(source_path.resolve()), "env": {"num_envs": 1}, "reset": {"rsi": False},
            "domain_randomization": {"enabled": False},
        })
        from retarget.robot import load_robot

        read_clip(source_path, load_robot(resolve_path(cfg["robot"])))  # bad input fails before Genesis starts
        torch.set_num_threads(1)
        from ..sim import init_genesis

        init_genesis(device)
        from ..env.imitation_env import ImitationEnv

        env = ImitationEnv(cfg)
    rec = record(env, seconds=seconds, stop_on_fall=not allow_fall)
    if rec.faulted:
        raise InputError(f"{source}: the replay hit a physics fault after {rec.clip.duration:.2f} s; nothing written")
    if rec.body_contact_time is not None and not allow_fall:
        raise InputError(f"{source}: the replay falls (body contact at t = {rec.body_contact_time:.2f} s) with the "
                         f"settings of {config or 'the env'}; nothing written (--allow-fall records it anyway)")
    clip = rec.clip
    clip.source_file = source_path.name
    clip.source_sha256 = sha256_of(source_path)
    clip.retarget_settings["config"] = str(config) if config is not None else None
    clip.quality = quality_report(clip, env.robot_desc)
    write_clip(clip, output)
    return rec
