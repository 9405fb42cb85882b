"""The comparison report: verdicts (who won on what), metric tables, learning speed, figures.

`build_report` needs no Genesis: it takes the training progress records and evaluation results of each
policy and writes report.md, summary.json, learning_curves.png and height_pitch.png (see
imitation/tools/compare.py for the folder layout), so it can be tested on synthetic inputs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retarget.files import atomic_path, write_text_atomic

from .metrics import METRIC_INFO, cumulative_pitch, metric_rows, pitch_increments, summarize

SUCCESS_TARGET = 0.5   # learning speed without eval curves: env steps until the training success rate reaches this
CURVE_TARGET = 0.9     # learning speed from eval curves: env steps until the randomized success rate reaches this

# Learning-curve panels: (title, progress keys tried in order, y label).
CURVES = (
    ("success rate (episodes from t = 0)", ("Success/success_rate", "Flip/success_rate"), "success rate"),
    ("backward pitch turned", ("Success/pitch_rotation_deg", "Flip/pitch_rotation_deg"), "deg"),
    ("joint RMSE vs reference", ("Success/joint_rmse", "Flip/joint_rmse", "Tracking/joint_pos_rmse"), "rad"),
    ("root orientation error", ("Success/root_orient_error", "Flip/root_orient_error", "Tracking/root_orientation_error"),
     "rad"),
)

# Verdict metrics: key, what, better ("high", "low", "ref": closer to the reference value).
VERDICTS = (
    ("success", "success rate", "high"),
    ("pitch_rotation_deg", "rotation (net backward pitch)", "ref"),
    ("apex_height", "height (apex of the base)", "ref"),
    ("final_tilt_deg", "landing attitude (final tilt)", "low"),
    ("joint_rmse", "tracking: joint RMSE", "low"),
    ("root_orient_error", "tracking: root orientation error", "low"),
    ("foot_pos_error", "tracking: foot position error", "low"),
    ("rms_torque", "torque: RMS", "low"),
    ("peak_torque", "torque: peak", "low"),
    ("landing_peak_torque", "landing: peak torque from touchdown on", "low"),
    ("energy", "energy (mechanical work)", "low"),
)


@dataclass
class PolicyData:
    """Everything the report needs about one policy (one label), over its seeds."""

    label: str
    runs: list[str]                                   # run folders (one per seed)
    progress: list[list[dict]]                        # progress.jsonl records of each run
    nominal: list = field(default_factory=list)       # imitation.evaluation.evaluate.EvalResult per run
    randomized: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    curves: list = field(default_factory=list)        # imitation.evaluation.sweep rows per run (randomized), [] if none


# ---------------------------------------------------------------------------- small helpers


def _savefig(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)


def _value(record: dict, keys) -> float:
    ep = record.get("episode") or {}
    for k in keys:
        v = ep.get(k, record.get(k))
        if v is not None:
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                return v
    return float("nan")


def curve(records: list[dict], keys) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, values) of one run; NaN where the value is missing."""
    x = np.array([float(r.get("env_steps", np.nan)) for r in records])
    y = np.array([_value(r, keys) for r in records])
    return x, y


SUCCESS_KEYS = ("Success/success_rate", "Flip/success_rate")   # the training log's success rate (older runs: Flip/)


def first_reaching(records: list[dict], key, target: float) -> dict | None:
    """The first progress record whose `key` (or the first present of several keys) reaches `target`:
    {env_steps, wall_time, iteration}."""
    keys = (key,) if isinstance(key, str) else tuple(key)
    for r in records:
        v = _value(r, keys)
        if math.isfinite(v) and v >= target:
            return {"env_steps": r.get("env_steps"), "wall_time": r.get("wall_time"), "iteration": r.get("iteration")}
    return None


def milestones(rows: list[dict], target: float = 0.9) -> dict:
    """Of a run's checkpoint evaluations (imitation.evaluation.sweep rows): env steps to the first success and to
    `target` success rate (first checkpoint reaching it), and the success rate of the last checkpoint (the end of
    the budget)."""
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


def pooled_metrics(results: list) -> dict[str, np.ndarray]:
    """Per-episode metrics of several evaluations, concatenated."""
    keys = [k for k in results[0].metrics if all(k in r.metrics for r in results)]
    return {k: np.concatenate([np.asarray(r.metrics[k]).reshape(-1) for r in results]) for k in keys}


def reference_stats(clip) -> dict[str, float]:
    """Backward pitch turned (deg) and apex base height (m) of the reference clip."""
    q = np.asarray(clip.root_quat, float)[None]
    return {"pitch_rotation_deg": float(np.degrees(pitch_increments(q).sum())),
            "apex_height": float(np.max(clip.root_pos[:, 2]))}


# ---------------------------------------------------------------------------- tables and verdicts


def markdown_table(summaries: dict[str, dict[str, float]]) -> str:
    """Markdown version of imitation.analysis.metrics.format_table: a column per policy, a row per metric."""
    lines = ["| metric | " + " | ".join(summaries) + " |", "|---|" + "---:|" * len(summaries)]
    for row in metric_rows(summaries):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")  # "peak |torque|"
    return "\n".join(lines)


def _stat(summary: dict, key: str) -> float:
    v = summary.get(f"{key}_rate", summary.get(f"{key}_mean"))
    return float(v) if v is not None else float("nan")


def _fmt(key: str, v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    if key == "success":
        return f"{100 * v:.0f}%"
    _, unit, fmt = METRIC_INFO.get(key, (key, "", ".3g"))
    return f"{v:{fmt}} {unit}".strip()


def verdicts(summaries: dict[str, dict], ref: dict[str, float] | None, speed: dict[str, dict] | None = None,
             condition: str = "nominal") -> list[dict]:
    """Who won on what, between the first two policies of `summaries`. One dict per line:
    {metric, what, winner (label, "tie" or None), text}."""
    (a, sa), (b, sb) = list(summaries.items())[:2]
    out = []
    for key, what, better in VERDICTS:
        va, vb = _stat(sa, key), _stat(sb, key)
        if not (math.isfinite(va) and math.isfinite(vb)):
            continue
        if better == "ref":
            if ref is None or key not in ref:
                continue
            da, db = abs(va - ref[key]), abs(vb - ref[key])
            winner = a if da < db else b if db < da else "tie"
            short = f"{_fmt(key, va)} vs {_fmt(key, vb)} (reference {_fmt(key, ref[key])}; closer wins)"
        else:
            sign = 1.0 if better == "high" else -1.0
            winner = a if sign * (va - vb) > 0 else b if sign * (vb - va) > 0 else "tie"
            short = f"{_fmt(key, va)} vs {_fmt(key, vb)} ({'higher' if better == 'high' else 'lower'} wins)"
            if key == "success" and winner != "tie" and "success_ci_low" in sa and "success_ci_low" in sb:
                overlap = sa["success_ci_low"] <= sb["success_ci_high"] and sb["success_ci_low"] <= sa["success_ci_high"]
                short += (f"; 95% CIs {100 * sa['success_ci_low']:.0f}-{100 * sa['success_ci_high']:.0f}% and "
                          f"{100 * sb['success_ci_low']:.0f}-{100 * sb['success_ci_high']:.0f}%"
                          + (" overlap: not a clear difference" if overlap else " do not overlap"))
            elif winner != "tie" and max(abs(va), abs(vb)) > 0 and abs(va - vb) / max(abs(va), abs(vb)) < 0.05:
                short += "; within 5%: close"
        head = "tie" if winner == "tie" else f"**{winner}**"
        out.append({"metric": key, "what": what, "condition": condition, "winner": winner, "values": short,
                    "short": f"{head} — {short}",
                    "text": f"{what} ({condition}): " + ("tie" if winner == "tie" else f"{winner} wins")
                            + f" ({a} first: {short})."})
    if speed:
        (la, spa), (lb, spb) = list(speed.items())[:2]
        sa_steps, sb_steps = spa.get("median_env_steps"), spb.get("median_env_steps")
        target = speed_target(spa)
        missing = [lab for lab, sp in ((la, spa), (lb, spb)) if not sp.get("logged", True)]
        if spa.get("source") != spb.get("source"):
            winner, detail = None, ("not comparable: checkpoint evaluations for one policy, the training log for the "
                                    "other")
        elif missing:
            winner, detail = None, (f"not measurable: no `Success/success_rate` in the progress.jsonl of "
                                    f"{' and '.join(missing)} (runs from before it was logged)")
        elif sa_steps is None and sb_steps is None:
            winner, detail = None, f"neither reached {target} within its budget"
        elif sb_steps is None or (sa_steps is not None and sa_steps < sb_steps):
            winner = la
            detail = f"{la} reached {target} after {_steps(sa_steps)} env steps, {lb} " + (
                "never did" if sb_steps is None else f"after {_steps(sb_steps)}")
        elif sa_steps is None or sb_steps < sa_steps:
            winner = lb
            detail = f"{lb} reached {target} after {_steps(sb_steps)} env steps, {la} " + (
                "never did" if sa_steps is None else f"after {_steps(sa_steps)}")
        else:
            winner, detail = "tie", f"both reached {target} after {_steps(sa_steps)} env steps"
        head = "no winner" if winner is None else "tie" if winner == "tie" else f"**{winner}**"
        out.append({"metric": "learning_speed", "what": "learning speed", "condition": "training",
                    "winner": winner, "values": f"{detail} (median over seeds)",
                    "short": f"{head} — {detail} (median over seeds)",
                    "text": "learning speed: " + ("no winner" if winner is None else "tie" if winner == "tie"
                                                  else f"{winner} wins") + f": {detail} (median over seeds)."})
    return out


def speed_target(speed: dict) -> str:
    if speed.get("source") == "eval_curve":
        return f"{speed['target']:.0%} success of the deterministic policy under randomization (checkpoint evaluations)"
    return f"training success rate ≥ {speed.get('target', SUCCESS_TARGET):.0%} (episodes from t = 0)"


def _verdict_table(lines: list[dict]) -> list[str]:
    """Markdown rows: one per aspect, a column per condition."""
    lines_eval = [v for v in lines if v["condition"] != "training"]
    conds = list(dict.fromkeys(v["condition"] for v in lines_eval))
    rows = []
    if conds:
        rows = ["| aspect | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
        for what in dict.fromkeys(v["what"] for v in lines_eval):
            cells = [next((v["short"] for v in lines_eval if v["what"] == what and v["condition"] == c), "-")
                     for c in conds]
            rows.append(f"| {what} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        rows.append("")
    rows += [f"- {v['what']}: {v['short']}." for v in lines if v["condition"] == "training"]
    return rows


def _headline(lines: list[dict], labels: list[str]) -> list[str]:
    """One plain line per headline aspect: success (nominal, randomized), tracking, torque, learning speed."""
    out = []
    for metric, cond, what in (("success", "nominal", "Success rate, nominal"),
                               ("success", "randomized", "Success rate, randomized"),
                               ("pitch_rotation_deg", "nominal", "Rotation"),
                               ("apex_height", "nominal", "Height"),
                               ("joint_rmse", "nominal", "Tracking error (joint RMSE)"),
                               ("rms_torque", "nominal", "Torque (RMS)"),
                               ("learning_speed", "training", "Learning speed")):
        v = next((x for x in lines if x["metric"] == metric and x["condition"] == cond), None)
        if v is None:
            continue
        verdict = (f"{v['winner']} wins" if v["winner"] in labels else "tie" if v["winner"] == "tie" else "no winner")
        out.append(f"- **{what}**: {verdict} — {v['values']}.")
    return out


def _steps(v) -> str:
    return "-" if v is None else f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k"


def learning_speed(data: PolicyData) -> dict:
    """Env steps to the target success rate and to the first success, per run. From the checkpoint
    evaluations (imitation.evaluation.sweep, deterministic policy, randomized) when every run has them, else from
    the training log's success rate of the noisy policy."""
    if data.curves and all(data.curves):
        ms = [milestones(rows, CURVE_TARGET) for rows in data.curves]
        per_run = [None if m["target_env_steps"] is None else {"env_steps": m["target_env_steps"]} for m in ms]
        first_any = [None if m["first_success_env_steps"] is None else {"env_steps": m["first_success_env_steps"]}
                     for m in ms]
        source, target, logged = "eval_curve", CURVE_TARGET, True
    else:
        per_run = [first_reaching(rec, SUCCESS_KEYS, SUCCESS_TARGET) for rec in data.progress]
        first_any = [first_reaching(rec, SUCCESS_KEYS, 1e-9) for rec in data.progress]
        ms, source, target = [], "training", SUCCESS_TARGET
        logged = all(any(set(SUCCESS_KEYS) & set(r.get("episode") or {}) for r in rec) for rec in data.progress)
    steps = [r["env_steps"] for r in per_run if r is not None]
    reached = len(steps)
    # Median over seeds, counting a seed that never reached the target as infinitely slow.
    all_steps = sorted(steps + [math.inf] * (len(per_run) - reached))
    med = all_steps[(len(all_steps) - 1) // 2] if all_steps else math.inf
    last = [rec[-1] for rec in data.progress if rec]
    return {
        "logged": (bool(data.progress) or source == "eval_curve") and logged, "source": source, "milestones": ms,
        "target": target, "per_run": per_run, "first_success": first_any, "reached": reached,
        "runs": len(per_run), "median_env_steps": None if not math.isfinite(med) else med,
        "env_steps": [r.get("env_steps") for r in last], "wall_time": [r.get("wall_time") for r in last],
        "steps_per_s": [r.get("env_steps", 0) / r["wall_time"] if r.get("wall_time") else None for r in last],
    }


# ---------------------------------------------------------------------------- figures


def plot_learning_curves(policies: list[PolicyData], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(rec for p in policies for rec in p.progress):
        return None
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (title, keys, ylabel) in zip(axes.flat, CURVES):
        for i, p in enumerate(policies):
            curves = [curve(rec, keys) for rec in p.progress if rec]
            curves = [(x, y) for x, y in curves if np.isfinite(y).any()]
            if not curves:
                continue
            color = f"C{i}"
            xmax = min(x[np.isfinite(x)].max() for x, _ in curves)
            grid = np.linspace(0, xmax, 200)
            ys = np.array([np.interp(grid, x[np.isfinite(y)], y[np.isfinite(y)], left=np.nan) for x, y in curves])
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, lo, hi = np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
            ax.plot(grid, mean, color=color, label=f"{p.label} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
            if len(curves) > 1:
                ax.fill_between(grid, lo, hi, color=color, alpha=0.2, linewidth=0)
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return path


def plot_success_curves(policies: list[PolicyData], path: Path) -> Path | None:
    """Randomized success of the deterministic policy at each evaluated checkpoint: a thin line per seed,
    the mean over seeds thick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(rows for p in policies for rows in p.curves):
        return None
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, p in enumerate(policies):
        runs = [rows for rows in p.curves if rows]
        for j, rows in enumerate(runs):
            x = np.array([r["env_steps"] for r in rows], float)
            y = np.array([r.get("success_rate") or 0.0 for r in rows], float)
            seed = p.seeds[j] if j < len(p.seeds) else j
            ax.plot(x, 100 * y, color=f"C{i}", lw=0.8, alpha=0.5, marker=".", ms=3,
                    label=f"{p.label} seed {seed}" if len(runs) <= 4 else None)
        if len(runs) > 1:
            xmax = min(max(r["env_steps"] for r in rows) for rows in runs)
            grid = np.linspace(0, xmax, 200)
            ys = [np.interp(grid, [r["env_steps"] for r in rows], [r.get("success_rate") or 0.0 for r in rows])
                  for rows in runs]
            ax.plot(grid, 100 * np.mean(ys, 0), color=f"C{i}", lw=2.2, label=f"{p.label}, mean of {len(runs)} seeds")
    ax.axhline(100 * CURVE_TARGET, color="0.5", ls="--", lw=0.8)
    ax.set_xlabel("training env steps")
    ax.set_ylabel("success (%)")
    ax.set_ylim(-3, 103)
    ax.set_title("deterministic policy, randomized evaluation, per checkpoint")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return path


def plot_height_pitch(policies: list[PolicyData], clip, path: Path) -> Path | None:
    """Base height and backward pitch over time: nominal episodes of every seed (mean, min-max band)
    against the reference clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(p.nominal for p in policies):
        return None
    fig, (ax_z, ax_p) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    t_max = 0.0
    for i, p in enumerate(policies):
        z_all, pitch_all, t = [], [], None
        for r in p.nominal:
            tr = r.trajectory
            valid = tr.valid
            z = np.where(valid, tr.root_pos[..., 2], np.nan)
            pitch = np.where(valid, np.degrees(cumulative_pitch(tr)), np.nan)
            if t is None or len(tr.time) > len(t):
                t = tr.time
            z_all.append(z)
            pitch_all.append(pitch)
        n = len(t)
        pad = lambda a: np.pad(a, ((0, 0), (0, n - a.shape[1])), constant_values=np.nan)  # noqa: E731
        z = np.concatenate([pad(a) for a in z_all])
        pitch = np.concatenate([pad(a) for a in pitch_all])
        color = f"C{i}"
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for ax, v in ((ax_z, z), (ax_p, pitch)):
                ax.plot(t, np.nanmean(v, 0), color=color, label=f"{p.label} ({v.shape[0]} episodes)")
                if v.shape[0] > 1:
                    ax.fill_between(t, np.nanmin(v, 0), np.nanmax(v, 0), color=color, alpha=0.2, linewidth=0)
        t_max = max(t_max, float(t[-1]))
    if clip is not None:
        tc = np.asarray(clip.time, float)
        keep = tc <= t_max + 1e-9 if t_max > 0 else slice(None)
        q = np.asarray(clip.root_quat, float)[None]
        ref_pitch = np.degrees(np.concatenate([[0.0], np.cumsum(pitch_increments(q)[0])]))
        for ax, v in ((ax_z, clip.root_pos[:, 2]), (ax_p, ref_pitch)):
            ax.plot(tc[keep], np.asarray(v)[keep], "k--", label="reference")
    ax_z.set_ylabel("base height (m)")
    ax_p.set_ylabel("backward pitch turned (deg)")
    ax_p.set_xlabel("time (s)")
    ax_p.axhline(360, color="0.6", lw=0.8)
    for ax in (ax_z, ax_p):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_z.set_title("nominal evaluation: base height and pitch")
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- the report


def _single_headline(summaries: dict[str, dict], speed: dict) -> list[str]:
    """One policy: its success rates and learning speed in plain lines."""
    out = []
    for cond in ("nominal", "randomized"):
        for label, sm in summaries.get(cond, {}).items():
            v = _stat(sm, "success")
            if math.isfinite(v):
                ci = (f" [95% CI {100 * sm['success_ci_low']:.0f}-{100 * sm['success_ci_high']:.0f}%]"
                      if "success_ci_low" in sm else "")
                out.append(f"- **Success rate, {cond}**: {100 * v:.0f}%{ci}.")
    steps = speed.get("median_env_steps")
    out.append("- **Learning speed**: " + (f"{speed_target(speed)} after {_steps(steps)} env steps (median over "
                                           f"seeds)." if steps else f"never reached {speed_target(speed)}."))
    return out


def build_report(out: str | Path, policies: list[PolicyData], clip=None, *, video: str | Path | None = None,
                 notes: list[str] | None = None, settings: dict | None = None, title: str | None = None) -> Path:
    """Write report.md, summary.json and the figures into `out`; returns the report's path.

    `policies`: one PolicyData (a skill's report) or more (the first two are compared in the verdicts, any
    others get their columns in the tables). `clip`: the reference (retarget.clip.Clip) for the reference
    curves and the rotation / height targets. `video`: a video already written into `out`, linked from the
    report. `title`: the motion's name (default: the clip's).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not policies:
        raise ValueError("a report needs at least one policy")
    labels = [p.label for p in policies]
    ref = reference_stats(clip) if clip is not None else None
    title = title or (getattr(clip, "name", None) or "motion")

    tables, summaries = {}, {}
    for cond in ("nominal", "randomized"):
        ss = {p.label: summarize(pooled_metrics(getattr(p, cond))) for p in policies if getattr(p, cond)}
        if len(ss) == len(policies):
            summaries[cond] = ss
            tables[cond] = markdown_table(ss)
    speed = {p.label: learning_speed(p) for p in policies}
    lines_v = []
    if len(policies) >= 2:
        for cond, ss in summaries.items():
            lines_v += verdicts(ss, ref, speed if cond == "nominal" else None, condition=cond)
        if not summaries:
            lines_v += verdicts({p.label: {} for p in policies}, ref, speed)

    fig_curves = plot_learning_curves(policies, out / "learning_curves.png")
    fig_sweep = plot_success_curves(policies, out / "success_curve.png")
    fig_hp = plot_height_pitch(policies, clip, out / "height_pitch.png")

    md = [f"# {title[:1].upper() + title[1:]}: {' vs '.join(labels)}", ""]
    if len(policies) >= 2:
        md += _headline(lines_v, labels) + [""]
        md += ["## Who won on what", "", f"Values are given as {labels[0]} vs {labels[1]}"
               + (f" ({', '.join(labels[2:])}: in the tables below)" if len(labels) > 2 else "") + ".", ""]
        md += _verdict_table(lines_v) or ["no evaluation results"]
        md += [""]
    else:
        md += _single_headline(summaries, speed[labels[0]]) + [""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    for cond, table in tables.items():
        eps = {p.label: sum(r.trajectory.num_episodes for r in getattr(p, cond)) for p in policies}
        what = ("nominal physics (no randomization)" if cond == "nominal"
                else "domain randomization (friction, base mass, gains, action latency)")
        md += [f"## Evaluation, {cond}", "",
               f"Deterministic policies, every episode from t = 0, early termination off; {what}. "
               f"Episodes pooled over seeds: " + ", ".join(f"{k} {v}" for k, v in eps.items()) + ".", "", table, ""]
    if ref is not None:
        turn = (f"{ref['pitch_rotation_deg']:.0f}° backward pitch, " if abs(ref["pitch_rotation_deg"]) >= 90 else "")
        md += [f"Reference clip: {turn}apex base height {ref['apex_height']:.2f} m"
               + (", a looping clip (episodes run through many cycles)" if getattr(clip, "loop_mode", "none") == "wrap"
                  else "") + ".", ""]

    if summaries:
        md += _per_run_section(policies, speed)
    md += _learning_speed_section(policies, speed)
    md += _figures_section(out, labels, (fig_curves, fig_sweep, fig_hp), video)
    if settings:
        md += ["## Settings", "", "```json", json.dumps(settings, indent=1, default=str), "```", ""]
    report = out / "report.md"
    write_text_atomic(report, "\n".join(md))
    summary = {
        "policies": {p.label: {"runs": p.runs, "seeds": p.seeds} for p in policies},
        "summaries": summaries, "learning_speed": speed, "verdicts": lines_v, "reference": ref,
        "figures": [str(f.name) for f in (fig_curves, fig_sweep, fig_hp) if f],
        "eval_curves": {p.label: p.curves for p in policies if any(p.curves)}, "video": str(Path(video).name) if video else None,
        "settings": settings or {},
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1, default=_json_default) + "\n")
    return report



def _per_run_section(policies: list[PolicyData], speed: dict) -> list[str]:
    """The per-run table: env steps, wall time and both success rates of every run."""
    md = ["## Per run", "", "| policy | run | seed | env steps | wall time (s) | success nominal | success randomized |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for p in policies:
        sp = speed[p.label]
        for i, run in enumerate(p.runs):
            nom = p.nominal[i].summary.get("success_rate") if i < len(p.nominal) else None
            rnd = p.randomized[i].summary.get("success_rate") if i < len(p.randomized) else None
            steps = sp["env_steps"][i] if i < len(sp["env_steps"]) else None
            wall = sp["wall_time"][i] if i < len(sp["wall_time"]) else None
            seed = p.seeds[i] if i < len(p.seeds) else "-"
            md.append(f"| {p.label} | `{run}` | {seed} | {_steps(steps) if steps else '-'} | "
                      f"{'-' if wall is None else f'{wall:.0f}'} | {'-' if nom is None else f'{100 * nom:.0f}%'} | "
                      f"{'-' if rnd is None else f'{100 * rnd:.0f}%'} |")
    md += [""]
    return md


def _learning_speed_section(policies: list[PolicyData], speed: dict) -> list[str]:
    """Env steps to success: from the checkpoint evaluations (when there are any) and from the training episodes."""
    md = ["## Learning speed", ""]
    if any(speed[p.label]["source"] == "eval_curve" for p in policies):
        md += [f"Every saved checkpoint evaluated like the final policy (`imitation sweep`: deterministic, from t = 0, "
               f"domain randomization, the same randomized robots for every checkpoint). Env steps to the first "
               f"checkpoint with a success and to the first with ≥ {CURVE_TARGET:.0%} success; the success rate of the "
               f"last checkpoint (the end of the budget) and of the best one.", "",
               f"| policy | seed | first success | {CURVE_TARGET:.0%} success | end of budget | success at the end | "
               f"best checkpoint |", "|---|---:|---:|---:|---:|---:|---:|"]
        for p in policies:
            for i, m in enumerate(speed[p.label]["milestones"]):
                seed = p.seeds[i] if i < len(p.seeds) else "-"
                pct = lambda v: "-" if v is None else f"{100 * v:.0f}%"  # noqa: E731
                md.append(f"| {p.label} | {seed} | {_steps(m['first_success_env_steps']) if m['first_success_env_steps'] else 'never'} | "
                          f"{_steps(m['target_env_steps']) if m['target_env_steps'] else 'never'} | "
                          f"{_steps(m['final_env_steps'])} | {pct(m['final_success_rate'])} | {pct(m['best_success_rate'])} |")
        md += [""]
    md += [f"Env steps until the success rate of the training episodes that start at t = 0 (the noisy policy, "
           f"`Success/success_rate` of progress.jsonl) first reached {SUCCESS_TARGET:.0%}, and until its first success.", "",
           "| policy | runs reaching it | median env steps | per run | first success per run | env steps/s |",
           "|---|---:|---:|---|---|---:|"]
    training_speed = {p.label: learning_speed(PolicyData(p.label, p.runs, p.progress)) for p in policies}
    for p in policies:
        sp = training_speed[p.label]
        per = ", ".join("never" if r is None else _steps(r["env_steps"]) for r in sp["per_run"]) or "-"
        first = ", ".join("never" if r is None else _steps(r["env_steps"]) for r in sp["first_success"]) or "-"
        rate = [r for r in sp["steps_per_s"] if r]
        md.append(f"| {p.label} | {sp['reached']}/{sp['runs']} | {_steps(sp['median_env_steps'])} | {per} | {first} | "
                  f"{np.mean(rate):,.0f} |" if rate else
                  f"| {p.label} | {sp['reached']}/{sp['runs']} | {_steps(sp['median_env_steps'])} | {per} | {first} | - |")
    md += [""]
    budgets = {p.label: sorted({s for s in speed[p.label]["env_steps"] if s}) for p in policies}
    if len({tuple(v) for v in budgets.values()}) > 1:
        md += ["**Budgets differ**: " + "; ".join(f"{k}: {', '.join(_steps(s) for s in v)}" for k, v in budgets.items())
               + " env steps.", ""]
    return md


def _figures_section(out: Path, labels: list[str], figures, video) -> list[str]:
    """Links to the figures (learning curves, success curve, height and pitch) and the video with its still."""
    curves, sweep, hp = figures
    md = ["## Figures", ""]
    if curves:
        md += ["Learning curves (training episodes from t = 0; mean over seeds, band min-max):", "",
               f"![learning curves]({curves.name})", ""]
    if sweep:
        md += ["Success of the deterministic policy under randomization at every evaluated checkpoint:", "",
               f"![success against env steps]({sweep.name})", ""]
    if hp:
        md += ["Base height and pitch of the nominal evaluation against the reference:", "",
               f"![height and pitch]({hp.name})", ""]
    if video:
        shown = f"{labels[0]}, the reference (translucent ghost) and {labels[1]}" if len(labels) >= 2 else (
            f"{labels[0]} beside the reference (translucent ghost)")
        md += [f"Video: [{Path(video).name}]({Path(video).name}) — {shown}, first nominal episode of the first seed.",
               ""]
        still = Path(out / "compare_frame.png")
        if still.is_file():
            md += [f"![video frame at the reference's apex]({still.name})", ""]
    return md


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ---------------------------------------------------------------------------- training and the whole job


