"""Throughput benchmark: the env step against bare Genesis stepping of the same scene, and PPO.

`imitation bench [--num-envs 64,256,1024] [--steps N] [--repeats R] [--json OUT.json]` measures in one
process, per env count, interleaved (repetition r runs every measurement once before repetition r + 1
starts, so machine load hits all of them alike):

- floor: bare Genesis stepping of the imitation env's own scene: `control_dofs_position` with the PD
  targets the env would compute for the same random actions, then `scene.step()`; no observation,
  reward or reset code. The same is measured on the reward-only env's scene (`floor_reward`).
- imitation: the imitation env's full `step()` (configs/imitation_backflip.yaml) with random actions
  (standard normal, the spread of a fresh PPO policy), observations, reference lookup, rewards,
  terminations and resets included.
- reward: the reward-only env's full `step()` (configs/reward_backflip.yaml), a second scene in the
  same process.
- ppo: one iteration of rsl-rl's OnPolicyRunner at the config's PPO settings (24 steps/env, 5 epochs x
  4 mini-batches by default) on the imitation env, split into rollout collection and update (the
  update on every core, as `imitation train` does by default; `update_threads` in the result).

Every timed block starts from a fresh reset of all envs (reference state initialization as in
training) after one untimed step, so floor and env see the same kind of states. Reported: env-steps/s
(median over repetitions), the ratio env / floor (median of the per-repetition ratios) and the update's
share of a PPO iteration. Targets (256 envs): env >= 0.9 x floor, reward-only likewise, update <= 25 %.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
import types
from pathlib import Path

import torch

from ..env import terminations as _TERMINATIONS
from ..rl.timing import PPOTimer, fresh_start

TARGETS = {"ratio_imitation": 0.90, "ratio_reward": 0.90, "ppo_update_share": 0.25}
CONFIGS = {"imitation": "configs/imitation_backflip.yaml", "reward": "configs/reward_backflip.yaml"}


# ---------------------------------------------------------------------------- one measurement


def _pd_targets(env, actions: torch.Tensor) -> torch.Tensor:
    """(steps, n, 12) PD targets the env computes for `actions` from its current frames on
    (no latency, no resets: what the floor's robots are commanded)."""
    a = actions.clamp(-env.clip_actions, env.clip_actions)
    if env.residual:  # the env's own base table, indexed by the frame before each step
        k = torch.arange(len(actions), device=env.device)[:, None]
        base = env._residual_base[(env.frame[None, :] + k).clamp(0, env.ref.last)]
    else:
        base = env.default_dof_pos.expand_as(a)
    return (base + env.action_scale * a).contiguous()


def time_floor(env, actions: torch.Tensor) -> float:
    """Env-steps/s of bare stepping of the env's scene: PD targets + scene.step(), nothing else."""
    fresh_start(env)
    env.step(actions[0])
    targets = _pd_targets(env, actions[1:])
    robot, scene, dofs = env.robot, env.scene, env.dof_idx_list
    t0 = time.perf_counter()
    for target in targets:
        robot.control_dofs_position(target, dofs)
        scene.step()
    elapsed = time.perf_counter() - t0
    return env.num_envs * len(targets) / elapsed


def time_env(env, actions: torch.Tensor) -> float:
    """Env-steps/s of the env's full step() with the given actions."""
    fresh_start(env)
    env.step(actions[0])
    t0 = time.perf_counter()
    for a in actions[1:]:
        env.step(a)
    elapsed = time.perf_counter() - t0
    return env.num_envs * (len(actions) - 1) / elapsed


# Parts of step() timed by `breakdown`: (label, owner attribute path, method). Genesis calls first.
_PARTS = (
    ("physics (scene.step)", "scene", "step"),
    ("genesis: PD targets", "robot", "control_dofs_position"),
    ("genesis: reset pose (set_qpos + FK)", "robot", "set_qpos"),
    ("genesis: reset velocities", "robot", "set_dofs_velocity"),
    ("genesis: redraw friction", "rigid_solver", "set_geoms_friction_ratio"),
    ("genesis: redraw base mass", "robot", "set_links_mass"),
    ("genesis: redraw kp", "robot", "set_dofs_kp"),
    ("genesis: redraw kd", "robot", "set_dofs_kv"),
    ("state read (genesis getters + derived)", "", "_read_state"),
    ("rewards", "rewards", "__call__"),
    ("terminations", _TERMINATIONS, "evaluate"),
    ("logging", "", "_log"),
    ("reset (all of it)", "", "_reset"),
    ("observations", "", "_observations"),
)


def breakdown(env, actions: torch.Tensor) -> dict[str, float]:
    """Milliseconds per step() spent in each part of it (`_PARTS`; "reset (all of it)" includes the Genesis reset
    and redraw calls listed above it), timed by wrapping the methods of this env instance for one run of `actions`,
    and the step's total. The wrappers add a few microseconds per call: use the side-by-side ratios for speed."""
    timers: dict[str, float] = {}
    patched = []

    def wrap(owner, method: str, label: str):
        inner = getattr(owner, method)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                timers[label] = timers.get(label, 0.0) + time.perf_counter() - t0

        if method == "__call__":  # a callable object (the env's RewardSum): wrap it where the env holds it
            setattr(env, "rewards", _CallableProxy(owner, timed))
            patched.append((env, "rewards", owner))
        elif isinstance(owner, types.ModuleType):  # a module's function the step calls
            setattr(owner, method, timed)
            patched.append((owner, method, inner))
        else:
            setattr(owner, method, timed)
            patched.append((owner, method, None))

    fresh_start(env)
    env.step(actions[0])
    for label, owner, method in _PARTS:
        wrap(owner if isinstance(owner, types.ModuleType) else getattr(env, owner) if owner else env, method, label)
    try:
        t0 = time.perf_counter()
        for a in actions[1:]:
            env.step(a)
        total = time.perf_counter() - t0
    finally:
        for owner, method, original in reversed(patched):
            if original is not None:
                setattr(owner, method, original)
            else:
                delattr(owner, method)  # the instance attribute shadowed the class's method
    steps = len(actions) - 1
    out = {label: 1e3 * timers.get(label, 0.0) / steps for label, _, _ in _PARTS}
    out["step() total"] = 1e3 * total / steps
    return out


class _CallableProxy:
    """Stands for a callable object (the env's RewardSum) with a timed __call__, its attributes passed through."""

    def __init__(self, inner, call):
        self._inner, self._call = inner, call

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def format_breakdown(name: str, n: int, parts: dict[str, float]) -> str:
    total = parts["step() total"]
    lines = [f"where the {name} env's step() time goes, {n} envs (ms per step; % of the step):"]
    lines += [f"  {label:<42} {ms:7.3f} {100 * ms / total:5.1f}%" for label, ms in parts.items() if ms > 0]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- a set of envs


def measure(
    imitation_env,
    reward_env=None,
    *,
    steps: int = 100,
    repeats: int = 3,
    ppo: bool = True,
    ppo_cfg: dict | None = None,
    seed: int = 0,
    parts: bool = False,
    log=print,
) -> dict:
    """Benchmark already built envs (same num_envs); returns one result row (see `run`).

    `ppo_cfg`: the config whose `ppo` section the PPO iteration uses (default: the imitation env's).
    `parts`: also time the parts of each env's step() once (`breakdown`), after the repetitions.
    The caller's torch RNG state is restored afterwards.
    """
    n = imitation_env.num_envs
    if reward_env is not None and reward_env.num_envs != n:
        raise ValueError("the two envs must have the same number of envs")
    envs = {"imitation": imitation_env}
    if reward_env is not None:
        envs["reward"] = reward_env
    samples: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    ppo_times: list[tuple[float, float]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        timer = PPOTimer(imitation_env, ppo_cfg or imitation_env.cfg) if ppo else None
        for r in range(repeats):
            actions = torch.randn(steps + 1, n, 12, device=imitation_env.device)
            for name, env in envs.items():
                floor = time_floor(env, actions)
                full = time_env(env, actions)
                samples.setdefault(f"floor_{name}", []).append(floor)
                samples.setdefault(name, []).append(full)
                ratios.setdefault(f"ratio_{name}", []).append(full / floor)
            if timer is not None:
                ppo_times.append(timer.iteration())
            log(f"  [{n} envs] repetition {r + 1}/{repeats}: "
                + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in samples.items())
                + (f", ppo collect {ppo_times[-1][0]:.2f} s update {ppo_times[-1][1]:.2f} s" if ppo_times else ""))
        breakdowns = {}
        if parts:
            actions = torch.randn(steps + 1, n, 12, device=imitation_env.device)
            for name, env in envs.items():
                breakdowns[name] = breakdown(env, actions)
                log(format_breakdown(name, n, breakdowns[name]))
        fresh_start(imitation_env)
        if reward_env is not None:
            fresh_start(reward_env)
    row: dict = {"num_envs": n, "steps": steps, "repeats": repeats}
    if breakdowns:
        row["breakdown_ms"] = breakdowns
    row["steps_per_s"] = {k: statistics.median(v) for k, v in samples.items()}
    row["ratios"] = {k: statistics.median(v) for k, v in ratios.items()}
    row["samples"] = {**samples, **ratios}
    if ppo_times:
        collect = statistics.median(c for c, _ in ppo_times)
        update = statistics.median(u for _, u in ppo_times)
        shares = [u / (c + u) for c, u in ppo_times]
        row["ppo"] = {
            "steps_per_env": timer.steps_per_env,
            "update_threads": timer.runner.update_threads,
            "collect_s": collect,
            "update_s": update,
            "iteration_s": collect + update,
            "update_share": statistics.median(shares),
            "rollout_steps_per_s": n * timer.steps_per_env / collect,
            "iteration_steps_per_s": n * timer.steps_per_env / (collect + update),
            "samples": [{"collect_s": c, "update_s": u} for c, u in ppo_times],
        }
    return row


def run(
    num_envs=(64, 256, 1024),
    steps: int = 100,
    repeats: int = 3,
    ppo: bool = True,
    json_path: str | Path | None = None,
    configs: dict[str, str] | None = None,
    clip: str | Path | None = None,
    parts: bool = False,
    ranks=None,
    scaling_only: bool = False,
    log=print,
) -> dict:
    """Build the imitation and the reward-only env at each env count and benchmark them.

    `clip`: the reference clip of both envs (default: the configs'; if that file is missing, the bundled
    keyframe backflip motions/backflip.yaml retargeted into a temporary file).
    `ranks` (e.g. [1, 2]): also time PPO iterations of the imitation config as one training over that many ranks
    at each env count in total (imitation.tools.scaling), into the report's "scaling" section; `scaling_only`:
    nothing else (no scene is built in this process)."""
    from .. import config as config_mod
    from ..config import resolve_path
    from ..env.imitation_env import ImitationEnv
    from ..sim import init_genesis

    torch.set_num_threads(1)  # as training: Genesis runs on one CPU thread
    configs = {**CONFIGS, **(configs or {})}
    tmp = None
    if clip is None:
        missing = [p for p in configs.values()
                   if not resolve_path(config_mod.load_config(resolve_path(p))["clip"] or "").is_file()]
        if missing:
            tmp = tempfile.TemporaryDirectory(prefix="imitation_bench_")
            clip = _retarget_default(Path(tmp.name) / "backflip.h5")
            log(f"{missing[0]}: its clip is missing; using the bundled keyframe backflip retargeted to {clip}")
    report = {"settings": {"num_envs": list(num_envs), "steps": steps, "repeats": repeats, "ppo": ppo, "parts": parts,
                           "configs": configs, "torch_threads": torch.get_num_threads(), "ranks": list(ranks or [])},
              "targets": TARGETS, "results": []}
    if not scaling_only:
        init_genesis("cpu")
    for n in ([] if scaling_only else num_envs):
        envs = {}
        for name, path in configs.items():
            overrides = {"env": {"num_envs": int(n)}, **({"clip": str(clip)} if clip is not None else {})}
            cfg = config_mod.load_config(resolve_path(path), overrides)
            t0 = time.perf_counter()
            envs[name] = ImitationEnv(cfg)
            log(f"built {name} env, {n} envs ({time.perf_counter() - t0:.0f} s)")
        row = measure(envs["imitation"], envs.get("reward"), steps=steps, repeats=repeats, ppo=ppo, parts=parts, log=log)
        report["results"].append(row)
        # Genesis keeps built scenes alive; drop our references so their buffers can go.
        for env in envs.values():
            env.close()
        del envs
    if ranks:
        from .scaling import TARGET_SPEEDUP, format_scaling, measure_scaling

        rows = [measure_scaling(n, ranks, repeats, config=configs["imitation"], clip=None if clip is None else str(clip),
                                log=log) for n in num_envs]
        report["scaling"] = {"config": configs["imitation"], "ranks": sorted(set(ranks)), "target_speedup": TARGET_SPEEDUP,
                             "results": rows}
        if "speedup" in rows[0]:  # at the first env count: the most ranks against 1 process
            report["scaling"]["speedup"] = rows[0]["speedup"]
    if tmp is not None:
        tmp.cleanup()
    report["settings"]["clip"] = str(clip) if clip is not None else None
    if report["results"]:
        log(format_table(report))
    if ranks:
        log(format_scaling(report["scaling"]))
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2))
        log(f"json: {json_path}")
    return report


def _retarget_default(path: Path) -> Path:
    from retarget.clip import write_clip
    from retarget.importer import load_motion
    from retarget.robot import PROJECT_ROOT, load_robot

    robot = load_robot()
    write_clip(load_motion(PROJECT_ROOT / "motions" / "backflip.yaml", robot), path)
    return path


def format_table(report: dict) -> str:
    head = (f"{'envs':>5} | {'floor':>7} | {'imitation':>9} {'ratio':>5} | {'floor_rw':>8} | {'reward':>7} {'ratio':>5}"
            f" | {'ppo collect':>11} {'update':>6} {'share':>5} | {'it steps/s':>10}")
    lines = ["env-steps/s (medians over repetitions; ratios env / its scene's bare stepping)", head, "-" * len(head)]
    fmt = lambda v, w, spec: format(v, spec).rjust(w) if v is not None and math.isfinite(v) else "-".rjust(w)  # noqa: E731
    for row in report["results"]:
        s, r, p = row["steps_per_s"], row["ratios"], row.get("ppo", {})
        lines.append(
            f"{row['num_envs']:>5} | {fmt(s.get('floor_imitation'), 7, ',.0f')} | {fmt(s.get('imitation'), 9, ',.0f')} "
            f"{fmt(r.get('ratio_imitation'), 5, '.2f')} | {fmt(s.get('floor_reward'), 8, ',.0f')} | "
            f"{fmt(s.get('reward'), 7, ',.0f')} {fmt(r.get('ratio_reward'), 5, '.2f')} | "
            f"{fmt(p.get('collect_s'), 10, '.2f')}s {fmt(p.get('update_s'), 5, '.2f')}s {fmt(p.get('update_share'), 5, '.0%')} | "
            f"{fmt(p.get('iteration_steps_per_s'), 10, ',.0f')}"
        )
    threads = sorted({row["ppo"]["update_threads"] for row in report["results"] if "ppo" in row})
    if threads:
        lines.append(f"PPO update on {'/'.join(map(str, threads))} torch thread(s), the rollout on 1")
    lines.append(f"targets: env >= {TARGETS['ratio_imitation']} x floor, reward-only likewise, "
                 f"PPO update <= {TARGETS['ppo_update_share']:.0%} of an iteration")
    return "\n".join(lines)
