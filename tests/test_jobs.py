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
