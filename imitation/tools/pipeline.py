"""The main job: for every shipped skill, its reference made from its motion file, its policies evaluated, its report.

A shipped skill is a set of policy folders `policies/<skill>_s<seed>/` (imitation policies, each with a
provenance.json naming the motion file it was made from, and the refinement settings when its clip was
refined), optionally with reward-only baselines `policies/<skill>_reward_s<seed>/`. For each skill:

1. retarget its motion file with the settings its clip was made with (quality report, plot) into
   <out>/clips/<skill>.h5;
2. where its policies were trained on a refined clip, refine it: the repository's cached refinement
   (the clip named by provenance.json, e.g. motions/refined/<skill>.h5) when it was refined from this very
   motion file with these settings, else a fresh refinement;
3. judge the policies in MuJoCo from their bundles (imitation.sim2sim: nominal, realistic actuators,
   randomized; <out>/<skill>/mujoco.json);
4. evaluate the policies (every seed, nominal and randomized) against that clip and write
   <out>/<skill>/report.md with the shipped checkpoint evaluations as learning curves, the MuJoCo section and
   a video (the Genesis run, the reference ghost and the MuJoCo run); a skill with reward-only baselines gets
   the imitation-vs-reward-only comparison.

Then <out>/skills.md and skills.json: one row per skill. Skills run in separate processes, `jobs` at a time
(each builds its own Genesis scene).
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from retarget.errors import InputError
from retarget.files import write_text_atomic
from retarget.robot import PROJECT_ROOT

from .. import bundle, runs
from ..sim2sim import summary
from ..sim2sim.summary import pct as mj_pct

POLICIES_DIR = PROJECT_ROOT / "policies"
BASELINE_SUFFIX = "_reward"     # policies/<skill>_reward_s<seed>: the skill's reward-only baseline
_SEEDED = re.compile(r"^(?P<skill>.+)_s(?P<seed>\d+)$")


@dataclass
class Skill:
    name: str
    source: Path                       # the motion file
    retarget: dict                     # the settings its clip was retargeted with
    refined_cache: Path | None         # the cached refinement its policies were trained on (None: not refined)
    policies: list[Path] = field(default_factory=list)
    baselines: list[Path] = field(default_factory=list)
    clip: Path | None = None           # a policy of several clips: the library clip this row judges it on


def discover(policies_dir: str | Path = POLICIES_DIR) -> dict[str, Skill]:
    """The shipped skills of `policies_dir`, by name (sorted)."""
    policies_dir = Path(policies_dir)
    members: dict[str, list[Path]] = {}
    for cfg in sorted(policies_dir.glob(f"*/{runs.CONFIG}")):
        m = _SEEDED.match(cfg.parent.name)
        if m:
            members.setdefault(m["skill"], []).append(cfg.parent)
    skills = {}
    for name, folders in members.items():
        if name.endswith(BASELINE_SUFFIX) and name[: -len(BASELINE_SUFFIX)] in members:
            continue
        prov_file = folders[0] / runs.PROVENANCE
        if not prov_file.is_file():
            raise InputError(f"{prov_file}: missing (a shipped policy names the motion file it was made from)")
        prov = json.loads(prov_file.read_text())
        if prov.get("clips"):  # one policy of several clips: a row per clip, judged on the clip it was trained on
            for i, src in enumerate(prov.get("sources") or []):
                skill = _skill(f"{name}-{Path(src['clip']).stem}", src, f"{prov_file}: sources[{i}]", folders, [])
                skill.clip = PROJECT_ROOT / src["clip"]
                skills[skill.name] = skill
            continue
        skills[name] = _skill(name, prov, str(prov_file), folders, members.get(name + BASELINE_SUFFIX, []))
    return dict(sorted(skills.items()))


def _skill(name: str, prov: dict, where: str, folders: list[Path], baselines: list[Path]) -> Skill:
    """A skill from the provenance of its clip (`prov`: clip, source, refinement)."""
    try:
        source = PROJECT_ROOT / prov["source"]["file"]
    except (KeyError, TypeError):
        raise InputError(f"{where}: field 'source.file' missing") from None
    if not source.is_file():
        raise InputError(f"{where}: source.file {prov['source']['file']} not found")
    retarget = (prov["source"].get("retarget_settings") or {})
    return Skill(name, source, retarget, PROJECT_ROOT / prov["clip"] if "refinement" in prov else None,
                 policies=folders, baselines=baselines)


def run_skill(skill: Skill, out: Path, *, episodes: int = 100, video: bool = True, device: str = "cpu") -> Path:
    """Steps 1-4 of the module docstring for one skill; returns its report."""
    from retarget.importer import retarget_file

    from ..refine.run import cached_refinement
    from .compare import compare

    clips = out / "clips"
    if skill.clip is not None:  # a row of a policy of several clips: the clip it was trained on (provenance sha256)
        clip, video = skill.clip, False
    else:
        retargeted = clips / f"{skill.name}.h5"
        source_robot = None if skill.retarget.get("source_robot_assumed", True) else skill.retarget.get("source_robot")
        retarget_file(skill.source, retargeted, source_robot=source_robot, fps=skill.retarget.get("fps"),
                      method=skill.retarget.get("method", "joints"), plot=clips / f"{skill.name}.png")
        clip = retargeted
        if skill.refined_cache is not None:
            clip = cached_refinement(skill.source, skill.refined_cache, clips / f"{skill.name}_refined.h5",
                                     device=device)
    group = lambda folders: runs.read_config(folders[0] / runs.CONFIG)["experiment"]  # noqa: E731
    labels = {group(skill.policies): "imitation"}
    if skill.baselines:
        labels[group(skill.baselines)] = "reward-only"
    doc = judge_in_mujoco(skill, out / skill.name, episodes=episodes, clip=skill.clip)
    mujoco_run = [("MuJoCo", doc["trajectory"].trajectory)] if video else []
    report = compare(out / skill.name, runs=skill.policies + skill.baselines, clip=clip, episodes=episodes,
                     video=video, device=device, title=skill.name.replace("_", " "), labels=labels,
                     extra_tracks=mujoco_run)
    text = report.read_text()
    cut = text.find("## MuJoCo (sim-to-sim)")
    text = (text[:cut].rstrip() if cut >= 0 else text.rstrip()) + "\n\n" + summary.markdown(doc, video=video)
    write_text_atomic(report, text)
    return report


def judge_in_mujoco(skill: Skill, folder: Path, *, episodes: int, clip: Path | None = None) -> dict:
    """The skill's policies judged in MuJoCo (imitation.sim2sim) on `clip` (default: their bundle's):
    <folder>/mujoco.json."""
    print(f"  {skill.name}: MuJoCo evaluation", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    doc = summary.judge_policies(skill.policies, episodes=episodes, clip=clip)
    summary.write(doc, folder)
    return doc


def pipeline(out: str | Path, *, skills=None, jobs: int = 2, episodes: int = 100, video: bool = True,
             device: str = "cpu", policies_dir: str | Path = POLICIES_DIR, index: bool = True,
             library: bool = False) -> Path | None:
    """Every (or the named) shipped skill, `jobs` processes at a time; returns <out>/skills.md (`index` False: no
    skills table, for the one-skill processes of a parallel run). The rows of policies of several clips only with
    `library` or when named: each is another evaluation of a policy the single-skill rows do not need."""
    out = Path(out)
    found = discover(policies_dir)
    if not found:
        raise InputError(f"{policies_dir}: no shipped policies (folders <skill>_s<seed>/ with {runs.CONFIG})")
    unknown = sorted(set(skills or ()) - set(found))
    if unknown:
        raise InputError(f"--skills: no shipped skill {', '.join(unknown)} (shipped: {', '.join(found)})")
    chosen = [found[s] for s in (skills or [n for n, s in found.items() if library or s.clip is None])]
    t0 = time.time()
    print(f"skills: {', '.join(s.name for s in chosen)}", flush=True)
    if jobs <= 1 or len(chosen) == 1:
        for s in chosen:
            run_skill(s, out, episodes=episodes, video=video, device=device)
    else:
        _run_parallel(chosen, out, jobs, episodes, video, device)
    return write_index(out, chosen, time.time() - t0) if index else None


def _run_parallel(chosen, out: Path, jobs: int, episodes: int, video: bool, device: str) -> None:
    """One `imitation pipeline --skills S --jobs 1` process per skill, `jobs` at a time; logs in <out>/logs/. One
    live display: skills done of all, an ETA, and what each running skill is doing (its log's last line)."""
    from .display import Display, eta_text
    from .jobs import Job, last_line, run_jobs

    # Longest first: the last skill to start is then a short one, and the two slots end close together.
    chosen = sorted(chosen, key=_expected_cost, reverse=True)
    todo = [Job(s.name, [sys.executable, "-m", "imitation.cli", "pipeline", "--out", str(out), "--skills", s.name,
                         "--jobs", "1", "--episodes", str(episodes), "--device", device, "--no-index",
                         *([] if video else ["--no-video"])], out / "logs" / f"{s.name}.log") for s in chosen]
    shown, took = Display("main job"), []

    def finished(job, rc, sec):
        took.append(sec)
        shown.log(f"{job.name}: {'done' if rc == 0 else 'FAILED'} in {sec:.0f} s (log {job.log})")

    def tick(running):
        eta = None
        if took:  # the skills left at the mean time of those done, shared out over the parallel slots
            mean = sum(took) / len(took)
            queued = len(todo) - len(took) - len(running)
            eta = (queued * mean + sum(max(mean - sec, 0.0) for _, sec in running)) / max(1, jobs)
        shown.board(f"{len(took)}/{len(todo)} skills done, ETA {eta_text(eta)}",
                    [f"{job.name} ({sec:.0f} s): {last_line(job.log)[:100]}" for job, sec in running])

    try:
        codes = run_jobs(todo, jobs, started=lambda j: shown.log(f"{j.name}: started (log {j.log})"),
                         finished=finished, tick=tick)
    finally:
        shown.close()
    failed = [name for name, rc in codes.items() if rc != 0]
    if failed:
        tail = (out / "logs" / f"{failed[0]}.log").read_text().strip().splitlines()[-1:]
        raise InputError(f"skill(s) {', '.join(failed)} failed: {tail[0] if tail else 'see the logs'} "
                         f"(logs in {out / 'logs'})")


def _expected_cost(skill: Skill) -> float:
    """Episode seconds to simulate (every policy, baselines included): what a skill's evaluations scale with."""
    try:
        episode_s = float(json.loads((skill.policies[0] / bundle.FILE).read_text())["reference"]["episode_length_s"])
    except (OSError, KeyError, TypeError, ValueError):
        episode_s = 1.0
    return episode_s * (len(skill.policies) + len(skill.baselines))


def write_index(out: Path, chosen, wall_s: float) -> Path:
    """<out>/skills.md and skills.json: per skill, the imitation policies' pooled success (nominal, randomized),
    env steps to 90% randomized success (median over seeds) and training wall time, from each skill's summary."""
    rows, md = [], ["# Shipped skills", "",
                    "Imitation policies of every seed pooled; randomized = domain randomization (friction, base mass, "
                    "gains, action latency). Env steps to 90%: the first shipped checkpoint evaluation with >= 90% "
                    "randomized success, median over seeds. Wall time: training, per seed.", "",
                    "MuJoCo: the same policies run from their bundles in a second engine (imitation eval --sim "
                    "mujoco), with the robot's actuator model; randomized adds actuator, contact and physics-rate "
                    "draws (docs/sim2sim.md).", "",
                    "| skill | motion file | seeds | success nominal | success randomized | MuJoCo nominal | "
                    "MuJoCo randomized | env steps to 90% | training wall time | report |",
                    "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in chosen:
        summary = json.loads((out / s.name / "summary.json").read_text())
        ss = summary["summaries"]
        pct = lambda cond: (f"{100 * ss[cond]['imitation']['success_rate']:.0f}% "  # noqa: E731
                            f"[{100 * ss[cond]['imitation']['success_ci_low']:.0f}-"
                            f"{100 * ss[cond]['imitation']['success_ci_high']:.0f}]" if cond in ss else "-")
        speed = summary["learning_speed"]["imitation"]
        walls = [w for w in speed.get("wall_time", []) if w]
        steps = speed.get("median_env_steps")
        row = {"skill": s.name, "source": str(s.source.relative_to(PROJECT_ROOT)), "seeds": len(s.policies),
               "success_nominal": ss.get("nominal", {}).get("imitation", {}).get("success_rate"),
               "success_randomized": ss.get("randomized", {}).get("imitation", {}).get("success_rate"),
               "median_env_steps_to_90": steps, "training_wall_s": walls}
        mj_file = out / s.name / "mujoco.json"
        mj = json.loads(mj_file.read_text())["pooled"] if mj_file.is_file() else {}
        row["mujoco"] = {c: v["success_rate"] for c, v in mj.items()}
        rows.append(row)
        md.append(f"| {s.name} | `{row['source']}` | {row['seeds']} | {pct('nominal')} | {pct('randomized')} | "
                  f"{mj_pct(mj.get('nominal'))} | {mj_pct(mj.get('randomized'))} | "
                  f"{f'{steps / 1e6:.2f}M' if steps else 'never'} | "
                  f"{', '.join(f'{w / 60:.0f} min' for w in walls) or '-'} | [report]({s.name}/report.md) |")
    md += ["", f"Made by `imitation pipeline` in {wall_s:.0f} s.", ""]
    write_text_atomic(out / "skills.json", json.dumps({"skills": rows, "wall_s": round(wall_s, 1)}, indent=1) + "\n")
    path = out / "skills.md"
    write_text_atomic(path, "\n".join(md))
    print(f"skills: {path}")
    if out.resolve() == (PROJECT_ROOT / "docs" / "results").resolve():
        update_readme_table(md, "docs/results/")
    return path


README_MARKS = ("<!-- skills table: written by imitation pipeline --out docs/results -->", "<!-- end of skills table -->")


def update_readme_table(md: list[str], prefix: str) -> None:
    """README's skill table (between README_MARKS), from the lines of skills.md, links made README-relative."""
    readme = PROJECT_ROOT / "README.md"
    text = readme.read_text()
    start, end = (text.find(m) for m in README_MARKS)
    if start < 0 or end < start:
        return
    table = [line.replace("](", "](" + prefix) for line in md if line.startswith("|")]
    text = text[:start + len(README_MARKS[0])] + "\n" + "\n".join(table) + "\n" + text[end:]
    write_text_atomic(readme, text)
