"""The one way tools start worker processes for whole commands (a training, a skill's evaluation, a learn run):
each job a child process with its output in a log file, a few at a time.

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


def run_jobs(jobs: list[Job], parallel: int, *, started: Callable[[Job], None] | None = None,
             finished: Callable[[Job, int, float], None] | None = None, poll_s: float = 0.5,
             tick: Callable[[list[tuple[Job, float]]], None] | None = None) -> dict[str, int]:
    """Run every job, `parallel` at a time, in order; returns {name: exit code}. `started(job)` and
    `finished(job, exit code, seconds)` report progress (an exception raised by `finished` stops the rest);
    `tick` gets the running jobs with their seconds so far after every poll. On any exception, Ctrl-C included, the
    running children are terminated (they save and exit the way Ctrl-C does)."""
    queue, running, codes = list(jobs), [], {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        while queue or running:
            while queue and len(running) < max(1, parallel):
                job = queue.pop(0)
                job.log.parent.mkdir(parents=True, exist_ok=True)
                log = open(job.log, "w")
                proc = subprocess.Popen(job.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=job.cwd, env=env)
                running.append((job, proc, log, time.time()))
                if started:
                    started(job)
            time.sleep(poll_s)
            for item in list(running):
                job, proc, log, t0 = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                log.close()
                codes[job.name] = proc.returncode
                if finished:
                    finished(job, proc.returncode, time.time() - t0)
            if tick:
                tick([(job, time.time() - t0) for job, _, _, t0 in running])
    finally:
        for _, proc, log, _ in running:
            if proc.poll() is None:
                proc.terminate()
        for _, proc, log, _ in running:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
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
