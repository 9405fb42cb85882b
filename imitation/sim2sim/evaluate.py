"""`imitation eval POLICY --sim mujoco`: a shipped policy's episodes in MuJoCo, judged like a Genesis evaluation.

Every episode starts at t = 0 in the reference's first frame and runs the bundle's episode length. The recorded
episodes make one Trajectory, scored by imitation.analysis.metrics (the same success rule and metrics as
`imitation eval` in Genesis). Physics: nominal (the bundle's robot and actuator model at 500 Hz), the
"realistic actuators" variant, or randomized (one draw per episode, seeded: the same robots for every policy).
With fixed physics MuJoCo is deterministic: one episode is run and counts for all of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retarget.errors import InputError

VARIANTS = ("nominal", "realistic")


def parse_overrides(items) -> dict:
    """`--set KEY=VALUE` pairs as Physics fields (a number; the actuator terms apply to every joint)."""
    from dataclasses import fields

    from .runner import Physics

    names = {f.name for f in fields(Physics)}
    out = {}
    for item in items or ():
        key, _, value = item.partition("=")
        if key not in names or not value:
            raise InputError(f"--set {item}: expected KEY=VALUE with KEY one of {', '.join(sorted(names))}")
        try:
            out[key] = (value.lower() in ("1", "true", "yes")) if key == "latency" else float(value)
        except ValueError:
            raise InputError(f"--set {item}: {value!r} is not a number") from None
    return out


def _apply(phys, overrides: dict):
    from dataclasses import replace

    per_joint = {"armature", "friction_loss", "damping"}
    return replace(phys, **{k: np.full(12, v) if k in per_joint else v for k, v in overrides.items()})


# Randomized episodes stepped side by side (MujocoRunner.run_episodes); a progress report after each batch.
BATCH = 25


def evaluate_mujoco(policy, *, episodes: int = 16, randomize: bool = False, variant: str = "nominal",
                    seed: int = 0, physics_hz: float | None = None, clip=None, progress=None,
                    overrides: dict | None = None):
    """An imitation.evaluation.evaluate.EvalResult of `episodes` MuJoCo episodes of the shipped policy folder
    `policy`; `overrides` (Physics field -> value) fix those fields in every episode (one factor at a time)."""
    from ..analysis.metrics import episode_metrics, summarize
    from ..evaluation.evaluate import EvalResult
    from .runner import DEFAULT_PHYSICS_HZ, MujocoRunner, draw_physics, nominal_physics, realistic_physics, trajectory

    if episodes < 1:
        raise InputError(f"episodes must be at least 1, got {episodes}")
    if variant not in VARIANTS:
        raise InputError(f"--actuators: {variant!r} is not one of {', '.join(VARIANTS)}")
    folder = Path(policy)
    if not folder.is_dir():
        raise InputError(f"{policy}: --sim mujoco takes a shipped policy folder (bundle.json, policy.onnx) or a run folder (config.yaml, exported/policy.onnx)")
    runner = MujocoRunner(folder, clip=clip)
    runner.policy   # a missing or unfit policy.onnx fails here, before any episode
    hz = float(physics_hz or DEFAULT_PHYSICS_HZ)
    if not 50.0 <= hz <= 20000.0:
        raise InputError(f"--physics-hz: {hz:g} is outside 50 .. 20000")
    rng = np.random.default_rng(seed)
    runs = []
    if randomize:
        draws = [_apply(draw_physics(runner.bundle, rng), overrides or {}) for _ in range(episodes)]
        for i in range(0, episodes, BATCH):   # side by side: one policy call per control step for the batch
            runs += runner.run_episodes(draws[i:i + BATCH])
            if progress is not None:
                progress(len(runs), episodes)
    else:
        # Fixed physics: MuJoCo is deterministic, so every episode would be this one.
        phys = _apply((realistic_physics if variant == "realistic" else nominal_physics)(runner.bundle, hz),
                      overrides or {})
        runs = [runner.run_episode(phys)] * episodes
    traj, fault = trajectory(runs, runner.dt, runner.robot.joint_names, runner.robot.foot_names)
    from retarget.clip import read_clip

    tol = runner.settings["success"]
    metrics = episode_metrics(traj, read_clip(runner.clip_path), tol, reference=runner.ref)
    metrics["fault"] = fault
    metrics["success"] = metrics["success"] & ~fault
    c = runner.bundle["control"]
    settings = {
        "sim": "mujoco", "policy": str(folder), "policy_kind": "bundle", "iteration": None,
        "obs_dim": runner.spec.size, "clip": str(runner.clip_path), "experiment": None, "episodes": episodes,
        "seed": seed, "randomize": randomize, "variant": None if randomize else variant, "dt": c["dt"],
        "substeps": None, "physics_hz": None if randomize else hz, "episode_length_s": runner.steps * runner.dt,
        "kp": c["kp"], "kd": c["kd"], "action_scale": c["action_scale"], "action_mode": c["action_mode"],
        "action_latency": bool(c["latency_steps"]), "last_actions": runner.spec.last_actions,
        "success_tolerances": tol, "physics": [r.physics.to_json() for r in runs[:episodes if randomize else 1]],
        "deterministic": not randomize, "overrides": overrides or {},
    }
    return EvalResult(summary=summarize(metrics), metrics=metrics, trajectory=traj, settings=settings)
