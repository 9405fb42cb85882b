"""The run folder (imitation/runs.py): checkpoint listing, progress and eval-curve files, policy paths, and
checkpoints read as tensors and plain data only."""

from __future__ import annotations

import json

import pytest
import torch

from imitation import runs
from retarget.errors import InputError


def test_checkpoints_are_listed_by_iteration(tmp_path):
    for name in ("model_100.pt", "model_5.pt", "model_50.pt", "model_best.pt", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [n for n, _ in runs.checkpoints(tmp_path)] == [5, 50, 100]
    assert runs.latest_checkpoint(tmp_path) == tmp_path / "model_100.pt"
    assert runs.checkpoint_path(tmp_path, 7) == tmp_path / "model_7.pt"
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        runs.latest_checkpoint(tmp_path / "empty")


def test_progress_skips_a_line_cut_by_a_crash(tmp_path):
    runs.append_progress(tmp_path, {"iteration": 1, "env_steps": 10})
    runs.append_progress(tmp_path, {"iteration": 2, "env_steps": 20})
    with open(tmp_path / runs.PROGRESS, "a") as f:
        f.write('{"iteration": 3, "env_st')
    assert [r["iteration"] for r in runs.read_progress(tmp_path)] == [1, 2]
    assert runs.read_progress(tmp_path / "none") == []


def test_eval_curves(tmp_path):
    assert runs.read_curve(tmp_path) == [] and runs.read_curve_doc(tmp_path) is None
    runs.write_curve(tmp_path, True, {"rows": [{"iteration": 1}]})
    assert runs.read_curve(tmp_path) == [{"iteration": 1}] and runs.read_curve(tmp_path, randomize=False) == []
    assert runs.curve_files(tmp_path) == [tmp_path / "eval_curve.json"]
    (tmp_path / runs.curve_name(False)).write_text(json.dumps({"no rows": 1}))
    with pytest.raises(InputError, match="not an eval curve"):
        runs.read_curve(tmp_path, randomize=False)


def test_policy_paths(tmp_path):
    run = tmp_path / "2026-01-01_00-00-00_a"
    (run / runs.EXPORT_DIR).mkdir(parents=True)
    export = run / runs.EXPORT_DIR / runs.POLICY
    export.write_bytes(b"")
    assert runs.run_folder(run / "model_3.pt") == run and runs.run_folder(export) == run and runs.run_folder(run) == run
    assert runs.config_path(export) == run / runs.CONFIG
    assert runs.find_export(run) == export and runs.find_export(tmp_path) is None
    assert runs.policy_label(run) == run.name and runs.policy_label(export) == f"{run.name}/exported"
    assert runs.new_run_dir(tmp_path, "exp", "jump").parent == tmp_path / "exp"
    assert runs.new_run_dir(tmp_path, "exp", "jump").name.endswith("_jump")


class _Foreign:
    loaded = False

    def __setstate__(self, state):
        _Foreign.loaded = True


def test_checkpoints_load_as_plain_data_only(tmp_path):
    good = tmp_path / "model_1.pt"
    torch.save({"actor_state_dict": {"w": torch.zeros(2)}, "iter": 1, "infos": {"config": {"seed": 1}}}, good)
    assert runs.load_checkpoint(good)["iter"] == 1
    torch.save({"actor_state_dict": {}, "payload": _Foreign()}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="not a checkpoint of this project") as e:
        runs.load_checkpoint(tmp_path / "foreign.pt")
    assert "\n" not in str(e.value) and not _Foreign.loaded
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="needs an actor_state_dict"):
        runs.load_checkpoint(tmp_path / "other.pt")
