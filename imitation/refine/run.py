"""`imitation refine`: a motion file or clip in, a physically exact clip with its open-loop PD targets out.

    source -> Go2 clip at the control rate -> windowed CMA-ES over PD-target offsets in a batched Genesis scene
    -> one replay of the best targets, recorded -> feasibility check against the source -> OUT.h5

Every frame of OUT is a state the simulated Go2 passes through with the env's physics, gains, torque limits
and control period; its `pd_target` dataset holds the targets that produce it, so an env whose residual base
is the clip's PD targets replays it with zero action.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from retarget.errors import InputError

from .. import config as config_mod
from ..config import NOMINAL_DR, TERMINATIONS_OFF, resolve_path

DEFAULT_CONFIG = "configs/imitation.yaml"
CHECKPOINT_SUFFIX = ".refine-checkpoint"


@dataclass
class Refined:
    clip: object            # retarget.clip.Clip: the refined clip (written unless infeasible)
    report: dict
    written: bool


def load_source(source: str | Path, robot, source_robot: str | None = None):
    """Any motion file `imitation retarget` reads, or an HDF5 clip; refused the same way."""
    from retarget.clip import read_clip
    from retarget.importer import load_motion

    source = Path(source)
    if source.suffix.lower() in (".h5", ".hdf5"):
        if not source.is_file():
            raise InputError(f"{source}: clip not found")
        return read_clip(source, robot)
    return load_motion(source, robot, source_robot=source_robot)


def env_overrides(settings: dict, num_envs: int, duration: float) -> dict:
    """The env a refinement simulates in: the config's physics and gains, residual PD targets around the
    source (action = offset in rad), no terminations, every episode from t = 0."""
    return {
        # (the residual's base and scale are set by the search's playback mode)
        "env": {"num_envs": num_envs, "action_mode": "residual", "residual_base": "reference",
                "action_latency": False, "episode_length_s": duration + 1.0,
                "observations": {"future_frames": [], "privileged_critic": False}},
        "reset": {"rsi": False},
        "termination": dict(TERMINATIONS_OFF),
        # Built with per-env physics when candidates run on randomized copies (the search sets them).
        "domain_randomization": {"enabled": settings["robust_copies"] > 1},
    }


def refine_physics(cfg: dict) -> dict:
    """The settings that decide what the refinement's replays do: the config's physics and gains, with the
    residual base of the refinement's own settings (the env's residual settings are the policy's, not its)."""
    from .record import pd_settings

    r = cfg["refine"]
    return {**pd_settings(cfg), "residual_lead": r["residual_lead"], "residual_velocity_gain": r["velocity_gain"]}


def build_rollouts(config, overrides: dict | None, src, symmetric: bool, candidates: int, device: str, env=None):
    """(Rollouts, playback mode) of a scene simulating `candidates` candidates x the robust copies of the
    config's refinement (`env`: a built one to use instead)."""
    import torch

    from retarget.robot import load_robot

    from .cost import Cost
    from .knots import Knots
    from .search import Rollouts

    cfg = config_mod.load_config(config, overrides)
    settings = cfg["refine"]
    robot = load_robot(resolve_path(cfg["robot"]))
    if env is None:
        torch.set_num_threads(1)
        from ..sim import init_genesis

        init_genesis(device)
        from ..env.imitation_env import ImitationEnv

        env_cfg = config_mod.load_config(config, config_mod.merge(
            overrides or {}, env_overrides(settings, candidates * settings["robust_copies"], src.duration)))
        env = ImitationEnv(env_cfg, clip=src)
    if env.ref.num_frames != src.num_frames:
        raise ValueError(f"the refinement env's clip has {env.ref.num_frames} frames, the source {src.num_frames}")
    knots = Knots(env.ref.num_frames, env.dt, settings["knot_dt"], symmetric, robot, env.device, periodic=env.ref.loop)
    limits = (robot.lower, robot.upper, robot.effort if cfg["env"]["torque_limits"] else np.full(12, 1e6))
    cost = Cost(env.ref, settings["costs"], settings["height_margin"], limits, env.num_envs, env.device)
    rollouts = Rollouts(env, knots, cost, copies=settings["robust_copies"], ranges=cfg["domain_randomization"])
    # Playback: PD target = source base + action (rad).
    base = env.ref.joints_ahead(settings["residual_lead"], settings["velocity_gain"])
    return rollouts, dict(residual_base=base, action_scale=1.0)


def playback(env, mode: dict):
    """The refinement's replays: nominal robot, no latency, no terminations, from t = 0 to the clip's end."""
    return env.playback(env.ref.last, dr_ranges=NOMINAL_DR, latency=False, **mode)


def _helper_rollouts(**spec):
    """A helper process's share (shards.Helper): its Rollouts and the playback to serve them in."""
    rollouts, mode = build_rollouts(**spec)
    return rollouts, playback(rollouts.env, mode)


def refine_motion(source, output, *, config=None, seed: int = 1, resume: bool = False, json_path=None,
                  allow_partial: bool = False, device: str = "cpu", source_robot: str | None = None,
                  overrides: dict | None = None, env=None, jobs: int = 1, progress=print) -> Refined:
    """Refine `source` into `output`; see the module docstring. `overrides` patch the config (tests);
    `env`: a built refinement env to reuse (its clip must be the source's); `jobs`: processes simulating each
    generation's candidates (the result does not depend on it)."""

    from retarget.clip import sha256_of, write_clip
    from retarget.files import write_text_atomic
    from retarget.robot import load_robot

    from . import report as rep
    from .knots import is_sagittal
    from .record import record
    from .search import RefineStopped, SearchState, retry_stages, search

    t0 = time.time()
    config = resolve_path(config or DEFAULT_CONFIG)
    cfg = config_mod.load_config(config, overrides)
    robot = load_robot(resolve_path(cfg["robot"]))
    source = Path(source)
    clip = load_source(source, robot, source_robot)              # bad input fails before Genesis starts
    _refuse_body_through_ground(source, clip, robot)
    settings = cfg["refine"]
    dt = cfg["env"]["dt"]
    src = clip.resample(1.0 / dt)
    output = Path(output)
    checkpoint = Path(str(output) + CHECKPOINT_SUFFIX)
    symmetric = {"on": True, "off": False}.get(settings["symmetry"])
    if symmetric is None:
        symmetric = is_sagittal(src, robot)
    key = {"source_sha256": sha256_of(source), "settings": settings, "seed": seed, "pd": refine_physics(cfg)}
    state = _resumed_state(checkpoint, key) if resume else None
    spec = {"config": config, "overrides": overrides, "src": src, "symmetric": symmetric, "device": device}
    rollouts, mode, helpers = _rollouts_over_processes(spec, settings, env, jobs)
    env, knots = rollouts.env, rollouts.knots

    def full_cost(params: np.ndarray) -> dict:
        """Weighted cost terms of one parameter vector on the whole clip: the mean over its copies, whose
        physics is drawn the same way for every call (before and after compare on the same robots), and the
        nominal robot's total."""
        terms, _ = rollouts(params[None], env.ref.last, rng=np.random.RandomState(seed))
        out = {t: float(v) for t, v in zip(rollouts.term_names, terms[0] * rollouts.weights)}
        return out, float(rollouts.copy_totals[0, 0])

    stop = {"now": False}

    def on_signal(signum, frame):
        if stop["now"]:
            raise KeyboardInterrupt
        progress(f"{signal.Signals(signum).name}: stopping after this generation (again to abort)")
        stop["now"] = True

    zero = np.zeros(knots.size)
    tol = settings["tolerances"]

    def result_of(best: np.ndarray, cost_after: tuple) -> tuple:
        """One replay of the best targets, recorded with the simulator's own velocities, and its report."""
        offsets = knots.offsets(best[None])[0]
        before = record(env, actions=knots.offsets(zero[None])[0][:-1], latency=False, **mode)
        rec = record(env, actions=offsets[:-1], simulated_velocities=True, store_pd_target=True, latency=False, **mode)
        if src.loop_mode == "wrap":     # the recorded cycle repeats as its source does
            rec.clip = replace(rec.clip, loop_mode="wrap", cycle_offset_position=src.cycle_offset_position,
                               cycle_offset_rotation=src.cycle_offset_rotation)
        result, source_outcome = rep.outcome(rec.clip), rep.outcome(src)
        report = {
            "source_file": source.name, "source": source_outcome, "before": rep.outcome(before.clip), "result": result,
            "end_error": rep.end_error(result, source_outcome, rec.clip.root_quat[-1], src.root_quat[-1]),
            "physics": rep.physics(rec.clip, robot, cfg["env"]["kp"], cfg["env"]["kd"]),
            "cost_before": cost_before, "cost_after": cost_after[0],
            "nominal_cost_before": nominal_before, "nominal_cost_after": cost_after[1],
            "robust_copies": rollouts.copies, "body_contact_time_s": rec.body_contact_time,
            "faulted_replay": rec.faulted, "candidates": state.candidates, "faulted_candidates": state.faulted,
            "wall_time_s": time.time() - t0, "search_time_s": state.elapsed_s, "rounds": state.round + 1,
            "symmetric": symmetric, "seed": seed,
        }
        report["shortfalls"] = rep.shortfalls(result, source_outcome, tol, rec.body_contact_time, report["physics"])
        if src.loop_mode == "wrap":
            report["loop"] = loop_check(rec.clip, src, cfg, robot)
            report["shortfalls"] += rep.loop_shortfalls(report["loop"], tol)
        report["warnings"] = rep.warnings(report)
        if rec.faulted:
            report["shortfalls"].append("the replay hit a physics fault")
        return rec.clip, report

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with playback(env, mode):
            cost_before, nominal_before = full_cost(zero)
            progress(f"refining {source} ({src.duration:.2f} s, {knots.num_knots} knots x {knots.per_knot} offsets"
                     f"{', left/right symmetric' if symmetric else ''}; {rollouts.num_envs} candidates per generation x "
                     f"{rollouts.copies} robots{f', over {jobs} processes' if jobs > 1 else ''}); "
                     f"unrefined replay cost {sum(cost_before.values()):.4f}")
            if state is None:
                state = SearchState(best=zero.copy(), key=key)
            state = search(rollouts, settings, seed, state, checkpoint, lambda: stop["now"], progress)
            cost_after = full_cost(state.best)
        refined, report = result_of(state.best, cost_after)
        # Not feasible yet: search again around where it fails, from the best so far.
        while report["shortfalls"] and state.round < settings["retries"]:
            plan = retry_stages(knots, settings, rep.shortfall_times(report, tol))
            progress(f"not feasible yet ({'; '.join(report['shortfalls'])}): retry {state.round + 1} of "
                     f"{settings['retries']} over {len(plan)} windows x {settings['retry_generations']} generations")
            state = SearchState(best=state.best, key=key, round=state.round + 1, plan=plan, candidates=state.candidates,
                                faulted=state.faulted, elapsed_s=state.elapsed_s)
            with playback(env, mode):
                state = search(rollouts, settings, seed, state, checkpoint, lambda: stop["now"], progress)
                cost_after = full_cost(state.best)
            refined, report = result_of(state.best, cost_after)
    except RefineStopped:
        raise InputError(f"{source}: refinement stopped; the best so far is kept in {checkpoint} "
                         f"(--resume continues)") from None
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for h in helpers:
            h.close()

    progress(rep.format_report(report), end="")
    if json_path:
        write_text_atomic(json_path, json.dumps(report, indent=2))
    _record_provenance(refined, source, key, config, settings, seed, symmetric, robot, clip, report)
    if report["shortfalls"] and not allow_partial:
        hint = _keyframe_hint(source, rep.shortfall_times(report, tol))
        raise InputError(f"{source}: not feasible within the refinement budget: {'; '.join(report['shortfalls'])}"
                         f"{hint}; nothing written (--allow-partial writes it anyway)")
    refined = _within_limit_tolerance(refined, robot, progress)
    write_clip(refined, output)
    checkpoint.unlink(missing_ok=True)
    return Refined(clip=refined, report=report, written=True)


def loop_check(refined, src, cfg: dict, robot) -> dict:
    """How a refined cycle closes (joint RMSE, height and tilt change between its end and its start) and whether,
    repeated over an evaluation episode, its body moves as its source's by the success rule (`failing`: the
    criteria it misses): a refinement that stands still where the source sways is no refinement of it."""
    import torch

    from ..analysis.metrics import reference_trajectory, tilt
    from ..env.reference import Reference, episode_length_s
    from ..env.success import CRITERIA_LOOP, CRITERIA_MOTION, trajectory_verdicts

    dt = cfg["env"]["dt"]
    ref = Reference(refined, robot, dt, "cpu")
    steps = int(round(episode_length_s({**cfg["env"], "episode_length_s": None}, ref) / dt))
    verdicts = trajectory_verdicts(reference_trajectory(ref, torch.arange(steps + 1)), src, cfg["success"])
    # The body's motion, not the feet's: a source whose feet float or slide has no physical foot schedule to keep
    # (the cost tracks its feet as far as the robot can).
    failing = [k for k in (*CRITERIA_LOOP, *CRITERIA_MOTION) if k != "feet" and k in verdicts and not verdicts[k][0]]
    return {
        "closure_joint_rms_rad": float(np.sqrt(np.mean(np.square(refined.dof_pos[-1] - refined.dof_pos[0])))),
        "closure_height_m": float(refined.root_pos[-1, 2] - refined.root_pos[0, 2]),
        "closure_tilt_deg": float(np.degrees(tilt(refined.root_quat[-1]) - tilt(refined.root_quat[0]))),
        "follows_source": not failing, "failing": failing,
    }


def _within_limit_tolerance(clip, robot, progress):
    """A partial result whose simulated joints went further past a URDF limit than the clip check lets through
    (retarget.clip.LIMIT_TOLERANCE) would be written only to be refused by every stage that reads clips: its
    joint positions are clamped into that band (0.99 of it, clear of rounding), and it says so."""
    from dataclasses import replace

    from retarget.clip import LIMIT_TOLERANCE, limit_excess

    worst = limit_excess(clip, robot)
    if worst["excess_rad"] <= LIMIT_TOLERANCE:
        return clip
    band = 0.99 * LIMIT_TOLERANCE
    dof_pos = np.clip(clip.dof_pos, robot.lower - band, robot.upper + band)
    progress(f"  joint positions clamped to {band:.3f} rad past the URDF limits at {int((dof_pos != clip.dof_pos).any(1).sum())} "
             f"frames (up to {worst['excess_rad'] - band:.3f} rad; worst {worst['joint']} at {worst['time_s']:.2f} s), so "
             f"that train and evaluation accept the clip\n", end="")
    return replace(clip, dof_pos=dof_pos)


def _resumed_state(checkpoint: Path, key: dict):
    """The search state of an interrupted refinement of the same source, seed and settings."""
    from .search import load_checkpoint

    if not checkpoint.is_file():
        raise InputError(f"{checkpoint}: no refinement checkpoint to resume")
    try:
        state = load_checkpoint(checkpoint)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise InputError(f"{checkpoint}: not a readable refinement checkpoint ({e})") from None
    if state.key != key:
        raise InputError(f"{checkpoint}: made for another source, seed or settings; refine without --resume")
    return state


def _rollouts_over_processes(spec: dict, settings: dict, env, jobs: int) -> tuple:
    """(rollouts, playback mode, helpers): a generation's candidates shared out over `jobs` processes (this one and
    jobs - 1 helpers, which build their scenes while this process builds its own)."""
    from .shards import HELPER_READY_TIMEOUT_S, Helper, ShardedRollouts

    candidates = settings["population"] if env is None else env.num_envs // settings["robust_copies"]
    jobs = max(1, min(int(jobs), candidates))
    share = -(-candidates // jobs)
    spec = {**spec, "candidates": share}
    helpers = [Helper(_helper_rollouts, spec) for _ in range(jobs - 1)]
    try:
        rollouts, mode = build_rollouts(**spec, env=env)
        for h in helpers:
            h.result(HELPER_READY_TIMEOUT_S)
    except BaseException:
        for h in helpers:
            h.close()
        raise
    if helpers:
        rollouts = ShardedRollouts(rollouts, helpers, candidates, share)
    return rollouts, mode, helpers


def _record_provenance(refined, source: Path, key: dict, config, settings: dict, seed: int, symmetric: bool, robot,
                       clip, report: dict) -> None:
    """What the refined clip was made from and how, and its quality report with the refinement's."""
    from retarget.quality import quality_report

    refined.source_file = source.name
    refined.source_sha256 = key["source_sha256"]
    refined.retarget_settings = {
        **refined.retarget_settings,
        "method": "physics refinement: windowed CMA-ES over PD-target offsets, then a recorded replay from t = 0",
        "config": str(config), "refine": settings, "seed": seed, "symmetric": symmetric, "physics": key["pd"],
        # the actuator model simulated (provenance only: a cache made with other figures is still used)
        "actuators": {"armature": robot.armature[:3].tolist(), "damping": robot.joint_damping[:3].tolist(),
                      "friction_loss": robot.friction_loss[:3].tolist()},
        "source_retarget_settings": clip.retarget_settings,
    }
    refined.quality = {**quality_report(refined, robot), "refinement": report}


def _keyframe_hint(source: Path, times: list[float]) -> str:
    """" (the keyframe at t: ...)" nearest each of `times` for a keyframe file, else ""."""
    if not times or source.suffix.lower() not in (".yaml", ".yml"):
        return ""
    import yaml

    keys = [float(k["t"]) for k in (yaml.safe_load(source.read_text()) or {}).get("keyframes", [])
            if isinstance(k, dict) and isinstance(k.get("t"), (int, float))]
    if not keys:
        return ""
    near = sorted({min(keys, key=lambda v: abs(v - t)) for t in times})
    return f" (the keyframe{'s' if len(near) > 1 else ''} at t: {', '.join(f'{v:g}' for v in near)})"


def _refuse_body_through_ground(source: Path, clip, robot) -> None:
    """A source whose body already goes into the ground cannot be made physical: say where at once, and which
    keyframe to change, instead of after minutes of search."""
    from retarget.quality import body_through_ground, quality_report

    where = body_through_ground(quality_report(clip, robot))
    if where is None:
        return
    hint = _keyframe_hint(source, [float(where.split("t = ")[1].split(" s")[0])])
    raise InputError(f"{source}: the body goes through the ground in the source itself: {where}{hint}; "
                     "nothing refined")


def cache_status(source, cache, cfg: dict, seed: int = 1) -> str | None:
    """None when `cache` is a refinement of `source` (same sha256) with `cfg`'s refinement settings, physics and
    this seed; else why not, in words."""
    from retarget.clip import read_clip, sha256_of
    from retarget.robot import load_robot


    cache = Path(cache)
    if not cache.is_file():
        return "no cached refinement"
    cached = read_clip(cache, load_robot(resolve_path(cfg["robot"])))
    s = cached.retarget_settings
    if cached.source_sha256 != sha256_of(source):
        return f"{source} changed since {cache} was refined"
    report = (cached.quality or {}).get("refinement") or {}
    retried = report.get("rounds", 1) > 1
    loop = cached.loop_mode == "wrap"
    if (_searched(s.get("refine") or {}, retried, loop) != _searched(cfg["refine"], retried, loop)
            or s.get("physics") != refine_physics(cfg) or s.get("seed") != seed):
        return f"{cache} was refined with other settings"
    if "result" in report and "physics" in report:
        from .report import loop_shortfalls, shortfalls

        missed = shortfalls(report["result"], report["source"], cfg["refine"]["tolerances"],
                            report.get("body_contact_time_s"), report["physics"])
        if "loop" in report:
            missed += loop_shortfalls(report["loop"], cfg["refine"]["tolerances"])
        if missed:
            return f"{cache} misses the current tolerances ({'; '.join(missed)})"
    return None


def _searched(settings: dict, retried: bool, loop: bool) -> dict:
    """The refinement settings a search's result depends on: not the tolerances it is judged by, nor the retry
    settings when it needed no retry, nor the loop-only cost weights for a motion that ends."""
    from .cost import LOOP_TERMS

    drop = {"tolerances"} | (set() if retried else {"retries", "retry_generations"})
    out = {k: v for k, v in settings.items() if k not in drop}
    if not loop and "costs" in out:
        out["costs"] = {k: v for k, v in out["costs"].items() if k not in LOOP_TERMS}
    return out


def cached_refinement(source, cache, output, *, config=None, seed: int = 1, device: str = "cpu",
                      progress=print) -> Path:
    """The refined clip of `source` at `output`: a copy of `cache` when the cache was refined from this very
    source (sha256) with the same refinement, physics and seed, else a fresh refinement (which the cache can
    then be updated with). Refining takes minutes; the pipeline runs on every fresh clone."""
    import shutil

    config = resolve_path(config or DEFAULT_CONFIG)
    cfg = config_mod.load_config(config)
    cache, output = Path(cache), Path(output)
    reason = cache_status(source, cache, cfg, seed)
    if reason is None:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cache, output)
        progress(f"refined reference: {cache} (refined from {source}; its sha256 and the settings match)")
        return output
    progress(f"refining {source} ({reason}); update the cache with: imitation refine {source} -o {cache}")
    refine_motion(source, output, config=config, seed=seed, device=device, progress=progress)
    return output
