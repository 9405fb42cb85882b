"""Worker processes for whole commands (imitation.tools.jobs) and the live display of several at once."""

from __future__ import annotations

import io
import sys

from imitation.tools.display import Display
from imitation.tools.jobs import Job, last_line, run_jobs


def _job(tmp_path, name: str, code: int, seconds: float) -> Job:
    script = (f"import time; print('{name} step 1', flush=True); time.sleep({seconds}); "
              f"print('{name} step 2\\n\\n', flush=True); raise SystemExit({code})")
    return Job(name, [sys.executable, "-c", script], tmp_path / f"{name}.log")


def test_jobs_run_a_few_at_a_time_and_report_what_each_is_doing(tmp_path):
    jobs = [_job(tmp_path, "a", 0, 0.6), _job(tmp_path, "b", 3, 0.6), _job(tmp_path, "c", 0, 0.1)]
    seen, order = [], []
    codes = run_jobs(jobs, 2, poll_s=0.05, started=lambda j: order.append(("start", j.name)),
                     finished=lambda j, rc, sec: order.append(("end", j.name)),
                     tick=lambda running: seen.append([j.name for j, _ in running]))
    assert codes == {"a": 0, "b": 3, "c": 0}
    assert max(len(r) for r in seen) == 2                       # never more than two at once
    assert order.index(("start", "c")) > min(order.index(("end", "a")), order.index(("end", "b")))
    assert ["a", "b"] in seen and seen[-1] == []
    assert last_line(tmp_path / "b.log") == "b step 2"          # the last non-empty line
    assert last_line(tmp_path / "missing.log") == ""


def test_the_board_prints_its_lines_once_per_interval_off_a_terminal():
    out = io.StringIO()
    d = Display("main job", stream=out, every_s=3600.0)
    d.log("jump: started")
    d.board("0/2 skills done, ETA -", ["jump (3 s): evaluating"])
    d.board("0/2 skills done, ETA -", ["jump (4 s): rendering"])     # within the interval: not printed
    d.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("main job jump: started") and lines[2].endswith("main job jump (3 s): evaluating")


def test_the_training_line_names_what_the_last_evaluation_failed_on():
    out = io.StringIO()
    d = Display("learn", stream=out, every_s=0.0)
    progress = [{"iteration": 50, "env_steps": 307200, "wall_time": 40.0},
                {"iteration": 100, "env_steps": 614400, "wall_time": 80.0}]
    rows = [{"iteration": 51, "success_rate": 0.59, "failed": {"feet": 33, "path": 8}}]
    d.training("train_s1", progress, 489, rows)
    line = out.getvalue().strip()
    assert "it 100/489 (0.61M env steps), 0.80 s/it, ETA 0:05:11" in line
    assert line.endswith("randomized success at it 51: 59% (failing: feet 33, path 8)")
