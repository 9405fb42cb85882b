"""Success against training env steps: evaluate every checkpoint of a run the way `imitation eval` does
(deterministic, every episode from t = 0, optionally under domain randomization).

    imitation sweep RUN [RUN ...] --episodes 100 --every 50 [--jobs N]

The training log's own success rate (`Success/success_rate`) scores the *noisy* policy on the few training
episodes that start at t = 0; this scores the policy that is shipped. Each run gets `eval_curve.json`
(or `eval_curve_nominal.json`): one row per checkpoint with its iteration, env steps and summary metrics.
The evaluation seed is the same for every checkpoint, so all of them meet the same randomized robots
(friction, mass, gains, latency) and the differences along the curve are the policy's. With --jobs N the
checkpoints are shared out over N processes, each stepping its own scene on one core: a row does not depend on
the process that made it. The curve is written after every checkpoint; a stopped sweep keeps those rows and a new
one with the same settings evaluates only the rest.
"""

from __future__ import annotations

import contextlib
import math
import signal
from pathlib import Path

import numpy as np

from retarget.errors import InputError

from .. import config as config_mod
from .. import runs
from ..env.success import CRITERIA

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


class _Plan:
    """One run's sweep: its checkpoints, the rows it has (from an earlier sweep with the same settings, then
    each one evaluated) and the curve file they are written to after every checkpoint, so that a stopped sweep
    continues where it stopped."""

    def __init__(self, run_dir, episodes: int, randomize: bool, every: int | None, seed: int, clip, device: str):
        from .policy import load_policy

        self.run_dir = Path(run_dir)
        self.episodes, self.randomize, self.seed, self.clip = episodes, randomize, seed, clip
        # how each checkpoint is evaluated (imitation.evaluation.evaluate's settings)
        self.settings = {"clip": clip, "episodes": episodes, "randomize": randomize, "device": device, "seed": seed}
        self.ckpts = checkpoints(self.run_dir, every)
        _, info = load_policy(self.ckpts[-1][1], device)
        self.per_it = env_steps_per_iteration(self.run_dir, info["config"])
        library = bool(info["config"].get("clips"))
        if library and clip is None:
            raise InputError(f"{self.run_dir}: trained on several clips: sweep one of them (--clip)")
        # a policy of several clips: a curve per clip, judged by that clip's rule
        self.label = Path(clip).stem if library else ""
        self.tolerances = config_mod.for_clip(info["config"], clip)["success"] if library else info["config"]["success"]
        earlier = _earlier_rows(self.run_dir, episodes, randomize, seed, clip, self.tolerances, self.label)
        self.done = {r["iteration"]: r for r in earlier}

    def pending(self) -> list[tuple[int, Path]]:
        return [(n, p) for n, p in self.ckpts if n not in self.done]

    def rows(self) -> list[dict]:
        return [self.done[n] for n, _ in self.ckpts if n in self.done]

    def add(self, n: int, res, write: bool, log) -> None:
        """The row of checkpoint `n` from its evaluation; written (if `write`) before it is logged."""
        s = res.summary
        row = {"iteration": n, "env_steps": n * self.per_it, "episodes": self.episodes,
               "successes": int(res.metrics["success"].sum())}
        row.update({k: _finite(s.get(k)) for k in CURVE_KEYS})
        # episodes failing each criterion of the success rule (imitation.env.success), the most failed first
        failed = {c: int((~np.asarray(res.metrics[f"passes_{c}"], bool)).sum()) for c in CRITERIA
                  if f"passes_{c}" in res.metrics}
        row["failed"] = dict(sorted(((c, k) for c, k in failed.items() if k), key=lambda ck: -ck[1]))
        self.done[n] = row
        if write:
            self.write()
        fails = ", ".join(f"{c} {k}" for c, k in row["failed"].items()) or "none"
        log(f"  {self.run_dir.name} it {n:5d} ({n * self.per_it / 1e6:5.2f}M env steps): success "
            f"{row['successes']:3d}/{self.episodes} (failing: {fails}), pitch {row['pitch_rotation_deg_mean']:.0f} "
            f"deg, joint RMSE {row['joint_rmse_mean']:.3f} rad")

    def evaluate_here(self, env, rebuild: bool, write: bool, log, newest_only: bool = False):
        """Evaluate the pending checkpoints (`newest_only`: the newest of them) in this process, starting with
        `env`; returns the env last used."""
        from .evaluate import evaluate

        for n, path in self.pending()[-1:] if newest_only else self.pending():
            res = evaluate(path, env=env, rebuild=rebuild, **self.settings)
            env = res.env
            self.add(n, res, write, log)
        return env

    def write(self) -> None:
        doc = {"run": str(self.run_dir), "episodes": self.episodes, "randomize": self.randomize, "seed": self.seed,
               "clip": None if self.clip is None else str(self.clip), "success_tolerances": self.tolerances,
               "env_steps_per_iteration": self.per_it, "rows": self.rows()}
        runs.write_curve(self.run_dir, self.randomize, doc, self.label)


def sweep_run(run_dir, *, episodes: int = 100, randomize: bool = True, every: int | None = None, device: str = "cpu",
              seed: int = 0, clip=None, env=None, rebuild: bool = False, write: bool = True,
              log=print, newest_only: bool = False) -> tuple[list[dict], object]:
    """Evaluate the run's checkpoints in this process; returns (rows, env). Writes <run>/eval_curve[_nominal].json
    after every checkpoint. `env`, `rebuild`: as `evaluate`'s; `newest_only`: only the newest checkpoint not yet
    evaluated (a training in progress)."""
    plan = _Plan(run_dir, episodes, randomize, every, seed, clip, device)
    env = plan.evaluate_here(env, rebuild, write, log, newest_only)
    if write:
        plan.write()
    return plan.rows(), env


def sweep_runs(run_dirs, *, episodes: int = 100, randomize: bool = True, every: int | None = None,
               device: str = "cpu", seed: int = 0, clip=None, jobs: int = 1, env=None,
               log=print) -> dict[Path, list[dict]]:
    """Evaluate the checkpoints of several runs, in this process (`env`: one to start with) or over `jobs`
    processes, each with its own env (built for its first checkpoint, rebuilt when one needs other env settings),
    handing out one checkpoint at a time. Every checkpoint is evaluated with the same seed, so its row does not
    depend on the process that made it. Returns {run folder: rows}; writes each run's curve after every
    checkpoint, so a stopped sweep (Ctrl-C, SIGTERM: KeyboardInterrupt) keeps what it finished."""
    plans = [_Plan(r, episodes, randomize, every, seed, clip, device) for r in run_dirs]
    tasks = [(i, n, str(path)) for i, plan in enumerate(plans) for n, path in plan.pending()]
    jobs = max(1, min(int(jobs), len(tasks)))
    with _sigterm_as_interrupt():
        if jobs == 1:
            for plan in plans:
                env = plan.evaluate_here(env, True, True, log)
        else:
            import multiprocessing

            log(f"  {len(tasks)} checkpoints over {jobs} processes")
            with multiprocessing.get_context("spawn").Pool(jobs, initializer=_worker_start) as pool:
                # On any way out (an error, Ctrl-C, SIGTERM) the pool's `with` stops its processes; the rows
                # finished so far are written.
                work = ((t, plans[t[0]].settings) for t in tasks)
                for i, n, res in pool.imap_unordered(_evaluate_in_worker, work):
                    plans[i].add(n, res, True, log)
        for plan in plans:
            plan.write()
    return {plan.run_dir: plan.rows() for plan in plans}


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM stops the sweep the way Ctrl-C does (KeyboardInterrupt), so its processes are stopped too."""
    def on_term(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# A sweep process's env, kept between the checkpoints it evaluates.
_ENV = None


def _worker_start() -> None:
    """A sweep process: Ctrl-C and SIGTERM are for the parent (which stops the pool); torch on one thread."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def _evaluate_in_worker(job):
    """(run index, iteration, result without its env and trajectory) of one checkpoint, with this process's env."""
    global _ENV
    from .evaluate import evaluate

    (i, n, path), kwargs = job
    res = evaluate(path, env=_ENV, rebuild=True, **kwargs)
    _ENV = res.env
    res.env, res.trajectory = None, None  # the parent needs the metrics only (the env cannot leave the process)
    return i, n, res


def _earlier_rows(run_dir: Path, episodes: int, randomize: bool, seed: int, clip, tolerances: dict,
                  label: str = "") -> list[dict]:
    """The rows of the run's earlier sweep if it evaluated the same way and judged by the same success rule."""
    doc = runs.read_curve_doc(run_dir, randomize, label)
    if doc is None:
        return []
    same = ((doc.get("episodes"), doc.get("seed"), doc.get("clip"), doc.get("success_tolerances"))
            == (episodes, seed, None if clip is None else str(clip), tolerances))
    return list(doc.get("rows", [])) if same else []


def _finite(v):
    v = None if v is None else float(v)
    return v if v is not None and math.isfinite(v) else None
