"""The motion zoo benchmark: `imitation learn` on each motion file, one seed each, and a table of how it went.

    .venv/bin/python scripts/zoo.py [MOTION ...] [--jobs 2] [--env-steps 3000000] [--out out/zoo] [--table-only]
        [--markdown docs/results/zoo.md]

Default motions: motions/zoo/*.yaml (keyframes) and the repository's real clips (motions/real/*.txt, the gaits). Each learns into <out>/work/<name>/ and ships
to <out>/policies/<name>_s1/ (not the project's policies/); a rerun reuses what each learn finished. The table
(stdout, and --markdown) gives per motion: loop or not, the refinement's verdict, env steps to 90% randomized
success (first checkpoint evaluation at or above it), the shipped checkpoint's randomized success and where it was
taken, and the wall times of refinement and training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = (sorted((ROOT / "motions" / "zoo").glob("*.yaml")) + sorted((ROOT / "motions" / "real").glob("*.txt"))
           + [ROOT / "motions" / "dog_pace.txt", ROOT / "motions" / "dog_trot.txt"])


def learn_cmd(motion: Path, out: Path, env_steps: int, refine_jobs: int) -> list[str]:
    return [sys.executable, "-m", "imitation.cli", "learn", str(motion), "--name", motion.stem, "--seeds", "1",
            "--env-steps", str(env_steps), "--ship-to", str(out / "policies"), "--work", str(out / "work" / motion.stem),
            "--refine-jobs", str(refine_jobs), "--no-report"]


def run_all(motions: list[Path], out: Path, jobs: int, env_steps: int, refine_jobs: int) -> None:
    from imitation.tools.jobs import Job, run_jobs

    todo = [Job(m.stem, learn_cmd(m, out, env_steps, refine_jobs), out / "logs" / f"{m.stem}.log", ROOT)
            for m in motions]
    run_jobs(todo, jobs, poll_s=2.0, started=lambda j: print(f"{j.name}: started (log {j.log})", flush=True),
             finished=lambda j, rc, sec: print(f"{j.name}: {'done' if rc == 0 else f'FAILED ({rc})'} in {sec:.0f} s",
                                               flush=True))


def row(motion: Path, out: Path) -> dict:
    work = out / "work" / motion.stem
    stages = json.loads((work / "stages.json").read_text()) if (work / "stages.json").is_file() else {}
    r = {"motion": motion.stem, "file": str(motion.relative_to(ROOT)) if motion.is_relative_to(ROOT) else str(motion)}
    ref = stages.get("refine")
    if ref is None:
        r["refine"] = "skipped (loop)" if "train_s1" in stages else "-"
    elif ref.get("refused"):
        r["refine"] = "refused: " + ref["refused"].split("budget: ")[-1].split("; nothing")[0]
    else:
        rep = json.loads((work / "refine.json").read_text()) if (work / "refine.json").is_file() else {}
        r["refine"] = "feasible" + ("" if not rep.get("warnings") else " (mean cost over the robots rose)")
    r["refine_s"] = ref.get("wall_s") if ref else None
    train = stages.get("train_s1", {})
    run = Path(train["run"]) if train.get("run") else None
    rows = json.loads((run / "eval_curve.json").read_text())["rows"] if run and (run / "eval_curve.json").is_file() else []
    first = next((x for x in rows if (x.get("success_rate") or 0) >= 0.9), None)
    r["env_steps_to_90"] = first["env_steps"] if first else None
    chosen = next((x for x in rows if x["iteration"] == train.get("chosen")), None)
    r["chosen_iteration"] = train.get("chosen")
    r["chosen_env_steps"] = chosen["env_steps"] if chosen else None
    r["success_randomized"] = chosen["success_rate"] if chosen else None
    progress = [json.loads(x) for x in (run / "progress.jsonl").read_text().splitlines()] if run and (run / "progress.jsonl").is_file() else []
    r["trained_env_steps"] = progress[-1]["env_steps"] if progress else None
    r["train_s"] = progress[-1]["wall_time"] if progress else None
    r["status"] = "shipped" if "ship_s1" in stages else ("running or stopped" if stages else "not run")
    clip = (stages.get("refine") or {}).get("output") or (stages.get("retarget") or {}).get("output")
    r["loop"], r["standing"] = standing_verdict(Path(clip)) if clip and Path(clip).is_file() else (None, None)
    return r


def standing_verdict(clip_path: Path) -> tuple[bool, bool]:
    """(loop?, does a robot that stands still pass?): the clip's first frame held for an evaluation episode (10 s
    for a loop, the clip's length otherwise), judged by the success rule with the default tolerances."""
    import torch

    from imitation.analysis.metrics import reference_trajectory
    from imitation.config import defaults
    from imitation.env.reference import Reference
    from imitation.env.success import trajectory_verdicts
    from retarget.clip import read_clip

    cfg = defaults()
    dt = cfg["env"]["dt"]
    ref = Reference(read_clip(clip_path), None, dt, "cpu")
    steps = int(round(cfg["env"]["loop_episode_length_s"] / dt)) if ref.loop else ref.num_frames - 1
    traj = reference_trajectory(ref, torch.zeros(steps + 1, dtype=torch.long))
    return bool(ref.loop), bool(trajectory_verdicts(traj, ref, cfg["success"])["success"][0])


def table(rows: list[dict]) -> list[str]:
    m = lambda v: "-" if v is None else f"{v / 1e6:.2f}M"  # noqa: E731
    t = lambda v: "-" if v is None else f"{v / 60:.1f} min"  # noqa: E731
    yn = lambda v, yes, no: "-" if v is None else (yes if v else no)  # noqa: E731
    lines = ["| motion | loop | refinement | standing robot | env steps to 90% randomized | shipped checkpoint | "
             "its randomized success | trained | refine time | train time | status |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        s = "-" if r["success_randomized"] is None else f"{100 * r['success_randomized']:.0f}%"
        lines.append(f"| `{r['file']}` | {yn(r['loop'], 'yes', 'no')} | {r['refine']} | "
                     f"{yn(r['standing'], 'PASSES', 'fails')} | {m(r['env_steps_to_90'])} | {m(r['chosen_env_steps'])} | "
                     f"{s} | {m(r['trained_env_steps'])} | {t(r['refine_s'])} | {t(r['train_s'])} | {r['status']} |")
    return lines


HEADER = """# The motion zoo

`imitation learn MOTION --seeds 1` on motions no shipped policy was tuned on: keyframe motions written for the
purpose (`motions/zoo/`) and motion_imitation clips (`motions/real/`, `motions/dog_*.txt`), each with the product's
defaults (retargeting method, refinement, config chosen from the clip, 256 envs, at most {env_steps:.0f}M env steps,
checkpoint evaluations on 100 randomized episodes every 50 iterations, early stop at >= 95% held over 0.5M env steps).
Made by `.venv/bin/python scripts/zoo.py MOTION ... --jobs 2 --refine-jobs 1 --markdown docs/results/zoo.md` with the
motions of the table (without MOTION: every motion of motions/zoo/ and motions/real/ and the two shipped gait clips);
two learn runs at a time on a 2-core CPU, with other work beside them, so the wall times are those of a busy machine.

Columns: refinement (motions that end): its verdict (refused: trained on the retargeted clip); standing robot: whether
a robot that holds the clip's first frame for an evaluation episode passes the success rule (it must fail, or the
verdict means nothing); env steps to 90%: the first checkpoint evaluation at or above 90% randomized success; shipped
checkpoint: the one the early stop or the best evaluation chose, and its randomized success; trained: env steps
trained in all."""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("motions", nargs="*", type=Path, default=None)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "zoo")
    p.add_argument("--jobs", type=int, default=2, help="learn runs at the same time (default 2)")
    p.add_argument("--env-steps", type=int, default=3_000_000)
    p.add_argument("--refine-jobs", type=int, default=None,
                   help="processes per refinement (default: 2 when one learn runs at a time, else 1)")
    p.add_argument("--table-only", action="store_true", help="only print the table of what is there")
    p.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = p.parse_args()
    motions = [m.resolve() for m in (args.motions or DEFAULT)]
    missing = [m for m in motions if not m.is_file()]
    if missing:
        print(f"error: {missing[0]}: motion file not found", file=sys.stderr)
        return 2
    if not args.table_only:
        run_all(motions, args.out, args.jobs, args.env_steps,
                args.refine_jobs or (1 if args.jobs > 1 else 2))
    lines = table([row(m, args.out) for m in motions])
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join([*HEADER.format(env_steps=args.env_steps / 1e6).splitlines(), "", *lines])
                                 + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
