"""Throughput of one training spread over several ranks: PPO iterations of 1 process against N ranks at equal
total envs (`imitation bench --ranks 1,2`).

Each rank count is one group of processes (1: a plain process; N: torchrun with N ranks on this machine, as
`imitation train --ranks N` runs), each rank with its own scene of num_envs / N envs and the update threads
`imitation train` would give it (the cores shared out among the ranks). The groups are built one after the other
and then stay up, idle, while the bench takes turns: repetition r times one PPO iteration (rollout + update,
gradients averaged over the ranks) of every group before repetition r + 1 starts, so the machine's load hits
all of them alike. The bench and its groups talk through files in a temporary folder: `go_<r>` from the bench,
`ready` and `done_<r>.json` from rank 0 of a group; every rank polls for `go_<r>`, then they start together.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import jobs

TARGET_SPEEDUP = 1.6       # 2 ranks against 1 process, 256 envs in total, on a 2-core machine
_POLL_S = 0.02
_BUILD_TIMEOUT_S = 1200.0  # a group's scene builds (kernel compilation the first time)
_ITERATION_TIMEOUT_S = 600.0


# ---------------------------------------------------------------------------- the bench's side


class _Group:
    """One rank count's processes, launched and waiting for turns."""

    def __init__(self, ranks: int, num_envs: int, folder: Path, config: str, clip: str | None):
        from ..rl import distributed

        self.ranks, self.num_envs, self.folder = ranks, num_envs, folder
        folder.mkdir(parents=True)
        args = ["imitation.tools.scaling", "--dir", str(folder), "--config", str(config), "--num-envs", str(num_envs)]
        args += ["--clip", str(clip)] if clip is not None else []
        if ranks == 1:  # a plain process, as `imitation train` without torchrun
            cmd, env = [sys.executable, "-m", *args], None
        else:
            cmd, env = distributed.torchrun_command(ranks, args), distributed.launch_env()
        self.log_path = folder / "log.txt"
        self.proc = jobs.start(cmd, self.log_path, env=env)

    def wait_for(self, name: str, timeout: float) -> Path:
        path = self.folder / name
        t0 = time.monotonic()
        while not path.is_file():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the {self.ranks}-rank group exited (code {self.proc.returncode}) before "
                                   f"{name}; its log {self.log_path}:\n{self._tail()}")
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"the {self.ranks}-rank group did not write {name} in {timeout:.0f} s; "
                                   f"log {self.log_path}:\n{self._tail()}")
            time.sleep(_POLL_S)
        return path

    def iteration(self, r: int) -> dict:
        (self.folder / f"go_{r}").touch()
        return json.loads(self.wait_for(f"done_{r}.json", _ITERATION_TIMEOUT_S).read_text())

    def close(self) -> None:
        (self.folder / "stop").touch()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            jobs.stop(self.proc, timeout=60)  # torchrun passes SIGTERM to its ranks

    def _tail(self, n: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def measure_scaling(num_envs: int, ranks=(1, 2), repeats: int = 3, *, config: str, clip: str | None = None,
                    log=print) -> dict:
    """Interleaved PPO iterations of each rank count at `num_envs` envs in total; returns one result row:
    per rank count the medians of rollout, update and iteration time (the slowest rank's; they end every
    iteration together), iteration env-steps/s, and `speedup`: the most ranks' iteration env-steps/s over 1
    process's."""
    ranks = sorted(set(int(k) for k in ranks))
    bad = [k for k in ranks if k < 1 or num_envs % k]
    if bad:
        raise ValueError(f"{num_envs} envs do not split evenly over {bad[0]} ranks")
    groups: dict[int, _Group] = {}
    samples: dict[int, list[dict]] = {k: [] for k in ranks}
    with tempfile.TemporaryDirectory(prefix="imitation_scaling_") as tmp:
        try:
            for k in ranks:  # one group's scenes at a time: the built ones wait idle
                t0 = time.perf_counter()
                groups[k] = _Group(k, num_envs, Path(tmp) / f"ranks_{k}", config, clip)
                info = json.loads(groups[k].wait_for("ready", _BUILD_TIMEOUT_S).read_text())
                log(f"built {k} rank(s) x {num_envs // k} envs ({time.perf_counter() - t0:.0f} s, "
                    f"{info['update_threads']} update thread(s) per rank)")
            for r in range(repeats):
                for k in ranks:
                    samples[k].append(groups[k].iteration(r))
                log(f"  [{num_envs} envs] repetition {r + 1}/{repeats}: " + ", ".join(
                    f"{k} rank(s) {num_envs * s[-1]['steps_per_env'] / s[-1]['iteration_s']:,.0f} env-steps/s"
                    for k, s in samples.items()))
        finally:
            for group in groups.values():
                group.close()
    row: dict = {"num_envs": num_envs, "repeats": repeats, "by_ranks": {},
                 # the machine's load when measured (1-minute average at the end): other work skews the ratio
                 "load_average_1min": round(os.getloadavg()[0], 2), "cpu_cores": os.cpu_count()}
    for k, rows in samples.items():
        collect = statistics.median(s["collect_s"] for s in rows)
        iteration = statistics.median(s["iteration_s"] for s in rows)
        steps = num_envs * rows[0]["steps_per_env"]
        row["by_ranks"][str(k)] = {
            "ranks": k, "envs_per_rank": num_envs // k, "update_threads": rows[0]["update_threads"],
            "steps_per_env": rows[0]["steps_per_env"], "collect_s": collect, "iteration_s": iteration,
            "update_s": statistics.median(s["iteration_s"] - s["collect_s"] for s in rows),
            "rollout_steps_per_s": steps / collect, "iteration_steps_per_s": steps / iteration, "samples": rows,
        }
    if 1 in samples and len(ranks) > 1:
        base = row["by_ranks"]["1"]["iteration_steps_per_s"]
        for entry in row["by_ranks"].values():
            entry["speedup"] = entry["iteration_steps_per_s"] / base
        row["speedup"] = row["by_ranks"][str(ranks[-1])]["speedup"]
    return row


def format_scaling(section: dict) -> str:
    lines = ["one training over several ranks (PPO iterations at equal total envs; medians over repetitions)",
             f"{'envs':>5} | {'ranks':>5} | {'envs/rank':>9} | {'threads':>7} | {'collect':>8} | {'update':>7} | "
             f"{'it steps/s':>10} | {'speedup':>7}"]
    lines.append("-" * len(lines[-1]))
    for row in section["results"]:
        for e in row["by_ranks"].values():
            speedup = f"{e['speedup']:.2f}x" if "speedup" in e else "-"
            lines.append(f"{row['num_envs']:>5} | {e['ranks']:>5} | {e['envs_per_rank']:>9} | {e['update_threads']:>7} | "
                         f"{e['collect_s']:7.2f}s | {e['update_s']:6.2f}s | {e['iteration_steps_per_s']:>10,.0f} | "
                         f"{speedup:>7}")
    for row in section["results"]:
        lines.append(f"{row['num_envs']} envs: load average {row['load_average_1min']} on {row['cpu_cores']} cores "
                     f"at the end (this bench's own processes included)")
    lines.append(f"target: >= {section['target_speedup']}x for 2 ranks against 1 process (256 envs, 2 cores)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- a rank's side


def _wait(paths: list[Path]) -> Path:
    while True:
        for p in paths:
            if p.exists():
                return p
        time.sleep(_POLL_S)


def worker(folder: Path, config: str, num_envs: int, clip: str | None) -> None:
    """One rank of a group: build this rank's share of the envs, then one PPO iteration per `go_<r>`."""
    import torch

    from .. import config as config_mod
    from ..config import resolve_path
    from ..env.imitation_env import ImitationEnv
    from ..rl import distributed
    from ..sim import init_genesis
    from ..rl.timing import PPOTimer

    place = distributed.place()
    if place.distributed:
        distributed.init("cpu")
    torch.set_num_threads(1)  # as training: Genesis runs on one CPU thread
    torch.manual_seed(place.rank)
    init_genesis("cpu")
    overrides = {"env": {"num_envs": num_envs // place.world}, **({"clip": clip} if clip else {})}
    cfg = config_mod.load_config(resolve_path(config), overrides)
    env = ImitationEnv(cfg)
    timer = PPOTimer(env, cfg)
    timer.iteration()  # untimed: first-call costs
    if place.rank == 0:
        (folder / "ready").write_text(json.dumps({"update_threads": timer.runner.update_threads}))
    r = 0
    while _wait([folder / f"go_{r}", folder / "stop"]).name != "stop":
        if place.distributed:
            torch.distributed.barrier()  # start together (each saw go_<r> at its own poll)
        collect, update = timer.iteration()
        times = distributed.gather_objects((collect, collect + update))
        if place.rank == 0:
            done = {"collect_s": max(c for c, _ in times), "iteration_s": max(i for _, i in times),
                    "per_rank": [{"collect_s": c, "iteration_s": i} for c, i in times],
                    "steps_per_env": timer.steps_per_env, "update_threads": timer.runner.update_threads}
            tmp = folder / f".done_{r}.json"
            tmp.write_text(json.dumps(done))
            tmp.rename(folder / f"done_{r}.json")
        r += 1
    distributed.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="one rank of an `imitation bench --ranks` group (started by the bench)")
    p.add_argument("--dir", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--num-envs", type=int, required=True, help="envs in total over the group's ranks")
    p.add_argument("--clip", default=None)
    a = p.parse_args(argv)
    worker(Path(a.dir), a.config, a.num_envs, a.clip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
