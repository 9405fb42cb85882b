"""One live status display for a long command: the stage, its progress and an ETA.

On a terminal it is one block redrawn in place (rich); otherwise (a log file, CI) a line per stage change and a
training line at most once a minute. What the stages themselves print goes to their log files (`captured`).
"""

from __future__ import annotations

import contextlib
import datetime
import sys
import time
from pathlib import Path


def eta_text(seconds: float | None) -> str:
    return "-" if seconds is None or seconds != seconds else str(datetime.timedelta(seconds=int(max(0.0, seconds))))


class Display:
    def __init__(self, title: str, stream=None, every_s: float = 60.0):
        self.title = title
        self.stream = stream or sys.stdout
        self.live = None
        self.lines: list[str] = []      # finished stages
        self.current = ""
        self.every_s = every_s
        self._last_plain = 0.0
        self.t0 = time.time()
        if self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(console=Console(file=self.stream), refresh_per_second=2, transient=False,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start()

    # -- what the stages say

    def stage(self, name: str, text: str) -> None:
        line = f"{name}: {text}"
        if self.live is None:
            print(f"[{eta_text(time.time() - self.t0)}] {self.title} {line}", file=self.stream, flush=True)
        else:
            if self.current and self.current.split(":")[0] != name:
                self.lines.append(self.current)
            self.current = line
            self._draw()

    def detail(self, text: str) -> None:
        """A stage's latest progress line (e.g. a refinement generation)."""
        if self.live is not None:
            self.current = self.current.split(" | ")[0] + " | " + text.strip()[:100]
            self._draw()

    def board(self, header: str, rows: list[str]) -> None:
        """Several jobs at once: a header (e.g. done / total and an ETA) and a line per running job, redrawn in
        place on a terminal, else printed at most once every `every_s`."""
        if self.live is not None:
            self.current = "\n  ".join([header, *rows])
            self._draw()
        elif time.time() - self._last_plain >= self.every_s:
            self._last_plain = time.time()
            for line in (header, *rows):
                print(f"[{eta_text(time.time() - self.t0)}] {self.title} {line}", file=self.stream, flush=True)

    def log(self, text: str) -> None:
        """A line that stays (a job started or finished)."""
        if self.live is None:
            print(f"[{eta_text(time.time() - self.t0)}] {self.title} {text}", file=self.stream, flush=True)
        else:
            self.lines.append(text)
            self._draw()

    def training(self, name: str, progress: list[dict], iterations: int, rows: list[dict]) -> None:
        it = progress[-1]["iteration"] if progress else 0
        rate = None
        if len(progress) >= 2:
            a, b = progress[max(0, len(progress) - 20)], progress[-1]
            if b["iteration"] > a["iteration"]:
                rate = (b["wall_time"] - a["wall_time"]) / (b["iteration"] - a["iteration"])
        last = rows[-1] if rows else None
        text = (f"it {it}/{iterations}" + (f" ({progress[-1]['env_steps'] / 1e6:.2f}M env steps)" if progress else "")
                + (f", {rate:.2f} s/it, ETA {eta_text(rate * (iterations - it))}" if rate else "")
                + (f" | randomized success at it {last['iteration']}: {last['success_rate']:.0%}" if last else "")
                + (" (failing: " + ", ".join(f"{c} {k}" for c, k in list(last["failed"].items())[:3]) + ")"
                   if last and last.get("failed") else ""))
        if self.live is not None:
            self.current = f"{name}: {text}"
            self._draw()
        elif time.time() - self._last_plain >= self.every_s:
            self._last_plain = time.time()
            print(f"[{eta_text(time.time() - self.t0)}] {self.title} {name}: {text}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def captured(self, log_path: Path, progress: bool = False):
        """What the stage prints goes to `log_path` (appended); yields a `print`-like function writing there too,
        which (with `progress`) also shows each line as the stage's detail."""
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as f:
            def log(*parts, end="\n", **_):
                text = " ".join(str(p) for p in parts)
                f.write(text + end)
                f.flush()
                if progress and text.strip():
                    self.detail(text.strip().splitlines()[-1])

            with contextlib.redirect_stdout(f):
                yield log

    def close(self) -> None:
        if self.live is not None:
            if self.current:
                self.lines.append(self.current)
                self.current = ""
            self._draw()
            self.live.stop()
            self.live = None

    def _draw(self) -> None:
        from rich.text import Text

        body = [f"{self.title}  ({eta_text(time.time() - self.t0)} elapsed)", *("  " + ln for ln in self.lines)]
        if self.current:
            body.append("> " + self.current)
        self.live.update(Text("\n".join(body)))
