"""Package a trained run as a small, self-contained policy folder (what `policies/` holds):

    policy.pt, policy.onnx(.data)   the run's exports (TorchScript, ONNX)
    config.yaml                     the resolved training config (evaluation reads its settings)
    progress.jsonl                  the training log, every `every`-th iteration and the last, learning-curve keys only
    eval_curve*.json                the checkpoint evaluations (imitation sweep), if made
    bundle.json                     what a runner needs without this project (imitation.bundle; also in the ONNX
                                    file's metadata)
    provenance.json                 where the policy comes from: the reference clip and its sha256, the motion file it
                                    was made from (path in the project and sha256) and how (retargeting, refinement
                                    settings), the training config's experiment, seed, envs and budget

`imitation eval`, `compare --runs` and `pipeline` take such a folder like a run folder. Checkpoints with
optimizer state stay in the run (they are ~3x larger and only needed to resume).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from retarget.errors import InputError
from retarget.files import atomic_path, write_text_atomic
from retarget.robot import PROJECT_ROOT

from .. import runs
from ..bundle import bundle_of_folder, check_bundle, write_bundle

# Keys of a progress record that the report's learning curves and speed use.
_TOP_KEYS = ("iteration", "env_steps", "wall_time", "steps_per_s", "mean_reward", "mean_episode_length", "action_std",
             "learning_rate")
_EPISODE_PREFIXES = ("Success/", "Flip/", "Tracking/")


def thin_progress(lines: list[str], every: int) -> list[str]:
    """Every `every`-th progress record and the last, with the learning-curve keys only (JSON lines)."""
    records = runs.parse_progress(lines)
    keep = [r for i, r in enumerate(records) if i % every == 0 or i == len(records) - 1]
    out = []
    for r in keep:
        small = {k: r[k] for k in _TOP_KEYS if k in r}
        small["episode"] = {k: v for k, v in (r.get("episode") or {}).items() if k.startswith(_EPISODE_PREFIXES)}
        out.append(json.dumps(small))
    return out


def portable_config(text: str) -> str:
    """The run's config with paths inside the project made project-relative (a clone elsewhere reads them)."""
    root = str(PROJECT_ROOT) + "/"
    return "\n".join(line.replace(": " + root, ": ", 1) if not line.lstrip().startswith("#") else line
                     for line in text.splitlines()) + "\n"


def ship_run(run_dir, dest, *, every: int = 5) -> Path:
    """Copy a run's exports, config, thinned progress and eval curves into `dest` (created; must not exist
    or be empty, so a shipped policy is never mixed with another's files)."""
    run_dir, dest = Path(run_dir), Path(dest)
    export, *onnx = runs.export_files(run_dir)
    for need in (export, run_dir / runs.CONFIG):
        if not need.is_file():
            raise InputError(f"{run_dir}: no {need.relative_to(run_dir)}: not a finished run")
    if dest.exists() and any(dest.iterdir()):
        raise InputError(f"{dest}: exists and is not empty")
    if every < 1:
        raise InputError(f"--progress-every must be at least 1, got {every}")
    prov = provenance(run_dir)
    bundle = check_bundle(bundle_of_folder(run_dir), str(run_dir / runs.CONFIG))   # before anything is written
    dest.mkdir(parents=True, exist_ok=True)
    for src in (export, *runs.curve_files(run_dir), *onnx):
        with atomic_path(dest / src.name) as tmp:
            shutil.copyfile(src, tmp)
    write_text_atomic(dest / runs.CONFIG, portable_config((run_dir / runs.CONFIG).read_text()))
    progress = run_dir / runs.PROGRESS
    if progress.is_file():
        thinned = thin_progress(progress.read_text().splitlines(), every)
        write_text_atomic(dest / runs.PROGRESS, "\n".join(thinned) + "\n")
    write_text_atomic(dest / runs.PROVENANCE, json.dumps(prov, indent=1) + "\n")
    write_bundle(dest, bundle)
    return dest


def provenance(run_dir) -> dict:
    """The chain source motion -> clip -> training of a run (see the module docstring); a run on a motion library
    lists its clips (`clips`, their paths) and the chain of each (`sources`)."""
    import yaml

    cfg = yaml.safe_load((Path(run_dir) / runs.CONFIG).read_text())
    out = {"experiment": cfg["experiment"], "seed": cfg["seed"],
           "num_envs": cfg["env"]["num_envs"], "max_iterations": cfg["ppo"]["max_iterations"],
           "env_steps": cfg["env"]["num_envs"] * cfg["ppo"]["num_steps_per_env"] * cfg["ppo"]["max_iterations"]}
    if cfg.get("clips"):
        sources = [_clip_provenance(Path(e["clip"])) for e in cfg["clips"]]
        return {"clips": [s["clip"] for s in sources], **out, "sources": sources}
    return {**_clip_provenance(Path(cfg["clip"])), **out}


def _clip_provenance(clip_path: Path) -> dict:
    """A clip's path in the project, its sha256, the motion file it was made from and how."""
    from retarget.clip import read_clip, sha256_of
    from retarget.formats import MOTION_SUFFIXES

    out = {"clip": portable_config(f"x: {clip_path}").strip()[3:]}
    if clip_path.is_file():
        clip = read_clip(clip_path)
        out["clip_sha256"] = sha256_of(clip_path)
        # The motion file by its content: the project's motion file with the clip's recorded sha256.
        source = next((p for p in sorted((PROJECT_ROOT / "motions").rglob("*"))
                       if p.is_file() and p.suffix.lower() in MOTION_SUFFIXES
                       and sha256_of(p) == clip.source_sha256), None)
        out["source"] = {"file": str(source.relative_to(PROJECT_ROOT)) if source else clip.source_file,
                         "sha256": clip.source_sha256}
        settings = clip.retarget_settings
        if "refine" in settings:
            out["refinement"] = {"settings": settings["refine"], "seed": settings.get("seed"),
                                 "physics": settings.get("physics"), "method": settings.get("method")}
            out["source"]["retarget_settings"] = settings.get("source_retarget_settings")
        else:
            out["source"]["retarget_settings"] = settings
    return out
