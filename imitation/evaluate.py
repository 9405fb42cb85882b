"""Evaluate a policy: deterministic rollouts from t = 0 in the Genesis env, nominal or under domain
randomization, scored with `imitation.metrics` against the reference clip.

What can be evaluated (`load_policy`):

- a run folder of ours (its latest `model_<n>.pt`) or a checkpoint `model_<n>.pt`: the actor is rebuilt
  from the run's config (saved in the checkpoint, or the run's config.yaml) and run deterministically;
- a run's export `exported/policy.pt` (TorchScript), with the config.yaml of its run, or a shipped policy
  folder (`policies/<name>/`: policy.pt beside its config.yaml);
- any other TorchScript policy taking the Genesis backflip 60-value observation, e.g. the official
  `single.pt`: it runs with the settings of the Genesis example it was made for (`OFFICIAL_SETTINGS`:
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
import yaml

from retarget.errors import InputError
from retarget.robot import PROJECT_ROOT

from . import config as config_mod
from .config import NOMINAL_DR, ZERO_NOISE  # noqa: F401  (re-exported for callers)
from .metrics import Trajectory, episode_metrics, format_table, summarize

DEFAULT_CLIP = "clips/backflip.h5"
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
    summary: dict                       # imitation.metrics.summarize of the per-episode metrics
    metrics: dict                       # name -> (E,) array, imitation.metrics.episode_metrics + fault
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


# ---------------------------------------------------------------------------- policies


def load_policy(path: str | Path, device: str = "cpu"):
    """(policy, info): `policy(obs: TensorDict) -> actions (n, 12)`, deterministic, on `device`.

    info: kind ("checkpoint", "export" or "torchscript"), path, config (the run's config dict, or None
    for an external policy), obs_groups (the observation groups it reads, concatenated), obs_dim (their
    total size, None if unknown), iteration (checkpoints).
    """
    from .train import CONFIG_NAME, latest_checkpoint

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such policy file or run folder")
    if path.is_dir():
        try:
            path = latest_checkpoint(path)
        except FileNotFoundError:
            # A run folder's export, or a shipped policy folder (policy.pt beside its config.yaml).
            export = next((p for p in (path / "exported" / "policy.pt", path / "policy.pt") if p.is_file()), None)
            if export is None:
                raise InputError(f"{path}: no checkpoint model_<n>.pt, exported/policy.pt or policy.pt in this "
                                 f"folder") from None
            path = export
    dev = torch.device(device)

    try:
        module = torch.jit.load(str(path), map_location=dev)
    except (RuntimeError, ValueError):
        module = None
    if module is not None:
        module.eval()
        run_cfg = path.parent.parent / CONFIG_NAME if path.parent.name == "exported" else path.parent / CONFIG_NAME
        cfg = _read_run_config(run_cfg) if run_cfg is not None and run_cfg.is_file() else None
        weights = [p for p in module.parameters() if p.dim() == 2]
        info = {"kind": "export" if cfg is not None else "torchscript", "path": str(path), "config": cfg,
                "obs_groups": ["policy"], "obs_dim": int(weights[0].shape[1]) if weights else None,
                "iteration": None}

        def policy(obs):
            return module(obs["policy"].to(dev))

        return policy, info

    try:  # tensors and plain data only: a checkpoint from elsewhere cannot run code while loading
        ckpt = torch.load(str(path), map_location=dev, weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise InputError(f"{path}: neither a TorchScript policy nor a checkpoint of this project "
                         f"({type(e).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or "actor_state_dict" not in ckpt:
        raise InputError(f"{path}: not a policy: a checkpoint needs an actor_state_dict")
    cfg = (ckpt.get("infos") or {}).get("config")
    if cfg is not None:
        cfg = config_mod.validate({k: v for k, v in cfg.items() if k != "run_name"}, f"{path} (infos.config)")
    elif (path.parent / CONFIG_NAME).is_file():
        cfg = _read_run_config(path.parent / CONFIG_NAME)
    else:
        raise InputError(f"{path}: checkpoint without a config, and no {CONFIG_NAME} beside it")
    actor, groups, obs_dim = _build_actor(cfg, ckpt["actor_state_dict"], dev, path)
    info = {"kind": "checkpoint", "path": str(path), "config": cfg, "obs_groups": groups, "obs_dim": obs_dim,
            "iteration": ckpt.get("iter")}

    def policy(obs):
        return actor(obs.to(dev))

    return policy, info


def _read_run_config(path: Path) -> dict:
    raw = yaml.safe_load(path.read_text())
    return config_mod.validate({k: v for k, v in (raw or {}).items() if k != "run_name"}, str(path))


def _build_actor(cfg: dict, state: dict, dev, path):
    """The rsl-rl actor of a run's config with the checkpoint's weights, in eval mode."""
    import rsl_rl.models
    from tensordict import TensorDict

    weights = [v for k, v in state.items() if k.startswith("mlp.") and k.endswith("weight") and v.dim() == 2]
    if not weights:
        raise InputError(f"{path}: actor_state_dict has no MLP weights")
    obs_dim = int(weights[0].shape[1])
    groups = list(cfg["ppo"]["obs_groups"]["actor"])
    # The actor only needs the total input size: the first group gets all of it, the others none.
    fake = TensorDict({g: torch.zeros(1, obs_dim if i == 0 else 0) for i, g in enumerate(groups)}, batch_size=[1])
    kw = dict(cfg["ppo"]["actor"])
    cls = getattr(rsl_rl.models, kw.pop("class_name"))
    actor = cls(fake, {"actor": groups}, "actor", 12, **kw)
    actor.load_state_dict(state)
    return actor.to(dev).eval(), groups, obs_dim


# ---------------------------------------------------------------------------- settings


def eval_config(info: dict, *, clip=None, config=None, episodes: int = 16, randomize: bool = False) -> dict:
    """The complete config a policy is evaluated with (see the module docstring)."""
    if config is not None:
        cfg = config_mod.load_config(config)
    elif info.get("config") is not None:
        cfg = config_mod.validate(json.loads(json.dumps(info["config"])), "policy config")
    else:
        cfg = config_mod.load_config(BASE_CONFIG, OFFICIAL_SETTINGS)
    clip = clip if clip is not None else (cfg["clip"] or DEFAULT_CLIP)
    clip_path = _resolve(clip)
    if not clip_path.is_file():
        raise InputError(f"{clip}: reference clip not found (make it with: imitation retarget motions/backflip.yaml -o {clip})")
    cfg["clip"] = str(clip_path.resolve())
    cfg["env"]["num_envs"] = int(episodes)
    cfg["reset"]["rsi"] = False
    cfg["termination"].update(body_contact=False, max_height_error=None, max_position_error=None,
                              max_orientation_error=None)
    dr = cfg["domain_randomization"]
    dr["enabled"] = bool(randomize)
    dr["init_noise"] = dict(ZERO_NOISE)
    if randomize and dr["action_latency_probability"] <= 0:
        dr["action_latency_probability"] = RANDOMIZED_LATENCY_PROBABILITY
    return cfg


def _resolve(path) -> Path:
    """A config path as imitation.env.resolve_path reads it (cwd, else the project root), without
    importing genesis, so that bad input fails fast."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else PROJECT_ROOT / p


def policy_obs_dim(cfg: dict) -> int:
    """Size of the actor observation ("policy" group) the env makes with this config."""
    o = cfg["env"]["observations"]
    per_frame = (12 if "joint_pos" in o["future_terms"] else 0) + (6 if "attitude" in o["future_terms"] else 0)
    return 60 + len(o["future_frames"]) * per_frame


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


def _check_env(env, cfg: dict, randomize: bool) -> None:
    """InputError naming the settings in which a built env differs from what the policy needs."""
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
    want_len = cfg["env"]["episode_length_s"] or env.ref.duration
    if not math.isclose(env.episode_length_s, want_len, abs_tol=1e-9):
        diffs.append(f"env.episode_length_s {env.episode_length_s:g} (env) vs {want_len:g}")
    if _resolve(env.cfg["robot"]).resolve() != _resolve(cfg["robot"]).resolve():
        diffs.append(f"robot {env.cfg['robot']} (env) vs {cfg['robot']}")
    if env.cfg["clip"] is None or _resolve(env.cfg["clip"]).resolve() != Path(cfg["clip"]):
        diffs.append(f"clip {env.cfg['clip']} (env) vs {cfg['clip']}")
    if randomize and not env.dr_on:
        diffs.append("domain randomization: the env was built without it (per-env gains and masses)")
    if diffs:
        raise InputError("the given env does not fit this policy's settings: " + "; ".join(diffs))


def make_env(cfg: dict, device: str = "cpu"):
    """Build the env of an evaluation config (gs.init on first use)."""
    from .train import init_genesis

    init_genesis(device)
    from .env import ImitationEnv

    return ImitationEnv(cfg)


# ---------------------------------------------------------------------------- rollouts


def evaluate(policy_path, *, clip=None, config=None, episodes: int = 16, randomize: bool = False,
             device: str = "cpu", seed: int = 0, env=None) -> EvalResult:
    """Evaluate one policy for `episodes` episodes from t = 0; see the module docstring."""
    if episodes < 1:
        raise InputError(f"episodes must be at least 1, got {episodes}")
    policy, info = load_policy(policy_path, device)
    cfg = eval_config(info, clip=clip, config=config, episodes=episodes, randomize=randomize)
    want = policy_obs_dim(cfg)
    if info["obs_groups"] == ["policy"] and info["obs_dim"] is not None and info["obs_dim"] != want:
        raise InputError(_size_error(info, info["obs_dim"], want))
    if env is None:
        env = make_env(cfg, device)
    else:
        _check_env(env, cfg, randomize)
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
        traj, fault = _rollouts(env, policy, episodes, cfg)

    from retarget.clip import read_clip

    ref = read_clip(cfg["clip"], env.robot_desc)
    metrics = episode_metrics(traj, ref, cfg["success"], reference=env.ref)
    metrics["fault"] = fault
    metrics["success"] = metrics["success"] & ~fault
    settings = _settings(cfg, info, episodes, randomize, seed, env.episode_length_s)
    return EvalResult(summary=summarize(metrics), metrics=metrics, trajectory=traj, settings=settings, env=env)


def _size_error(info, policy_dim, env_dim) -> str:
    return (f"{info['path']}: the policy takes {policy_dim} observation values but the env makes {env_dim} "
            f"(Genesis backflip layout: 60, plus future reference frames if configured)")


def _rollouts(env, policy, episodes: int, cfg: dict) -> tuple[Trajectory, np.ndarray]:
    """Run ceil(episodes / num_envs) batches of full episodes from t = 0; returns the first `episodes`."""
    n, dev = env.num_envs, env.device
    steps = env.max_episode_length                     # T: samples 0..T at k * dt
    dr_cfg = cfg["domain_randomization"]
    all_envs = torch.ones(n, dtype=torch.bool, device=dev)
    zero_frames = torch.zeros(n, dtype=torch.long, device=dev)
    batches = []
    # Randomized ranges, or the nominal values for an env built with per-env parameters.
    with env.playback(steps, dr_ranges=dr_cfg if dr_cfg["enabled"] else NOMINAL_DR,
                      latency=bool(cfg["env"]["action_latency"])):
        for _ in range(math.ceil(episodes / n)):
            obs = env.reset_envs(all_envs, zero_frames)
            rec = [_sample(env, first=True)]
            length = torch.full((n,), steps + 1, dtype=torch.long, device=dev)
            alive = torch.ones(n, dtype=torch.bool, device=dev)
            for k in range(1, steps + 1):
                with torch.no_grad():
                    actions = policy(obs)
                obs, _, dones, _ = env.step(actions.to(dev))
                # No termination and no time-out here: a done is a physics fault, and the env has
                # already reset that env. Its episode ends with the previous sample.
                length = torch.where(alive & dones, k, length)
                alive &= ~dones
                rec.append(_sample(env))
            batches.append(({key: torch.stack([r[key] for r in rec], 1) for key in rec[0]}, length, ~alive))

    cat = lambda key: torch.cat([b[0][key] for b in batches])[:episodes].cpu().numpy()  # noqa: E731
    length = torch.cat([b[1] for b in batches])[:episodes].cpu().numpy()
    fault = torch.cat([b[2] for b in batches])[:episodes].cpu().numpy()
    robot = env.robot_desc
    traj = Trajectory(
        dt=env.dt, root_pos=cat("root_pos"), root_quat=cat("root_quat"), root_ang_vel_body=cat("ang_vel_b"),
        dof_pos=cat("dof_pos"), dof_vel=cat("dof_vel"), torque=cat("torque"), actions=cat("actions"),
        foot_pos=cat("foot_pos"), foot_contact=cat("foot_contact"), body_contact=cat("body_contact"),
        length=length, joint_names=tuple(robot.joint_names), foot_names=tuple(robot.foot_names),
    )
    return traj, fault


def _sample(env, first: bool = False) -> dict[str, torch.Tensor]:
    """The env's current state, copied. After a reset the contact forces are stale: no body contact."""
    body = torch.zeros_like(env.body_contact_now) if first else env.body_contact_now
    return {
        "root_pos": env.base_pos.clone(), "root_quat": env.base_quat.clone(), "ang_vel_b": env.base_ang_vel_b.clone(),
        "dof_pos": env.dof_pos.clone(), "dof_vel": env.dof_vel.clone(), "torque": env.torques.clone(),
        "actions": env.actions.clone(), "foot_pos": env.foot_pos.clone(), "foot_contact": env.foot_contact.clone(),
        "body_contact": body.clone(),
    }


# ---------------------------------------------------------------------------- output


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def policy_label(path) -> str:
    """A short column name: the run folder (or the file's folder and name)."""
    p = Path(path)
    if p.is_dir():
        return p.name
    if p.parent.name == "exported":
        return f"{p.parent.parent.name}/exported"
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def write_json(result: EvalResult, path) -> Path:
    from retarget.files import write_text_atomic

    return write_text_atomic(path, json.dumps(result.to_json(), indent=1) + "\n")


def report(result: EvalResult, label: str) -> str:
    s = result.settings
    head = (f"{label}: {s['episodes']} episodes from t = 0, {'randomized' if s['randomize'] else 'nominal'}; "
            f"kp {s['kp']:g}, kd {s['kd']:g}, action scale {s['action_scale']:g} ({s['action_mode']}), "
            f"latency {'1 step' if s['action_latency'] else 'none'}, episode {s['episode_length_s']:g} s")
    return head + "\n" + format_table({label: result.summary})
