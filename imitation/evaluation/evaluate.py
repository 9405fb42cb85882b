"""Evaluate a policy: deterministic rollouts from t = 0 in the Genesis env, nominal or under domain
randomization, scored with `imitation.analysis.metrics` against the reference clip.

A policy (imitation.evaluation.policy) runs with its run's config; an external TorchScript policy (e.g. the
official `single.pt`) with the settings of the Genesis example it was made for (`OFFICIAL_SETTINGS`:
phase = pi * t / 2 s, kp 70, kd 3, action scale 0.5 around the default pose, one-step action
latency, both action slots holding the current action, episode 2 s).

`--config` replaces the settings a policy runs with. Every episode starts at t = 0 in the clip's first
frame (standing), runs the full episode length with early termination off (body contact is recorded,
not acted on) and one extra sample at the time-out, so sample k is the state at k * dt, 0 <= k <= T.
An env whose physics fails in an episode ends that episode there (`fault`, never a success).

`evaluate(..., env=env)` reuses a built env (e.g. `EvalResult.env` of an earlier call) when its settings
agree with the policy's: the `env` section of the config (gains, action mode, latency, observation,
episode length, physics), the robot and the clip; with `randomize`, the env must have been built with
domain randomization enabled (per-env gains and masses). Evaluation switches terminations, initial
noise and the randomization ranges for its rollouts and restores them afterwards.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from retarget.errors import InputError
from retarget.robot import PROJECT_ROOT

from .. import config as config_mod
from ..analysis.metrics import Trajectory, episode_metrics, format_table, summarize
from ..config import NOMINAL_DR, TERMINATIONS_OFF, ZERO_NOISE, resolve_path
from ..env.observations import observation_size
from ..env.reference import episode_length_s
from ..env.rollout import rollout
from .policy import load_policy

BASE_CONFIG = PROJECT_ROOT / "configs" / "base_backflip.yaml"

# The settings of the Genesis backflip example (docs/facts.md §3) for external TorchScript policies.
OFFICIAL_SETTINGS = {
    "experiment": "external_policy",
    "env": {
        "dt": 0.02, "substeps": 2, "kp": 70.0, "kd": 3.0, "action_scale": 0.5, "action_mode": "default",
        "action_latency": True, "episode_length_s": 2.0, "clip_actions": 100.0,
        "observations": {"last_actions": "current", "future_frames": [], "privileged_critic": False},
    },
}

# Randomization under --randomize when the policy's config leaves the latency probability at 0.
RANDOMIZED_LATENCY_PROBABILITY = 0.5


@dataclass
class EvalResult:
    summary: dict                       # imitation.analysis.metrics.summarize of the per-episode metrics
    metrics: dict                       # name -> (E,) array, imitation.analysis.metrics.episode_metrics + fault
    trajectory: Trajectory              # the recorded rollouts
    settings: dict                      # what was run: policy, clip, gains, latency, randomization, ...
    env: object = field(default=None, repr=False, compare=False)   # the env, to reuse for the next policy

    def to_json(self) -> dict:
        keys = list(self.metrics)
        episodes = [{k: _plain(self.metrics[k][i]) for k in keys} for i in range(self.trajectory.num_episodes)]
        return {"success_rate": _plain(self.summary.get("success_rate")),
                "episode_length_s": self.settings["episode_length_s"],
                "settings": self.settings, "summary": {k: _plain(v) for k, v in self.summary.items()},
                "episodes": episodes}


# ---------------------------------------------------------------------------- settings


def eval_config(info: dict, *, clip=None, config=None, episodes: int = 16, randomize: bool = False) -> dict:
    """The complete config a policy is evaluated with (see the module docstring)."""
    if config is not None:
        cfg = config_mod.load_config(config)
    elif info.get("config") is not None:
        cfg = config_mod.validate(json.loads(json.dumps(info["config"])), "policy config")
    else:
        cfg = config_mod.load_config(BASE_CONFIG, OFFICIAL_SETTINGS)
    clip = clip if clip is not None else cfg["clip"]
    if clip is None and cfg["clips"]:
        raise InputError(f"{info.get('path', 'the policy')}: trained on several clips: give the one to evaluate "
                         f"(--clip; its library: {', '.join(e['clip'] for e in cfg['clips'])})")
    if clip is None:
        raise InputError(f"{info.get('path', 'the policy')}: no reference clip in its config: give one (--clip)")
    cfg = config_mod.for_clip(cfg, clip)  # a library's clip: its own success rule, terminations and resets
    clip_path = resolve_path(clip)
    if not clip_path.is_file():
        raise InputError(f"{clip}: reference clip not found (make one with: imitation retarget MOTION -o {clip})")
    cfg["clip"] = str(clip_path.resolve())
    cfg["env"]["num_envs"] = int(episodes)
    cfg["reset"]["rsi"] = False
    cfg["termination"].update(TERMINATIONS_OFF)
    dr = cfg["domain_randomization"]
    dr["enabled"] = bool(randomize)
    dr["init_noise"] = dict(ZERO_NOISE)
    if randomize and dr["action_latency_probability"] <= 0:
        dr["action_latency_probability"] = RANDOMIZED_LATENCY_PROBABILITY
    return cfg


def policy_obs_dim(cfg: dict) -> int:
    """Size of the actor observation ("policy" group) the env makes with this config."""
    o = cfg["env"]["observations"]
    return observation_size(o["future_frames"], o["future_terms"])


def _settings(cfg: dict, info: dict, episodes: int, randomize: bool, seed: int, episode_length_s: float) -> dict:
    e, dr = cfg["env"], cfg["domain_randomization"]
    out = {
        "policy": info["path"], "policy_kind": info["kind"], "iteration": info.get("iteration"),
        "obs_dim": info.get("obs_dim"), "clip": cfg["clip"], "experiment": cfg["experiment"],
        "episodes": episodes, "seed": seed, "randomize": randomize,
        "dt": e["dt"], "substeps": e["substeps"], "episode_length_s": episode_length_s,
        "kp": e["kp"], "kd": e["kd"], "action_scale": e["action_scale"], "action_mode": e["action_mode"],
        "action_latency": e["action_latency"], "last_actions": e["observations"]["last_actions"],
        "phase": f"pi * t / {episode_length_s:g} s", "success_tolerances": cfg["success"],
    }
    if randomize:
        out["domain_randomization"] = {k: dr[k] for k in ("friction", "added_base_mass", "kp_scale", "kd_scale",
                                                          "action_latency_probability")}
    return out


def env_mismatch(env, cfg: dict, randomize: bool) -> list[str]:
    """The settings in which a built env differs from what an evaluation config needs ([] when it fits)."""
    diffs = []

    def flat(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    skip = {"env.num_envs", "env.episode_length_s", "env.observations.privileged_critic"}
    have, want = dict(flat({"env": env.cfg["env"]}, "")), dict(flat({"env": cfg["env"]}, ""))
    for k in want:
        if k not in skip and have.get(k) != want[k]:
            diffs.append(f"{k} {have.get(k)!r} (env) vs {want[k]!r}")
    want_len = episode_length_s(cfg["env"], env.ref)
    if not math.isclose(env.episode_length_s, want_len, abs_tol=1e-9):
        diffs.append(f"env.episode_length_s {env.episode_length_s:g} (env) vs {want_len:g}")
    if resolve_path(env.cfg["robot"]).resolve() != resolve_path(cfg["robot"]).resolve():
        diffs.append(f"robot {env.cfg['robot']} (env) vs {cfg['robot']}")
    if env.cfg["clip"] is None or resolve_path(env.cfg["clip"]).resolve() != Path(cfg["clip"]):
        diffs.append(f"clip {env.cfg['clip']} (env) vs {cfg['clip']}")
    if randomize and not env.dr_on:
        diffs.append("domain randomization: the env was built without it (per-env gains and masses)")
    return diffs


def make_env(cfg: dict, device: str = "cpu"):
    """Build the env of an evaluation config (gs.init on first use)."""
    from ..sim import init_genesis

    init_genesis(device)
    from ..env.imitation_env import ImitationEnv

    return ImitationEnv(cfg)


# ---------------------------------------------------------------------------- rollouts


def evaluate(policy_path, *, clip=None, config=None, episodes: int = 16, randomize: bool = False,
             device: str = "cpu", seed: int = 0, env=None, rebuild: bool = False) -> EvalResult:
    """Evaluate one policy for `episodes` episodes from t = 0; see the module docstring. A given `env` that does
    not fit the policy's settings is an error, or with `rebuild` replaced by a new one (`EvalResult.env`)."""
    return _evaluate(policy_path, clip=clip, config=config, episodes=episodes, randomize=randomize, device=device,
                     seed=seed, env=env, rebuild=rebuild)[0]


def evaluate_both(policy_path, *, clip=None, config=None, episodes: int = 16, device: str = "cpu", seed: int = 0,
                  env=None, rebuild: bool = False) -> tuple[EvalResult, EvalResult]:
    """(nominal, randomized) EvalResults of `episodes` episodes each, from one batch of episodes + 1 envs: env 0
    runs the nominal robot, the others randomized physics. A nominal evaluation is deterministic (no noise, no
    draws, from t = 0), so its one episode stands for all `episodes` of them, as `evaluate(randomize=False)`
    would have run them; a reused `env` needs episodes + 1 envs."""
    return _evaluate(policy_path, clip=clip, config=config, episodes=episodes, randomize=True, device=device,
                     seed=seed, env=env, rebuild=rebuild, with_nominal=True)


def _evaluate(policy_path, *, clip, config, episodes: int, randomize: bool, device: str, seed: int, env,
              rebuild: bool, with_nominal: bool = False) -> tuple:
    if episodes < 1:
        raise InputError(f"episodes must be at least 1, got {episodes}")
    policy, info = load_policy(policy_path, device)
    envs = episodes + 1 if with_nominal else episodes
    cfg = eval_config(info, clip=clip, config=config, episodes=envs, randomize=randomize)
    want = policy_obs_dim(cfg)
    if info["obs_groups"] == ["policy"] and info["obs_dim"] is not None and info["obs_dim"] != want:
        raise InputError(_size_error(info, info["obs_dim"], want))
    diffs = [] if env is None else env_mismatch(env, cfg, randomize)
    if with_nominal and env is not None and env.num_envs < envs:
        diffs.append(f"env.num_envs {env.num_envs} (env) vs {envs} (the nominal episode beside the randomized ones)")
    if diffs and not rebuild:
        raise InputError("the given env does not fit this policy's settings: " + "; ".join(diffs))
    if env is None or diffs:
        env = make_env(cfg, device)
    missing = [g for g in info["obs_groups"] if g not in env.obs.keys()]
    if missing:
        raise InputError(f"{info['path']}: the policy reads observation groups {missing} the env does not make")
    have = sum(int(env.obs[g].shape[1]) for g in info["obs_groups"])
    if info["obs_dim"] is not None and info["obs_dim"] != have:
        raise InputError(_size_error(info, info["obs_dim"], have))
    try:
        with torch.no_grad():
            out = policy(env.obs)
    except RuntimeError as e:
        raise InputError(f"{info['path']}: the policy fails on the env's {have}-value observation: "
                         f"{str(e).splitlines()[0]}") from None
    if tuple(out.shape) != (env.num_envs, env.num_actions):
        raise InputError(f"{info['path']}: the policy outputs shape {tuple(out.shape)}, the env takes "
                         f"({env.num_envs}, {env.num_actions}) actions")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        recorder = _rollouts(env, policy, envs, cfg, nominal_env0=with_nominal)

    from retarget.clip import read_clip

    ref = read_clip(cfg["clip"], env.robot_desc)

    def result(episodes_of: np.ndarray, randomized: bool) -> EvalResult:
        traj = recorder.trajectory(episodes_of)
        fault = recorder.faults(episodes_of)
        metrics = episode_metrics(traj, ref, cfg["success"], reference=env.ref)
        metrics["fault"] = fault
        metrics["success"] = metrics["success"] & ~fault
        settings = _settings(cfg, info, episodes, randomized, seed, env.episode_length_s)
        return EvalResult(summary=summarize(metrics), metrics=metrics, trajectory=traj, settings=settings, env=env)

    if not with_nominal:
        return (result(np.arange(episodes), randomize),)
    return result(np.zeros(episodes, dtype=int), False), result(np.arange(1, envs), True)


def _size_error(info, policy_dim, env_dim) -> str:
    return (f"{info['path']}: the policy takes {policy_dim} observation values but the env makes {env_dim} "
            f"(Genesis backflip layout: 60, plus future reference frames if configured)")


def _rollouts(env, policy, episodes: int, cfg: dict, nominal_env0: bool = False) -> "TrajectoryRecorder":
    """Run ceil(episodes / num_envs) batches of full episodes from t = 0 (the recorder holds them);
    `nominal_env0`: env 0 of the (single) batch runs the nominal robot whatever the ranges."""
    steps = env.max_episode_length                     # T: samples 0..T at k * dt
    dr_cfg = cfg["domain_randomization"]
    recorder = TrajectoryRecorder(env)
    latency = bool(cfg["env"]["action_latency"])

    def record(k, dones):
        if k == 0 and nominal_env0:     # after the reset's draws, before the first step
            friction, mass, kp, kd = (torch.full((1, 1), v, device=env.device) for v in (1.0, 0.0, 1.0, 1.0))
            env.set_physics(torch.zeros(1, dtype=torch.long, device=env.device), friction, mass, kp, kd)
            env.delayed[0] = latency
        return recorder(k, dones)

    # Randomized ranges, or the nominal values for an env built with per-env parameters.
    with env.playback(steps, dr_ranges=dr_cfg if dr_cfg["enabled"] else NOMINAL_DR, latency=latency):
        for _ in range(math.ceil(episodes / env.num_envs)):
            rollout(env, steps, policy, record)
    return recorder


class TrajectoryRecorder:
    """A rollout hook (imitation.env.rollout) that records every env's state at every sample, batch after batch,
    for a Trajectory. Without terminations and time-out (playback mode) a done is a physics fault: the env has
    already reset that env, and its episode ends with the previous sample."""

    FIELDS = ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel", "torque", "actions", "foot_pos",
              "foot_contact", "frame")

    def __init__(self, env):
        self.env = env
        self.batches: list[dict] = []

    def __call__(self, k: int, dones) -> None:
        env = self.env
        if k == 0:
            self._batch = {key: [] for key in (*self.FIELDS, "body_contact")}
            self._batch["fault_at"] = torch.full((env.num_envs,), -1, dtype=torch.long, device=env.device)
            self.batches.append(self._batch)
        else:
            fault_at = self._batch["fault_at"]
            self._batch["fault_at"] = torch.where((fault_at < 0) & dones, k, fault_at)
        for key in self.FIELDS:
            self._batch[key].append(getattr(env, key).clone())
        # After a reset the contact forces are stale: no body contact.
        contact = env.body_contact_now
        self._batch["body_contact"].append(torch.zeros_like(contact) if k == 0 else contact.clone())

    def _cat(self, key: str, episodes: slice) -> np.ndarray:
        return torch.cat([torch.stack(b[key], 1) for b in self.batches])[episodes].cpu().numpy()

    def faults(self, episodes: slice = slice(None)) -> np.ndarray:
        """(E,) bool: the episodes that a physics fault ended."""
        return torch.cat([b["fault_at"] >= 0 for b in self.batches])[episodes].cpu().numpy()

    def frames(self, episodes: slice = slice(None)) -> np.ndarray:
        """(E, T) clip frame of every sample."""
        return self._cat("frame", episodes)

    def trajectory(self, episodes: slice = slice(None), cut_at_faults: bool = True) -> Trajectory:
        """The recorded `episodes` (a slice or an index array); `cut_at_faults`: an episode ends with the sample
        before its physics fault (else every sample counts)."""
        length = None
        if cut_at_faults:
            samples = len(self.batches[0]["frame"])
            fault_at = torch.cat([b["fault_at"] for b in self.batches])[episodes]
            length = torch.where(fault_at < 0, samples, fault_at).cpu().numpy()
        robot = self.env.robot_desc
        arrays = {key: self._cat(key, episodes) for key in self.FIELDS if key != "frame"}
        return Trajectory(dt=self.env.dt, **arrays, body_contact=self._cat("body_contact", episodes), length=length,
                          joint_names=tuple(robot.joint_names), foot_names=tuple(robot.foot_names))


# ---------------------------------------------------------------------------- output


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_json(result: EvalResult, path) -> Path:
    from retarget.files import write_text_atomic

    return write_text_atomic(path, json.dumps(result.to_json(), indent=1) + "\n")


def report(result: EvalResult, label: str) -> str:
    s = result.settings
    where = ""
    if s.get("sim") == "mujoco":
        where = (" in MuJoCo" + ("" if s["randomize"] else f" at {s['physics_hz']:g} Hz")
                 + (", realistic actuators" if s.get("variant") == "realistic" else ""))
    head = (f"{label}: {s['episodes']} episodes from t = 0{where}, "
            f"{'randomized' if s['randomize'] else 'nominal'}; "
            f"kp {s['kp']:g}, kd {s['kd']:g}, action scale {s['action_scale']:g} ({s['action_mode']}), "
            f"latency {'1 step' if s['action_latency'] else 'none'}, episode {s['episode_length_s']:g} s")
    return head + "\n" + format_table({label: result.summary})
