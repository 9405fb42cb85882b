"""The run folder and the shipped-policy folder: every file name and path of both, and their readers.

A training run lives in `runs/<experiment>/<timestamp>[_<run name>]/`:

    config.yaml                the resolved config the run trained with
    model_<n>.pt               checkpoints, n = completed iterations: actor, critic, optimizer state, `iter` and
                               `infos.config` (the run's config), written atomically
    progress.jsonl             one JSON record of metrics per iteration
    exported/policy.pt         the actor as TorchScript; exported/policy.onnx(.data) as ONNX when onnx is installed
    eval_curve.json            checkpoint evaluations under domain randomization (imitation sweep), and
    eval_curve_nominal.json    without it (a policy of several clips: one of each per clip, eval_curve_<clip>.json)
    events.out.tfevents.*      TensorBoard

A shipped policy (`policies/<name>/`, imitation ship) is a flat folder: policy.pt, policy.onnx(.data), config.yaml,
a thinned progress.jsonl, the eval curves and provenance.json. Evaluation takes either folder.

Path helpers and plain-file readers only: neither torch nor genesis is imported here at import time
(`load_checkpoint` imports torch when called).
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

from retarget.errors import InputError
from retarget.files import write_text_atomic

CONFIG = "config.yaml"
PROGRESS = "progress.jsonl"
EXPORT_DIR = "exported"
POLICY = "policy.pt"                 # TorchScript
POLICY_ONNX = "policy.onnx"          # (+ policy.onnx.data beside it for large models)
PROVENANCE = "provenance.json"
_CKPT = re.compile(r"model_(\d+)\.pt$")


# ---------------------------------------------------------------------------- folders


def new_run_dir(runs_dir: str | Path, experiment: str, run_name: str | None = None) -> Path:
    """The folder of a new run, named by the time it starts (not created)."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return Path(runs_dir) / experiment / (stamp + (f"_{run_name}" if run_name else ""))


def run_folder(path: str | Path) -> Path:
    """The folder holding the config.yaml of a run or shipped policy, given the folder itself, one of its
    checkpoints or its export."""
    p = Path(path)
    if p.is_dir():
        return p
    return p.parent.parent if p.parent.name == EXPORT_DIR else p.parent


def config_path(path: str | Path) -> Path:
    """The config.yaml of the run or shipped policy that `path` (folder, checkpoint or export) belongs to."""
    return run_folder(path) / CONFIG


def policy_label(path: str | Path) -> str:
    """A short column name: the run folder (or the file's folder and name)."""
    p = Path(path)
    if p.is_dir():
        return p.name
    if p.parent.name == EXPORT_DIR:
        return f"{p.parent.parent.name}/{EXPORT_DIR}"
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


# ---------------------------------------------------------------------------- checkpoints and exports


def checkpoint_path(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / f"model_{iteration}.pt"


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(completed iterations, path) of every checkpoint of a run, in order."""
    return sorted((int(m.group(1)), p) for p in Path(run_dir).glob("model_*.pt") if (m := _CKPT.search(p.name)))


def latest_checkpoint(run_dir: str | Path) -> Path:
    found = checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"{run_dir}: no checkpoint model_<n>.pt to resume from")
    return found[-1][1]


def load_checkpoint(path, map_location="cpu", not_one: str = "not a checkpoint of this project") -> dict:
    """A checkpoint of this project (a path or an open file), read as tensors and plain data only, so that a file
    from elsewhere cannot run code while loading; an InputError of one line when it is not one (`not_one` says
    what the file then is not)."""
    import torch

    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise InputError(f"{path}: {not_one} ({type(e).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or "actor_state_dict" not in ckpt:
        raise InputError(f"{path}: not a policy: a checkpoint needs an actor_state_dict")
    return ckpt


def export_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / EXPORT_DIR


def find_export(folder: str | Path) -> Path | None:
    """The TorchScript policy of a run folder (exported/policy.pt) or of a shipped policy folder (policy.pt)."""
    folder = Path(folder)
    return next((p for p in (export_dir(folder) / POLICY, folder / POLICY) if p.is_file()), None)


def weights_file(path: str | Path) -> Path | None:
    """The weights a fine-tune starts from: a file as it is, a run folder's latest checkpoint, else a folder's
    TorchScript policy (None if there is neither)."""
    path = Path(path)
    if not path.is_dir():
        return path if path.is_file() else None
    found = checkpoints(path)
    return found[-1][1] if found else find_export(path)


def export_files(run_dir: str | Path) -> list[Path]:
    """A finished run's exports: the TorchScript policy, then the ONNX files there are."""
    out = export_dir(run_dir)
    return [out / POLICY, *sorted(out.glob(POLICY_ONNX + "*"))]


# ---------------------------------------------------------------------------- progress


def parse_progress(lines) -> list[dict]:
    """The records of progress.jsonl lines; a line cut by a crash is skipped."""
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def read_progress(run_dir: str | Path) -> list[dict]:
    """The progress records of a run, [] when it has none."""
    p = Path(run_dir) / PROGRESS
    return parse_progress(p.read_text().splitlines()) if p.is_file() else []


def append_progress(run_dir: str | Path, record: dict) -> None:
    with open(Path(run_dir) / PROGRESS, "a") as f:
        f.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------------------- checkpoint evaluations


def curve_name(randomize: bool, label: str = "") -> str:
    """eval_curve.json (randomized) or eval_curve_nominal.json; a policy of several clips has one per clip, named
    by its `label` (eval_curve_backflip.json)."""
    return f"eval_curve{'' if randomize else '_nominal'}{'_' + label if label else ''}.json"


def curve_files(run_dir: str | Path) -> list[Path]:
    return sorted(Path(run_dir).glob("eval_curve*.json"))


def read_curve_doc(run_dir: str | Path, randomize: bool = True, label: str = "") -> dict | None:
    """A run's eval curve document as written by imitation sweep; None when it has none or it is unreadable."""
    try:
        return json.loads((Path(run_dir) / curve_name(randomize, label)).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_curve(run_dir: str | Path, randomize: bool = True, label: str = "") -> list[dict]:
    """The rows of a run's eval curve, [] when it has none."""
    p = Path(run_dir) / curve_name(randomize, label)
    if not p.is_file():
        return []
    try:
        return list(json.loads(p.read_text())["rows"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{p}: not an eval curve ({e})") from None


def write_curve(run_dir: str | Path, randomize: bool, doc: dict, label: str = "") -> Path:
    return write_text_atomic(Path(run_dir) / curve_name(randomize, label), json.dumps(doc, indent=1) + "\n")


# ---------------------------------------------------------------------------- config


def read_config(path: str | Path) -> dict:
    """A run's or shipped policy's config.yaml (`path` the file), validated with its defaults filled in."""
    import yaml

    from . import config as config_mod

    raw = yaml.safe_load(Path(path).read_text())
    return config_mod.validate({k: v for k, v in (raw or {}).items() if k != "run_name"}, str(path))
