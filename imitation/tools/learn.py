"""`imitation learn MOTION`: one command from a motion file to a shipped skill.

    retarget -> refine (motions that end; loops only with --refine) -> train each seed, its checkpoints judged
    as they land, stopping once they have held the stop rate -> ship the chosen checkpoint -> the skill's report

Every stage keeps its result in the work folder (default `runs/learn/<name>/`) with the key it was made from
(`stages.json`: the source's sha256 and the settings), so the same command again reuses what is done and continues
what was stopped (a training resumes from its last checkpoint, a refinement from its own checkpoint).

Training runs in a child process (`imitation train`, one core); this process evaluates each new checkpoint
(`imitation sweep`'s evaluation: deterministic policy, every episode from t = 0, domain randomization) on the
other core while the training goes on. Once the evaluations have been at or above `stop_rate` over `stop_span`
env steps the training is stopped (SIGTERM: it saves and exits); otherwise it runs to the budget. The checkpoint
shipped is the last one of that streak, or the best evaluated one.

Shipped into the project's `policies/`, the skill joins the main job: its motion file is kept in `motions/`
(copied there if it came from elsewhere), its clip in `motions/refined/` or `motions/retargeted/`, and its row
goes into docs/results/skills.md.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from retarget.errors import InputError
from retarget.files import write_text_atomic
from retarget.robot import PROJECT_ROOT

from .. import runs
from . import jobs
from .display import Display

CONFIGS = {"none": PROJECT_ROOT / "configs" / "imitation.yaml",
           "wrap": PROJECT_ROOT / "configs" / "imitation_loop.yaml"}
STAGES = "stages.json"
RESULTS_DIR = PROJECT_ROOT / "docs" / "results"


@dataclass
class Plan:
    source: Path
    name: str
    work: Path
    seeds: list[int]
    env_steps: int = 3_000_000
    ship_to: Path = PROJECT_ROOT / "policies"
    config: Path | None = None           # None: chosen from the clip's loop mode
    refine: str = "auto"                 # auto (motions that end) | always | never
    source_robot: str | None = None
    fps: float | None = None
    method: str = "auto"
    num_envs: int = 256
    episodes: int = 100                  # randomized episodes per checkpoint evaluation
    eval_every: int = 50                 # iterations between evaluated checkpoints
    stop_rate: float = 0.95
    stop_span: int = 500_000             # env steps the evaluations must hold stop_rate over
    report: bool = True
    refine_jobs: int | None = None       # refinement processes (default: one per core on the CPU)
    init_from: Path | None = None        # a checkpoint, run or shipped policy to fine-tune from
    device: str = "cpu"
    stages: dict = field(default_factory=dict)

    @property
    def into_project(self) -> bool:
        return self.ship_to.resolve() == (PROJECT_ROOT / "policies").resolve()

    def dest(self, seed: int) -> Path:
        return self.ship_to / f"{self.name}_s{seed}"


def learn(plan: Plan) -> list[Path]:
    """Run every stage of `plan` not done yet; returns the shipped policy folders."""
    from retarget.clip import sha256_of

    if not plan.source.is_file():
        raise InputError(f"{plan.source}: motion file not found")
    stages_file = plan.work / STAGES
    plan.stages = json.loads(stages_file.read_text()) if stages_file.is_file() else {}
    ours = {v.get("dest") for k, v in plan.stages.items() if k.startswith("ship_s") and isinstance(v, dict)}
    for seed in plan.seeds:  # refuse before hours of work, not after
        dest = plan.dest(seed)
        if dest.exists() and any(dest.iterdir()) and str(dest) not in ours:
            raise InputError(f"{dest}: exists and was not shipped by this learn run (another --name or --ship-to)")
    _check_inputs(plan)
    plan.work.mkdir(parents=True, exist_ok=True)
    plan.stages["source_sha256"] = sha256_of(plan.source)

    display = Display(plan.name)
    shipped = []
    with _terminate_as_interrupt():
        try:
            clip = _retarget(plan, display)
            clip = _refine(plan, clip, display)
            for seed in plan.seeds:
                run, chosen = _train(plan, clip, seed, display)
                shipped.append(_ship(plan, run, chosen, seed, display))
            if plan.report:
                _report(plan, clip, shipped, display)
        finally:
            display.close()
    return shipped


# ---------------------------------------------------------------------------- stages


def _save(plan: Plan) -> None:
    write_text_atomic(plan.work / STAGES, json.dumps(plan.stages, indent=1) + "\n")


def _done(plan: Plan, stage: str, key: dict, *outputs: Path) -> dict | None:
    """The stage's record if it was made from `key` and its outputs are all there."""
    rec = plan.stages.get(stage)
    if rec and rec.get("key") == key and all(Path(p).exists() for p in outputs):
        return rec
    return None


def _clip_home(plan: Plan, kind: str) -> Path:
    """Where a clip of this skill lives: the project's motions/<kind>/ when shipped into it, else the work folder."""
    if plan.into_project:
        return PROJECT_ROOT / "motions" / kind / f"{plan.name}.h5"
    return plan.work / f"{kind}.h5"


def _check_inputs(plan: Plan) -> None:
    """Bad input fails here, in a second and before anything is written: the motion file (read and retargeted in
    memory) and the config."""
    from retarget.importer import load_motion

    from .. import config as config_mod

    load_motion(plan.source, source_robot=plan.source_robot, fps=plan.fps, method=plan.method)
    if plan.config is not None:
        config_mod.load_config(plan.config)
    if plan.init_from is not None:
        _init_source(plan.init_from)


def _retarget(plan: Plan, display: Display) -> Path:
    from retarget.importer import retarget_file

    out = _clip_home(plan, "retargeted")
    key = {"source_sha256": plan.stages["source_sha256"], "source_robot": plan.source_robot, "fps": plan.fps,
           "method": plan.method}
    if _done(plan, "retarget", key, out):
        display.stage("retarget", f"cached: {out}")
        return out
    display.stage("retarget", str(plan.source))
    with display.captured(plan.work / "retarget.log"):
        retarget_file(plan.source, out, source_robot=plan.source_robot, fps=plan.fps, method=plan.method,
                      plot=plan.work / "retargeted.png")
    plan.stages["retarget"] = {"key": key, "output": str(out)}
    _save(plan)
    display.stage("retarget", f"done: {out} (quality report in {plan.work / 'retarget.log'})")
    return out


def _refine(plan: Plan, clip: Path, display: Display) -> Path:
    from retarget.clip import read_clip
    from retarget.robot import load_robot

    from ..refine.run import CHECKPOINT_SUFFIX, refine_motion

    loop = read_clip(clip, load_robot()).loop_mode
    if plan.refine == "never" or (plan.refine == "auto" and loop == "wrap"):
        display.stage("refine", "skipped (a loop)" if loop == "wrap" else "skipped (--refine never)")
        return clip
    out = _clip_home(plan, "refined")
    config = plan.config or CONFIGS[loop]
    key = {"source_sha256": plan.stages["source_sha256"], "source_robot": plan.source_robot,
           "config_sha256": _config_sha(config)}
    rec = _done(plan, "refine", key)
    if rec and rec.get("refused"):
        display.stage("refine", f"refused earlier ({rec['refused']}); training on the retargeted clip")
        return clip
    if rec and out.is_file():
        display.stage("refine", f"cached: {out}")
        return out
    from ..sim import cpu_cores

    display.stage("refine", f"{plan.source} -> {out}")
    started = time.time()
    resume = Path(str(out) + CHECKPOINT_SUFFIX).is_file()
    try:
        with display.captured(plan.work / "refine.log", progress=True) as log:
            refine_motion(plan.source, out, config=config, resume=resume, json_path=plan.work / "refine.json",
                          device=plan.device, source_robot=plan.source_robot,
                          jobs=plan.refine_jobs or (cpu_cores() if plan.device == "cpu" else 1), progress=log)
    except InputError as e:
        if "refinement stopped" in str(e):
            raise
        # The motion is kept as it is: the policy imitates the kinematic clip, which it cannot follow exactly.
        plan.stages["refine"] = {"key": key, "refused": str(e), "wall_s": round(time.time() - started, 1)}
        _save(plan)
        display.stage("refine", f"refused: {e}; training on the retargeted clip")
        return clip
    plan.stages["refine"] = {"key": key, "output": str(out), "wall_s": round(time.time() - started, 1)}
    _save(plan)
    display.stage("refine", f"done: {out} (report in {plan.work / 'refine.log'})")
    return out


def _config_sha(path: Path) -> str:
    import hashlib

    from .. import config as config_mod

    return hashlib.sha256(json.dumps(config_mod.load_config(path), sort_keys=True).encode()).hexdigest()


def iterations_for(env_steps: int, cfg: dict, num_envs: int) -> int:
    return max(1, math.ceil(env_steps / (num_envs * int(cfg["ppo"]["num_steps_per_env"]))))


def _train(plan: Plan, clip: Path, seed: int, display: Display) -> tuple[Path, int]:
    """Train one seed (or continue it) while evaluating its checkpoints; returns (run folder, chosen iteration)."""
    from retarget.clip import read_clip, sha256_of
    from retarget.robot import load_robot

    from .. import config as config_mod

    config = plan.config or CONFIGS[read_clip(clip, load_robot()).loop_mode]
    weights = None
    if plan.init_from is not None:
        weights, source_cfg = _init_source(plan.init_from)
        config = _fine_tune_config(plan.work / "fine_tune.yaml", config, source_cfg)
    cfg = config_mod.load_config(config)
    iterations = iterations_for(plan.env_steps, cfg, plan.num_envs)
    stage = f"train_s{seed}"
    key = {"clip_sha256": sha256_of(clip), "config_sha256": _config_sha(config), "seed": seed,
           "num_envs": plan.num_envs, "iterations": iterations, "episodes": plan.episodes,
           "eval_every": plan.eval_every, "stop_rate": plan.stop_rate, "stop_span": plan.stop_span,
           "init_from_sha256": sha256_of(weights) if weights else None}
    rec = _done(plan, stage, key)
    if rec and rec.get("chosen") and Path(rec["run"]).is_dir():
        display.stage(stage, f"cached: {rec['run']} (checkpoint {rec['chosen']})")
        return Path(rec["run"]), int(rec["chosen"])
    run = Path(rec["run"]) if rec and Path(rec["run"], runs.CONFIG).is_file() else None
    runs_dir = plan.work / "runs"
    log_path = plan.work / f"{stage}.log"
    cmd = [sys.executable, "-m", "imitation.cli", "train", "--max-iterations", str(iterations), "--threads", "1",
           "--device", plan.device]
    if run is not None and runs.checkpoints(run):
        cmd += ["--resume", str(run)]
    else:
        cmd += ["--config", str(config), "--clip", str(clip), "--num-envs", str(plan.num_envs), "--seed", str(seed),
                "--runs-dir", str(runs_dir), "--name", f"{plan.name}_s{seed}"]
        if weights is not None:
            cmd += ["--init-from", str(weights)]
    display.stage(stage, f"{iterations} iterations ({plan.env_steps / 1e6:.1f}M env steps) at most; log {log_path}")
    started = time.time()
    proc = jobs.start(cmd, log_path, append=True, own_session=True)
    try:
        run = run or _wait_for_run(proc, runs_dir, f"_{plan.name}_s{seed}", started, log_path)
        plan.stages[stage] = {"key": key, "run": str(run), "wall_s": (rec or {}).get("wall_s", 0.0)}
        _save(plan)
        chosen = _watch(plan, proc, run, iterations, stage, display)
    except BaseException:
        jobs.stop(proc, timeout=600)  # the training saves a checkpoint first
        raise
    wall = (rec or {}).get("wall_s", 0.0) + time.time() - started
    plan.stages[stage] = {"key": key, "run": str(run), "chosen": chosen, "wall_s": round(wall, 1)}
    _save(plan)
    return run, chosen


# What a fine-tune takes from the policy it starts from: what the network sees and how its actions are applied,
# and the networks' shapes. The rest (rewards, termination, success, noise, PPO) is the motion's own config.
_INHERITED_ENV = ("observations", "action_mode", "action_scale", "residual_lead", "residual_base",
                  "residual_velocity_gain", "clip_actions")
_INHERITED_NET = ("class_name", "hidden_dims", "activation", "obs_normalization")


def _init_source(path: Path) -> tuple[Path, dict]:
    """(weights file, its run's config) of a checkpoint, run folder or shipped policy folder."""
    weights = runs.weights_file(path)
    if weights is None:
        raise InputError(f"{path}: --init-from needs a checkpoint model_<n>.pt, a run folder or a policy folder")
    for folder in (weights.parent, weights.parent.parent):  # a run's exported/policy.pt has its config one up
        if (folder / runs.CONFIG).is_file():
            return weights, runs.read_config(folder / runs.CONFIG)
    raise InputError(f"{weights}: no {runs.CONFIG} beside it to tell what its network observes")


def _fine_tune_config(out: Path, base: Path, source_cfg: dict) -> Path:
    """`base` with the observation, action and network settings of the policy a fine-tune starts from."""
    import yaml

    env = {k: source_cfg["env"][k] for k in _INHERITED_ENV if k in source_cfg["env"]}
    ppo = {net: {k: source_cfg["ppo"][net][k] for k in _INHERITED_NET if k in source_cfg["ppo"][net]}
           for net in ("actor", "critic")}
    text = yaml.safe_dump({"include": str(Path(base).resolve()), "env": env, "ppo": ppo}, sort_keys=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "# made by imitation learn --init-from: the motion's config with what the network "
                           "it starts from needs\n" + text)
    return out


def _wait_for_run(proc, runs_dir: Path, suffix: str, started: float, log_path: Path) -> Path:
    """The run folder the child training creates (named by its start time)."""
    while True:
        found = [p.parent for p in runs_dir.glob(f"*/*{suffix}/{runs.CONFIG}") if p.stat().st_mtime >= started - 1]
        if found:
            return max(found, key=lambda p: p.stat().st_mtime)
        if proc.poll() is not None:
            raise InputError(f"training failed before its run started: {jobs.last_line(log_path) or 'no output'} (log {log_path})")
        time.sleep(1.0)


def stop_point(rows: list[dict], rate: float, span: int) -> dict | None:
    """The checkpoint evaluation where the training may stop: the last of consecutive evaluations, all at or above
    `rate`, spanning at least `span` env steps; None while there is none."""
    streak: list[dict] = []
    for row in sorted(rows, key=lambda r: r["iteration"]):
        streak = streak + [row] if (row.get("success_rate") or 0.0) >= rate else []
        if streak and streak[-1]["env_steps"] - streak[0]["env_steps"] >= span:
            return streak[-1]
    return None


def best_row(rows: list[dict]) -> dict:
    """The evaluated checkpoint to ship when the training ran to its budget: highest success, then the later."""
    return max(rows, key=lambda r: ((r.get("success_rate") or 0.0), r["iteration"]))


def _watch(plan: Plan, proc, run: Path, iterations: int, stage: str, display: Display) -> int:
    """Evaluate each new checkpoint of the running training; stop it by the stop rule; returns the chosen
    iteration."""
    from ..evaluation.sweep import sweep_run

    env, rows, stopped = None, [], None
    while True:
        finished = proc.poll() is not None
        have = [n for n, _ in runs.checkpoints(run)] if run.is_dir() else []
        done = {r["iteration"] for r in rows}
        pending = [n for n in have if n not in done and ((n - 1) % plan.eval_every == 0 or (finished and n == have[-1]))]
        if pending and stopped is None:
            quiet = display.captured(plan.work / f"{stage}_eval.log")
            with quiet as log:
                # While it trains, the newest checkpoint first: the stop rule then judges the policy as it is
                # now even when evaluations are slower than the training (the rest are evaluated at the end).
                rows, env = sweep_run(run, episodes=plan.episodes, every=plan.eval_every, device=plan.device,
                                      env=env, rebuild=True, log=log, newest_only=not finished)
            hit = stop_point(rows, plan.stop_rate, plan.stop_span)
            if hit is not None and not finished:
                stopped = hit
                display.stage(stage, f"held >= {plan.stop_rate:.0%} over {plan.stop_span / 1e6:.1f}M env steps "
                                     f"at iteration {hit['iteration']}: stopping the training")
                proc.send_signal(signal.SIGTERM)
        display.training(stage, runs.read_progress(run) if run.is_dir() else [], iterations, rows)
        more = stopped is None and len(pending) > 1    # older checkpoints left to evaluate
        if finished and not more:
            break
        if not more:
            time.sleep(2.0)
    if proc.returncode not in (0, -signal.SIGTERM):
        raise InputError(f"training failed: {jobs.last_line(plan.work / f'{stage}.log') or 'no output'} "
                         f"(log {plan.work / f'{stage}.log'}; the same command continues it)")
    if stopped is None:
        stopped = stop_point(rows, plan.stop_rate, plan.stop_span)
    chosen = stopped or best_row(rows)
    _export_checkpoint(plan, run, int(chosen["iteration"]), stage, display)
    display.stage(stage, f"chosen: checkpoint {chosen['iteration']} ({chosen['env_steps'] / 1e6:.2f}M env steps), "
                         f"{chosen['success_rate']:.0%} randomized")
    return int(chosen["iteration"])


def _export_checkpoint(plan: Plan, run: Path, iteration: int, stage: str, display: Display) -> None:
    """The run's exports (TorchScript, ONNX) made from checkpoint `iteration` (a training resumed there for zero
    iterations: it loads, saves and exports)."""
    cmd = [sys.executable, "-m", "imitation.cli", "train", "--resume", str(runs.checkpoint_path(run, iteration)),
           "--max-iterations", str(iteration), "--threads", "1", "--device", plan.device]
    display.stage(stage, f"exporting checkpoint {iteration}")
    code = jobs.start(cmd, plan.work / f"{stage}.log", append=True).wait()
    if code != 0:
        raise InputError(f"export of {runs.checkpoint_path(run, iteration)} failed (log {plan.work / f'{stage}.log'})")


def _ship(plan: Plan, run: Path, chosen: int, seed: int, display: Display) -> Path:
    from .ship import ship_run

    stage, dest = f"ship_s{seed}", plan.dest(seed)
    key = {"run": str(run), "chosen": chosen}
    if _done(plan, stage, key, dest):
        display.stage(stage, f"cached: {dest}")
        return dest
    if dest.exists():
        shutil.rmtree(dest)  # an earlier shipment of this learn run (checked at the start)
    if plan.into_project and not plan.source.resolve().is_relative_to(PROJECT_ROOT):
        kept = PROJECT_ROOT / "motions" / f"{plan.name}{plan.source.suffix}"
        if kept.exists() and kept.read_bytes() != plan.source.read_bytes():
            raise InputError(f"{kept}: exists with other content; give another --name")
        shutil.copyfile(plan.source, kept)  # the main job remakes the skill's clip from it
    ship_run(run, dest)
    plan.stages[stage] = {"key": key, "dest": str(dest)}
    _save(plan)
    display.stage(stage, f"shipped: {dest}")
    return dest


def _report(plan: Plan, clip: Path, shipped: list[Path], display: Display) -> Path:
    from retarget.clip import read_clip
    from retarget.robot import load_robot

    from .pipeline import Skill, discover, run_skill, write_index

    settings = read_clip(_clip_home(plan, "retargeted"), load_robot()).retarget_settings
    refined = clip if "refine" in read_clip(clip, load_robot()).retarget_settings else None
    skill = Skill(plan.name, plan.source, settings, refined, policies=shipped)
    out = RESULTS_DIR if plan.into_project else plan.work / "report"
    display.stage("report", f"evaluating {len(shipped)} polic{'y' if len(shipped) == 1 else 'ies'} (Genesis, MuJoCo)")
    with display.captured(plan.work / "report.log"):
        report = run_skill(skill, out, episodes=100, device=plan.device)
        if plan.into_project:
            known = [s for s in discover().values() if (out / s.name / "summary.json").is_file()]
            previous = json.loads((out / "skills.json").read_text()).get("wall_s", 0.0) \
                if (out / "skills.json").is_file() else 0.0
            write_index(out, known, previous)
    display.stage("report", f"{report}")
    return report


class _Interrupt(KeyboardInterrupt):
    pass


class _terminate_as_interrupt:
    """SIGTERM ends `learn` the way Ctrl-C does: the child training saves, the stages done so far are kept."""

    def __enter__(self):
        self.old = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise _Interrupt

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, self.old)
        return False
