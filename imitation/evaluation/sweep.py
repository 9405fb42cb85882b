"""Success against training env steps: evaluate every checkpoint of a run the way `imitation eval` does
(deterministic, every episode from t = 0, optionally under domain randomization), in one env.

    imitation sweep RUN [RUN ...] --episodes 100 --randomize --every 50

The training log's own success rate (`Success/success_rate`) scores the *noisy* policy on the few training
episodes that start at t = 0; this scores the policy that is shipped. Each run gets `eval_curve.json`
(or `eval_curve_nominal.json`): one row per checkpoint with its iteration, env steps and summary metrics.
The evaluation seed is the same for every checkpoint, so all of them meet the same randomized robots
(friction, mass, gains, latency) and the differences along the curve are the policy's.
"""

from __future__ import annotations

import math
from pathlib import Path

from retarget.errors import InputError

from .. import runs

# Summary metrics kept per checkpoint (imitation.analysis.metrics.summarize keys).
CURVE_KEYS = ("success_rate", "success_ci_low", "success_ci_high", "pitch_rotation_deg_mean", "apex_height_mean",
              "final_tilt_deg_mean", "joint_rmse_mean", "foot_pos_error_mean", "peak_torque_mean")


def checkpoints(run_dir: Path, every: int | None = None) -> list[tuple[int, Path]]:
    """(completed iterations, path) of the run's checkpoints, every `every` iterations plus the last one."""
    found = runs.checkpoints(run_dir)
    if not found:
        raise InputError(f"{run_dir}: no checkpoint model_<n>.pt in this run folder")
    if every:
        last = found[-1]
        # Checkpoints land at 1, 51, 101, ... (save_interval after the first): keep one per `every` window.
        kept, seen = [], set()
        for n, p in found:
            if n // every not in seen:
                seen.add(n // every)
                kept.append((n, p))
        found = kept if kept[-1] == last else kept + [last]
    return found


def env_steps_per_iteration(run_dir: Path, cfg: dict) -> int:
    """From progress.jsonl when there is one (exact, also after a resume), else from the config."""
    for r in runs.read_progress(run_dir):
        if r.get("iteration") and r.get("env_steps"):
            return int(r["env_steps"]) // int(r["iteration"])
    return int(cfg["env"]["num_envs"]) * int(cfg["ppo"]["num_steps_per_env"])


def sweep_run(run_dir, *, episodes: int = 100, randomize: bool = True, every: int | None = None, device: str = "cpu",
              seed: int = 0, clip=None, env=None, write: bool = True, log=print) -> tuple[list[dict], object]:
    """Evaluate the run's checkpoints; returns (rows, env). Writes <run>/eval_curve[_nominal].json."""
    from .evaluate import evaluate
    from .policy import load_policy

    run_dir = Path(run_dir)
    ckpts = checkpoints(run_dir, every)
    _, info = load_policy(ckpts[-1][1], device)
    per_it = env_steps_per_iteration(run_dir, info["config"])
    # Rows of an earlier sweep with the same settings are kept (evaluation is deterministic), so a sweep
    # can follow a training that is still running.
    tolerances = info["config"]["success"]
    done = {r["iteration"]: r for r in _earlier_rows(run_dir, episodes, randomize, seed, clip, tolerances)}
    rows = []
    for n, path in ckpts:
        if n in done:
            rows.append(done[n])
            continue
        res = evaluate(path, clip=clip, episodes=episodes, randomize=randomize, device=device, seed=seed, env=env)
        env = res.env
        s = res.summary
        row = {"iteration": n, "env_steps": n * per_it, "episodes": episodes,
               "successes": int(res.metrics["success"].sum())}
        row.update({k: _finite(s.get(k)) for k in CURVE_KEYS})
        rows.append(row)
        log(f"  {run_dir.name} it {n:5d} ({n * per_it / 1e6:5.2f}M env steps): success {row['successes']:3d}/{episodes}, "
            f"pitch {row['pitch_rotation_deg_mean']:.0f} deg, joint RMSE {row['joint_rmse_mean']:.3f} rad")
    if write:
        doc = {"run": str(run_dir), "episodes": episodes, "randomize": randomize, "seed": seed,
               "clip": None if clip is None else str(clip), "success_tolerances": tolerances,
               "env_steps_per_iteration": per_it, "rows": rows}
        runs.write_curve(run_dir, randomize, doc)
    return rows, env


def _earlier_rows(run_dir: Path, episodes: int, randomize: bool, seed: int, clip, tolerances: dict) -> list[dict]:
    """The rows of the run's earlier sweep if it evaluated the same way and judged by the same success rule."""
    doc = runs.read_curve_doc(run_dir, randomize)
    if doc is None:
        return []
    same = ((doc.get("episodes"), doc.get("seed"), doc.get("clip"), doc.get("success_tolerances"))
            == (episodes, seed, None if clip is None else str(clip), tolerances))
    return list(doc.get("rows", [])) if same else []


def _finite(v):
    v = None if v is None else float(v)
    return v if v is not None and math.isfinite(v) else None
