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

import json
import math
from pathlib import Path

from retarget.errors import InputError
from retarget.files import write_text_atomic

# Summary metrics kept per checkpoint (imitation.metrics.summarize keys).
CURVE_KEYS = ("success_rate", "success_ci_low", "success_ci_high", "pitch_rotation_deg_mean", "apex_height_mean",
              "final_tilt_deg_mean", "joint_rmse_mean", "foot_pos_error_mean", "peak_torque_mean")


def curve_name(randomize: bool) -> str:
    return "eval_curve.json" if randomize else "eval_curve_nominal.json"


def checkpoints(run_dir: Path, every: int | None = None) -> list[tuple[int, Path]]:
    """(completed iterations, path) of the run's checkpoints, every `every` iterations plus the last one."""
    from .train import _CKPT

    found = sorted((int(m.group(1)), p) for p in Path(run_dir).glob("model_*.pt") if (m := _CKPT.search(p.name)))
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
    p = Path(run_dir) / "progress.jsonl"
    if p.is_file():
        for line in p.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if r.get("iteration") and r.get("env_steps"):
                return int(r["env_steps"]) // int(r["iteration"])
    return int(cfg["env"]["num_envs"]) * int(cfg["ppo"]["num_steps_per_env"])


def sweep_run(run_dir, *, episodes: int = 100, randomize: bool = True, every: int | None = None, device: str = "cpu",
              seed: int = 0, clip=None, env=None, write: bool = True, log=print) -> tuple[list[dict], object]:
    """Evaluate the run's checkpoints; returns (rows, env). Writes <run>/eval_curve[_nominal].json."""
    from .evaluate import evaluate, load_policy

    run_dir = Path(run_dir)
    ckpts = checkpoints(run_dir, every)
    _, info = load_policy(ckpts[-1][1], device)
    per_it = env_steps_per_iteration(run_dir, info["config"])
    # Rows of an earlier sweep with the same settings are kept (evaluation is deterministic), so a sweep
    # can follow a training that is still running.
    done = {r["iteration"]: r for r in _earlier_rows(run_dir, episodes, randomize, seed, clip)}
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
               "clip": None if clip is None else str(clip), "env_steps_per_iteration": per_it, "rows": rows}
        write_text_atomic(run_dir / curve_name(randomize), json.dumps(doc, indent=1) + "\n")
    return rows, env


def _earlier_rows(run_dir: Path, episodes: int, randomize: bool, seed: int, clip) -> list[dict]:
    p = run_dir / curve_name(randomize)
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    same = (doc.get("episodes"), doc.get("seed"), doc.get("clip")) == (episodes, seed, None if clip is None else str(clip))
    return list(doc.get("rows", [])) if same else []


def _finite(v):
    v = None if v is None else float(v)
    return v if v is not None and math.isfinite(v) else None


def read_curve(run_dir, randomize: bool = True) -> list[dict]:
    """The rows of a run's eval_curve JSON, [] when it has none."""
    p = Path(run_dir) / curve_name(randomize)
    if not p.is_file():
        return []
    try:
        return list(json.loads(p.read_text())["rows"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{p}: not an eval curve ({e})") from None


def milestones(rows: list[dict], target: float = 0.9) -> dict:
    """Env steps to the first success and to `target` success rate (first checkpoint reaching it), and the
    success rate of the last checkpoint (the end of the budget)."""
    first = next((r for r in rows if (r.get("successes") or 0) > 0), None)
    hit = next((r for r in rows if (r.get("success_rate") or 0.0) >= target - 1e-12), None)
    last = rows[-1] if rows else None
    return {
        "first_success_env_steps": None if first is None else first["env_steps"],
        "target": target,
        "target_env_steps": None if hit is None else hit["env_steps"],
        "final_env_steps": None if last is None else last["env_steps"],
        "final_success_rate": None if last is None else last.get("success_rate"),
        "best_success_rate": max((r.get("success_rate") or 0.0 for r in rows), default=None),
    }
