"""A skill's policies judged in MuJoCo for the main job: per seed and pooled, nominal, "realistic actuators" and
randomized, as JSON and as a report section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from retarget.files import write_text_atomic

from ..analysis.metrics import wilson_interval

CONDITIONS = ("nominal", "realistic", "randomized")
FILE = "mujoco.json"


def judge_policies(folders, episodes: int = 100, seed: int = 0, progress=print, clip=None) -> dict:
    """Every shipped policy folder of a skill in MuJoCo under the three CONDITIONS, on `clip` (default: each bundle's
    own); the EvalResults of the first policy's nominal run are kept under "trajectory" (for a video)."""
    from .evaluate import evaluate_mujoco

    rows, pooled = [], {c: [] for c in CONDITIONS}
    first = None
    for folder in folders:
        row = {"policy": Path(folder).name}
        for cond in CONDITIONS:
            res = evaluate_mujoco(folder, episodes=episodes, randomize=cond == "randomized",
                                  variant="realistic" if cond == "realistic" else "nominal", seed=seed, clip=clip)
            ok = np.asarray(res.metrics["success"], bool)
            pooled[cond].append(ok)
            row[cond] = {"success_rate": float(ok.mean()), "episodes": int(len(ok)),
                         "pitch_rotation_deg": float(np.mean(res.metrics["pitch_rotation_deg"])),
                         "final_tilt_deg": float(np.mean(res.metrics["final_tilt_deg"])),
                         "body_contact_rate": float(np.mean(res.metrics["body_contact"]))}
            if first is None and cond == "nominal":
                first = res
        progress(f"  MuJoCo {row['policy']}: " + ", ".join(f"{c} {100 * row[c]['success_rate']:.0f}%"
                                                           for c in CONDITIONS))
        rows.append(row)
    out = {"episodes": episodes, "seed": seed, "policies": rows, "pooled": {}}
    for cond, oks in pooled.items():
        ok = np.concatenate(oks)
        lo, hi = wilson_interval(float(ok.mean()), len(ok))
        out["pooled"][cond] = {"success_rate": float(ok.mean()), "episodes": int(len(ok)), "ci_low": lo,
                               "ci_high": hi}
    out["trajectory"] = first
    return out


def write(doc: dict, folder: Path) -> Path:
    plain = {k: v for k, v in doc.items() if k != "trajectory"}
    return write_text_atomic(Path(folder) / FILE, json.dumps(plain, indent=1) + "\n")


def pct(entry: dict | None) -> str:
    if not entry:
        return "-"
    return f"{100 * entry['success_rate']:.0f}% [{100 * entry['ci_low']:.0f}-{100 * entry['ci_high']:.0f}]"


def markdown(doc: dict, video: bool = False) -> str:
    """The report section."""
    e = doc["episodes"]
    lines = ["## MuJoCo (sim-to-sim)", "",
             "Each policy run from its shipped bundle (bundle.json, policy.onnx) in MuJoCo, judged by the same success "
             f"rule: {e} episodes per condition and seed, from t = 0. Nominal: the robot config's actuator model, PD "
             "torques at 500 Hz; realistic actuators: MuJoCo Menagerie's Go2 joint figures (armature 0.01 kg m^2, "
             "friction loss 0.2 N m, damping 0.1 N m s/rad); randomized: the training ranges (friction, base mass, "
             "kp/kd, latency) plus armature 0-0.02 kg m^2, friction loss 0-0.3 N m, damping 0-0.3 N m s/rad, contact "
             "time constant 5-30 ms and physics at 250-1000 Hz, drawn per episode. Fixed physics is deterministic in "
             "MuJoCo (one episode counts for all).", "",
             "| policy | nominal | realistic actuators | randomized | randomized: mean turn (deg) | "
             "randomized: body contact |", "|---|---:|---:|---:|---:|---:|"]
    for r in doc["policies"]:
        lines.append(f"| {r['policy']} | {100 * r['nominal']['success_rate']:.0f}% | "
                     f"{100 * r['realistic']['success_rate']:.0f}% | {100 * r['randomized']['success_rate']:.0f}% | "
                     f"{r['randomized']['pitch_rotation_deg']:.0f} | {100 * r['randomized']['body_contact_rate']:.0f}% |")
    p = doc["pooled"]
    lines.append(f"| pooled | {pct(p['nominal'])} | {pct(p['realistic'])} | {pct(p['randomized'])} | | |")
    if video:
        lines += ["", "The video of this report (compare.mp4) shows the first policy's nominal MuJoCo run too, labelled "
                      "MuJoCo: its recorded states drawn beside the Genesis run and the reference ghost."]
    return "\n".join(lines) + "\n"
