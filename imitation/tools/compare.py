"""Imitation against reward-only: train both (or take existing runs), evaluate both, write a report.

    imitation compare --iterations 300 --num-envs 256 --seeds 1 2 3 --out out/compare
    imitation compare --runs runs/imitation_backflip/<run> runs/reward_backflip/<run> --out out/compare

Training: every (policy, seed) pair is one `imitation train` process (imitation.rl.train.train in a fresh
process: its own gs.init, its own log file in <out>/logs/, a crash or its memory stays there), with the
same seed and the same env-step budget for both policies (`--budget` env steps, or `--iterations`,
times num_steps_per_env x num_envs of each config). `--jobs 2` trains two at a time (Genesis steps on
one CPU thread per process); wall times are then measured under contention, equally for both. `--ranks N`
spreads each training over N processes (`imitation train --ranks N`: torchrun, the same envs in total, so the
same budget and PPO batch); jobs x ranks processes then share the cores.

Evaluation: imitation.evaluation.evaluate.evaluate_both on every run, nominal and randomized (`--episodes` each), with
the same evaluation seed, in one batch (the nominal condition is deterministic: one episode stands for all). Episodes of all seeds of a policy are pooled for the table.

Report folder:
    report.md              verdicts (who won on what), metric tables (nominal, randomized), per-seed success,
                           learning speed, figures, settings
    summary.json           the same numbers, machine-readable
    learning_curves.png    success rate and tracking errors of the training episodes that start at t = 0
                           (`Success/...` of progress.jsonl) against env steps, mean over seeds and min-max band
    height_pitch.png       base height and backward pitch over time, both policies (nominal) and the reference
    compare.mp4            both policies (first seed, first nominal episode) beside the reference ghost
    runs/, logs/           the trained runs and their training logs (when trained here)

The report itself (`imitation.analysis.report.build_report`) needs no Genesis: it takes progress records and evaluation
results and writes everything but the video.
"""

from __future__ import annotations

import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from retarget.errors import InputError
from retarget.robot import PROJECT_ROOT

from .. import config as config_mod
from ..runs import CONFIG, checkpoints as run_checkpoints, read_curve, read_progress, run_folder
from ..analysis.report import PolicyData, build_report
from ..config import resolve_path
from ..sim import cpu_cores
from .jobs import Job, run_jobs

LOOP_VIDEO_S = 4.0  # seconds of video for a looping clip
VIDEO_FPS = 25.0    # smooth enough to follow a flip, and half the frames of the 50 Hz control rate to render

DEFAULT_CONFIGS = {
    "imitation": PROJECT_ROOT / "configs" / "imitation_backflip_refined_jointbase.yaml",
    "reward-only": PROJECT_ROOT / "configs" / "reward_backflip.yaml",
}


def iterations_for(config_path, budget: int | None, iterations: int | None, num_envs: int | None) -> tuple[int, int]:
    """(iterations, env steps) of a config for an env-step budget (rounded up to whole iterations)."""
    cfg = config_mod.load_config(config_path)
    n = int(num_envs or cfg["env"]["num_envs"])
    per_it = n * int(cfg["ppo"]["num_steps_per_env"])
    if iterations is None:
        iterations = math.ceil(budget / per_it) if budget is not None else int(cfg["ppo"]["max_iterations"])
    return int(iterations), int(iterations) * per_it


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower()


def _experiment(config_path: Path) -> str:
    return str(config_mod.load_config(config_path)["experiment"])


def _shown(path: Path) -> str:
    """A path for the report: relative to the project when inside it (reports travel with the repository)."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


class TrainingFailed(InputError):
    """A training process failed: the message holds the end of its log."""


def train_runs(out: Path, configs: dict[str, Path], seeds, *, budget=None, iterations=None, num_envs=None,
               device="cpu", jobs: int = 1, clip=None, ranks: int = 1) -> dict[str, list[tuple[int, Path]]]:
    """Train every (policy, seed) in its own `imitation train` process (`ranks` processes each); returns
    label -> [(seed, run dir)]."""
    if ranks < 1:
        raise InputError(f"--ranks must be at least 1, got {ranks}")
    for label, cfg in configs.items():
        n = int(num_envs or config_mod.load_config(cfg)["env"]["num_envs"])
        if n % ranks:
            raise InputError(f"{label}: {n} envs do not split evenly over {ranks} ranks (--num-envs is the total)")

    runs_dir, logs = out / "runs", out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    todo = []
    for seed in seeds:
        for label, cfg in configs.items():
            its, steps = iterations_for(cfg, budget, iterations, num_envs)
            name = f"{_slug(label)}_s{seed}"
            cmd = [sys.executable, "-m", "imitation.cli", "train", "--config", str(cfg), "--seed", str(seed),
                   "--max-iterations", str(its), "--name", name, "--runs-dir", str(runs_dir), "--device", device]
            if num_envs is not None:
                cmd += ["--num-envs", str(num_envs)]
            if clip is not None:
                cmd += ["--clip", str(Path(clip).resolve())]
            if device == "cpu":  # the runs side by side, and their ranks, share the cores out for their updates
                cmd += ["--threads", str(max(1, cpu_cores() // (max(1, jobs) * ranks)))]
            if ranks > 1:  # the process becomes torchrun (terminating it stops its ranks)
                cmd += ["--ranks", str(ranks)]
            todo.append((label, seed, name, cmd, its, steps))
    result: dict[str, list[tuple[int, Path]]] = {label: [] for label in configs}
    meta = {name: (label, seed, its, steps) for label, seed, name, _, its, steps in todo}

    def started(job):
        _, _, its, steps = meta[job.name]
        print(f"  training {job.name}: {its} iterations, {steps:,} env steps (log: {job.log})", flush=True)

    def finished(job, rc, seconds):
        label, seed, _, _ = meta[job.name]
        text = job.log.read_text(errors="replace")
        m = re.findall(r"^run: (.+)$", text, flags=re.M)
        if rc != 0 or not m:
            tail = "\n".join(text.splitlines()[-15:])
            raise TrainingFailed(f"training {job.name} failed (exit code {rc}); log {job.log}:\n{tail}")
        print(f"  trained {job.name} in {seconds:.0f} s: {m[-1]}", flush=True)
        result[label].append((seed, Path(m[-1])))

    run_jobs([Job(name, cmd, logs / f"{name}.log", Path.cwd()) for _, _, name, cmd, _, _ in todo], jobs,
             started=started, finished=finished)
    for label in result:
        result[label].sort()
    return result


def group_runs(paths) -> dict[str, list[tuple[int, Path]]]:
    """Existing runs grouped by their config's experiment name, in order of first appearance (one group: a
    report of that policy alone; two: the comparison)."""
    import yaml

    groups: dict[str, list[tuple[int, Path]]] = {}
    for p in paths:
        p = Path(p)
        run = run_folder(p)
        cfg_file = run / CONFIG
        if not cfg_file.is_file():
            raise InputError(f"{p}: no {CONFIG} in {run}: is it a run folder?")
        cfg = yaml.safe_load(cfg_file.read_text()) or {}
        label = str(cfg.get("experiment", run.parent.name))
        groups.setdefault(label, []).append((int(cfg.get("seed", 0)), p))
    if not groups:
        raise InputError("--runs: no runs given")
    return groups


def compare(
    out: str | Path,
    *,
    runs=None,
    budget: int | None = None,
    iterations: int | None = None,
    num_envs: int | None = None,
    seeds=(1,),
    episodes: int = 16,
    video: bool = True,
    device: str = "cpu",
    jobs: int = 1,
    configs: dict[str, Path] | None = None,
    eval_seed: int = 0,
    res: tuple[int, int] = (960, 400),
    clip: str | Path | None = None,
    sweep: int = 0,
    sweep_every: int | None = None,
    ranks: int = 1,
    external=(),
    title: str | None = None,
    labels: dict[str, str] | None = None,
    extra_tracks=(),
) -> Path:
    """The whole job: train (or take `runs`), evaluate, report. Returns the report's path.

    Learning speed under randomization: a run's eval_curve.json (imitation sweep) is read when it has one;
    with `sweep` > 0, runs without one get their checkpoints evaluated (`sweep` episodes each, one per
    `sweep_every` iterations) and the file written.

    `external`: policy files from elsewhere (e.g. the official Genesis `single.pt`), evaluated the same way and
    shown as further columns (no learning curves: there is no training log). `labels` renames groups (experiment
    name -> label); `title`: the motion's name in the report (default: the clip's); `extra_tracks`: (label,
    Trajectory) pairs recorded elsewhere (e.g. in MuJoCo), their first episode added to the video."""
    from ..evaluation.sweep import sweep_runs
    from ..sim import cpu_cores

    from retarget.clip import read_clip
    from retarget.robot import load_robot

    t_start = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    configs = {k: Path(v) for k, v in (configs or DEFAULT_CONFIGS).items()}
    settings: dict = {"episodes": episodes, "eval_seed": eval_seed, "device": device, "sweep_episodes": sweep,
                      "sweep_every": sweep_every}
    if clip is not None:
        clip = resolve_path(clip).resolve()
        if not clip.is_file():
            raise InputError(f"{clip}: reference clip not found")
    if runs:
        groups = group_runs(runs)
        settings["runs"] = [_shown(Path(r)) for r in runs]
    else:
        if budget is not None and iterations is not None:
            raise InputError("give --budget or --iterations, not both")
        plan = {label: iterations_for(cfg, budget, iterations, num_envs) for label, cfg in configs.items()}
        settings.update(configs={k: str(v) for k, v in configs.items()}, seeds=list(seeds), num_envs=num_envs,
                        iterations={k: v[0] for k, v in plan.items()}, env_steps={k: v[1] for k, v in plan.items()},
                        jobs=jobs, ranks=ranks)
        print(f"training {len(configs)} policies x {len(seeds)} seed(s): "
              + ", ".join(f"{k} {v[0]} iterations ({v[1]:,} env steps)" for k, v in plan.items()), flush=True)
        t0 = time.time()
        groups = train_runs(out, configs, seeds, budget=budget, iterations=iterations, num_envs=num_envs,
                            device=device, jobs=jobs, clip=clip, ranks=ranks)
        # Named by their experiments, as runs given with --runs are: the same report either way.
        names = {label: _experiment(configs[label]) for label in groups}
        if len(set(names.values())) == len(names):
            groups = {names[label]: members for label, members in groups.items()}
        settings["training_wall_s"] = round(time.time() - t0, 1)

    # ---- checkpoint sweeps of the runs without an eval curve: one process per core (imitation sweep --jobs)
    if sweep > 0:
        folders = [run_folder(run) for members in groups.values() for _, run in members if run.is_dir()]
        todo = [d for d in folders if not read_curve(d, label=_curve_label(d, clip)) and run_checkpoints(d)]
        if todo:
            every = f", one per {sweep_every} iterations" if sweep_every else ""
            print(f"  evaluating the checkpoints of {len(todo)} run(s) ({sweep} randomized episodes each{every})",
                  flush=True)
            sweep_runs(todo, episodes=sweep, randomize=True, every=sweep_every, device=device, seed=eval_seed,
                       clip=clip, jobs=cpu_cores() if device == "cpu" else 1)

    t0 = time.time()
    policies, notes, clip_paths = evaluate_groups(groups, external, clip=clip, episodes=episodes, device=device,
                                                  eval_seed=eval_seed)
    if labels:
        for p in policies:
            p.label = labels.get(p.label, p.label)
    settings["evaluation_wall_s"] = round(time.time() - t0, 1)
    if len(clip_paths) > 1:
        notes.append(f"the policies were evaluated against different clips: {sorted(clip_paths)}")
    clip = read_clip(sorted(clip_paths)[0], load_robot())
    settings["clip"] = _shown(Path(sorted(clip_paths)[0]))

    video_path = None
    if video:
        video_path, settings["video"] = render_comparison(out, policies, clip, extra_tracks, res)
    settings["total_wall_s"] = round(time.time() - t_start, 1)
    report = build_report(out, policies, clip, video=video_path, notes=notes, settings=settings, title=title)
    print(f"report: {report} ({settings['total_wall_s']:.0f} s)")
    return report


def _curve_label(run_dir: Path, clip) -> str:
    """Which of a run's eval curves judges it on `clip`: a policy of several clips has one per clip."""
    cfg = run_dir / CONFIG
    if clip is None or not cfg.is_file() or not (yaml.safe_load(cfg.read_text()) or {}).get("clips"):
        return ""
    return Path(clip).stem


def evaluate_groups(groups: dict, external=(), *, clip=None, episodes: int, device: str, eval_seed: int):
    """Every run of every group, and every external policy, on `episodes` episodes nominal and randomized (one env
    per group, built with domain randomization: env 0 of each batch runs the nominal robot, whose deterministic
    episode stands for all of the nominal ones, the others the randomized episodes). Returns (PolicyData per group,
    notes for the report, the clips the policies were evaluated against)."""
    from ..evaluation.evaluate import evaluate_both

    policies, notes = [], []
    clip_paths = set()
    for label, members in groups.items():
        pdata = PolicyData(label=label, runs=[], progress=[], seeds=[])
        env = None
        for seed, run in members:
            run_dir = run_folder(run)
            print(f"  evaluating {label} seed {seed}: {run}", flush=True)
            nom, rnd = evaluate_both(run, clip=clip, episodes=episodes, device=device, seed=eval_seed, env=env)
            env = rnd.env
            pdata.runs.append(_shown(run))
            pdata.seeds.append(seed)
            pdata.progress.append(read_progress(run_dir))
            pdata.nominal.append(nom)
            pdata.randomized.append(rnd)
            pdata.curves.append(read_curve(run_dir, label=_curve_label(run_dir, clip)) if run.is_dir() else [])
            clip_paths.add(nom.settings["clip"])
            if not pdata.progress[-1]:
                notes.append(f"{run}: no progress.jsonl: no learning curve for this run")
        policies.append(pdata)
    for path in external:
        path = Path(path)
        print(f"  evaluating the external policy {path}", flush=True)
        nom, rnd = evaluate_both(path, clip=clip, episodes=episodes, device=device, seed=eval_seed)
        policies.append(PolicyData(label=f"external {path.stem}", runs=[_shown(path)], progress=[[]], seeds=[0],
                                   nominal=[nom], randomized=[rnd], curves=[[]]))
        notes.append(f"external {path.stem}: {_shown(path)}, a TorchScript policy run with the settings of the Genesis "
                     f"backflip example (imitation eval's defaults for a policy without a config); no training log")
    return policies, notes, clip_paths


def render_comparison(out: Path, policies, clip, extra_tracks=(), res=(960, 400)) -> tuple[Path, dict]:
    """<out>/compare.mp4: the first policy, the reference ghost, the second policy (if any) and the `extra_tracks`
    side by side, from each one's first nominal episode; also the frame at the reference's apex as a PNG. Returns
    the video's path and its settings (frames, render rate, wall time)."""
    from ..evaluation.render import render_tracks, track_from_clip, track_from_trajectory

    shown = [track_from_trajectory(p.nominal[0].trajectory, 0, label=p.label) for p in policies[:2]]
    shown += [track_from_trajectory(traj, 0, label=label) for label, traj in extra_tracks]
    dt = policies[0].nominal[0].trajectory.dt
    n = max(len(t) for t in shown)
    if clip.loop_mode == "wrap":  # a few cycles show a gait; the episode's 10 s would take minutes to render
        n = min(n, int(round(LOOP_VIDEO_S / dt)))
    tref = track_from_clip(clip, np.arange(n) * dt, label="reference")
    print("  rendering the video", flush=True)
    t0 = time.time()
    apex_t = float(np.argmax(tref.root_pos[:, 2])) * dt  # the still frame: the reference at its highest
    info = render_tracks(shown[:1] + [tref] + shown[1:], out / "compare.mp4", dt, res=res,
                         frame_png=out / "compare_frame.png", frame_png_time=apex_t, max_frames=n,
                         fps=VIDEO_FPS)
    return info.path, {"frames": info.frames, "render_fps": round(info.render_fps, 2),
                       "wall_s": round(time.time() - t0, 1)}
