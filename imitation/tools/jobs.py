"""The one way tools start worker processes for whole commands (a training, a skill's evaluation, a learn run, a
bench's rank group): `start` a child process with its output in a log file, `stop` it the way Ctrl-C does, and
`run_jobs` a list of them a few at a time.

(Two kinds of workers are not commands and keep their own mechanism: `imitation sweep --jobs` hands checkpoints to
a multiprocessing pool whose processes keep their scene between checkpoints, and the refinement's helpers hold a
scene each and answer a generation's candidates over a pipe.)
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class Job:
    name: str
    cmd: list[str]
    log: Path
    cwd: Path | None = None


def start(cmd: list[str], log: Path, *, append: bool = False, cwd: Path | None = None, env: dict | None = None,
          own_session: bool = False) -> subprocess.Popen:
    """`cmd` as a child process writing stdout and stderr to `log` (unbuffered Python output). `own_session`: the
    child does not get the terminal's Ctrl-C (the parent stops it with `stop`, after its own clean-up)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a" if append else "w") as out:  # the child holds its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                env={**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"},
                                start_new_session=own_session)


def stop(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Stop a child the way Ctrl-C does (SIGTERM: trainings save a checkpoint and exit) and wait for it; kill it
    after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_jobs(jobs: list[Job], parallel: int, *, started: Callable[[Job], None] | None = None,
             finished: Callable[[Job, int, float], None] | None = None, poll_s: float = 0.5,
             tick: Callable[[list[tuple[Job, float]]], None] | None = None) -> dict[str, int]:
    """Run every job, `parallel` at a time, in order; returns {name: exit code}. `started(job)` and
    `finished(job, exit code, seconds)` report progress (an exception raised by `finished` stops the rest);
    `tick` gets the running jobs with their seconds so far after every poll. On any exception, Ctrl-C included, the
    running children are terminated (they save and exit the way Ctrl-C does)."""
    queue, running, codes = list(jobs), [], {}
    try:
        while queue or running:
            while queue and len(running) < max(1, parallel):
                job = queue.pop(0)
                running.append((job, start(job.cmd, job.log, cwd=job.cwd), time.time()))
                if started:
                    started(job)
            time.sleep(poll_s)
            for item in list(running):
                job, proc, t0 = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                codes[job.name] = proc.returncode
                if finished:
                    finished(job, proc.returncode, time.time() - t0)
            if tick:
                tick([(job, time.time() - t0) for job, _, t0 in running])
    finally:
        for _, proc, _ in running:
            if proc.poll() is None:
                proc.terminate()
        for _, proc, _ in running:
            stop(proc)
    return codes


def last_line(path: Path, max_bytes: int = 4096) -> str:
    """The last non-empty line of a job's log (what it is doing now), or ""."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - max_bytes))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").replace("\r", "\n").splitlines()]
    except OSError:
        return ""
    return next((ln for ln in reversed(lines) if ln), "")
