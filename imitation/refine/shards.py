"""A generation's candidates shared out over processes, each simulating its share in its own Genesis scene.

The candidates of a generation are independent open-loop replays (no env acts on another). With N processes
this one simulates the first share and N - 1 helper processes (spawned, one scene and one core each) the others.
The physics of the robust copies is drawn by the search (or here, once per call) and sent with the shares, so
every candidate is scored exactly as it would be in one scene with all of them: the search does not depend on N.
"""

from __future__ import annotations

import multiprocessing
import signal

import numpy as np

HELPER_READY_TIMEOUT_S = 1200.0   # a helper's scene build (kernel compilation the first time)


class ShardedRollouts:
    """`Rollouts` over this process's scene and the helpers' (same call and attributes)."""

    def __init__(self, local, helpers: list[Helper], num_candidates: int, share: int):
        """`local`: this process's Rollouts; `share`: the candidates each process simulates (at most as many as
        every scene holds)."""
        self.local, self.helpers, self.share = local, helpers, share
        self.knots, self.copies, self.weights, self.env = local.knots, local.copies, local.weights, local.env
        self.term_names = local.term_names
        self.num_envs = num_candidates                     # candidates per call
        if num_candidates > share * (1 + len(helpers)) or share > local.num_envs:
            raise ValueError(f"{1 + len(helpers)} processes of {share} candidates cannot hold {num_candidates}")

    @property
    def pool_size(self) -> int:
        return self.local.pool_size          # every scene holds `share` candidates

    def draw_physics(self, rng):
        return self.local.draw_physics(rng)

    def prepare(self, params: np.ndarray, first_frame: int, draws: list) -> None:
        """Every process simulates the shared start states for its own scene (see Rollouts.prepare)."""
        for helper in self.helpers:
            helper.conn.send(("prepare", (params, first_frame, draws)))
        self.local.prepare(params, first_frame, draws)
        for helper in self.helpers:
            helper.result()

    def __call__(self, params: np.ndarray, last_frame: int, rng=None, physics=None,
                 prefix: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        local = self.local
        if physics is None and local.env.dr_on:
            physics = local.draw_physics(np.random if rng is None else rng)
        shares = [params[i:i + self.share] for i in range(0, len(params), self.share)]
        for helper, share in zip(self.helpers, shares[1:]):
            helper.conn.send(("score", (share, last_frame, physics, prefix)))
        parts = [(*local(shares[0], last_frame, physics=physics, prefix=prefix), local.copy_totals)]
        parts += [helper.result() for helper in self.helpers[:len(shares) - 1]]
        self.copy_totals = np.concatenate([p[2] for p in parts])
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class Helper:
    """One helper process and its end of the pipe."""

    def __init__(self, build, spec: dict):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, build, spec), daemon=True)
        self.proc.start()
        child.close()

    def result(self, timeout: float | None = None):
        if timeout is not None and not self.conn.poll(timeout):
            raise RuntimeError(f"a refinement helper process sent nothing in {timeout:.0f} s")
        try:
            kind, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"a refinement helper process exited (code {self.proc.exitcode})") from None
        if kind == "error":
            raise RuntimeError(f"a refinement helper process failed: {value}")
        return value

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=30)


def _serve(conn, build, spec: dict) -> None:
    """A helper: build, say ready, then prepare start states and score shares until told to stop (None) or the
    parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is for the parent, which stops after a generation
    try:
        rollouts, serving = build(**spec)
        with serving:
            conn.send(("ready", None))
            while True:
                try:
                    msg = conn.recv()
                except EOFError:
                    return
                if msg is None:
                    return
                kind, args = msg
                if kind == "prepare":
                    rollouts.prepare(*args)
                    conn.send(("ok", None))
                else:
                    share, last_frame, physics, prefix = args
                    terms, total = rollouts(share, last_frame, physics=physics, prefix=prefix)
                    conn.send(("ok", (terms, total, rollouts.copy_totals)))
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
        try:
            conn.send(("error", f"{type(e).__name__}: {e}"))
        except (BrokenPipeError, OSError):
            pass
