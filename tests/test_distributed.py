"""One policy trained by 2 ranks on the CPU (torchrun, gloo): one run folder whose weights both ranks hold after
the updates, and a rank killed mid-run that stops the other with a checkpoint of the last finished iteration."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.genesis, pytest.mark.all_kernels]

ENVS_PER_RANK = 8


def _torchrun(args: list[str], cwd: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "imitation.cli", "train", "--device", "cpu", "--num-envs", str(2 * ENVS_PER_RANK), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    # Its own session: whatever happens, the test can end torchrun and both ranks together.
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _weights_sha256(ckpt: dict) -> str:
    """The recipe of Runner.weights_sha256, on a checkpoint's state dicts."""
    h = hashlib.sha256()
    for part in ("actor_state_dict", "critic_state_dict"):
        for key, value in ckpt[part].items():
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _progress(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines() if line.strip()]


def test_two_ranks_train_one_policy(env_config_path, env, tmp_path):
    proc = _torchrun(["--config", str(env_config_path), "--max-iterations", "2", "--runs-dir", str(tmp_path / "runs")],
                     tmp_path)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        _end(proc)
    assert proc.returncode == 0, out[-3000:]

    runs = list((tmp_path / "runs" / "test_imitation").iterdir())
    assert len(runs) == 1, runs  # rank 0 alone writes the run
    run = runs[0]
    assert re.findall(r"^run: (.+)$", out, flags=re.M) == [str(run)]
    records = _progress(run)
    assert [r["iteration"] for r in records] == [1, 2]
    per_iteration = 2 * ENVS_PER_RANK * 8  # both ranks' envs x num_steps_per_env
    assert [r["env_steps"] for r in records] == [per_iteration, 2 * per_iteration]
    assert all(r["ranks"] == 2 for r in records)

    # Both ranks end with the same weights: rank 0's parameters were broadcast at the start (the ranks' own
    # initializations differ: seed + rank) and the gradients averaged at every update; and they are the checkpoint's.
    hashes = dict(re.findall(r"^rank (\d) weights sha256: ([0-9a-f]{64})$", out, flags=re.M))
    assert set(hashes) == {"0", "1"}, out[-3000:]
    assert hashes["0"] == hashes["1"]
    final = torch.load(run / "model_2.pt", weights_only=False)
    assert final["iter"] == 2 and final["infos"]["config"]["env"]["num_envs"] == 2 * ENVS_PER_RANK
    assert _weights_sha256(final) == hashes["0"]
    first = torch.load(run / "model_1.pt", weights_only=False)
    assert _weights_sha256(first) != hashes["0"]  # the second update changed them

    # The run folder is like any other: evaluated from its checkpoint in the session env.
    from imitation.evaluation.evaluate import evaluate

    result = evaluate(run, episodes=env.num_envs, env=env)
    assert len(result.metrics["success"]) == env.num_envs


def _rank_pid(torchrun_pid: int, rank: int) -> int | None:
    """The pid of a rank of this torchrun: its child process with RANK=<rank> in its environment (/proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == torchrun_pid and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


def test_a_killed_rank_stops_the_other_with_a_checkpoint(env_config_path, tmp_path):
    # Checkpoints only after the first iteration (save_interval): the one after the kill is the stop's own.
    config = tmp_path / "rare_checkpoints.yaml"
    config.write_text(f"include: {env_config_path}\nppo: {{save_interval: 100000}}\n")
    proc = _torchrun(["--config", str(config), "--max-iterations", "100000", "--runs-dir", str(tmp_path / "runs")],
                     tmp_path)
    try:
        deadline = time.monotonic() + 240
        progress = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((tmp_path / "runs").glob("*/*/progress.jsonl"))
            if found and len(found[0].read_text().splitlines()) >= 3:
                progress = found[0]
                break
            time.sleep(0.2)
        assert progress is not None, "no third iteration within 240 s"
        victim = _rank_pid(proc.pid, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        _end(proc)

    assert took < 30, f"torchrun took {took:.1f} s to end after a rank was killed"
    assert proc.returncode != 0
    assert "stopped: another rank failed" in out, out[-3000:]
    run = progress.parent
    done = _progress(run)[-1]["iteration"]
    ckpts = sorted(int(m.group(1)) for p in run.glob("model_*.pt") if (m := re.search(r"model_(\d+)\.pt$", p.name)))
    assert ckpts[-1] == done >= 3  # the last iteration rank 0 finished, saved after the kill
    ckpt = torch.load(run / f"model_{done}.pt", weights_only=False)
    assert ckpt["iter"] == done and ckpt["infos"]["config"]["experiment"] == "test_imitation"
    assert not list(run.glob(".*.tmp"))
