"""The sampling search of the refinement: CMA-ES (pycma) over the PD-target offsets of one window of knots at a
time, every generation's candidates simulated side by side as the envs of one Genesis scene.

Each window starts from the best offsets found so far (the incumbent is injected as a candidate, so a window
never ends worse than it began), its candidates differ only in the window's knots, and they are scored from
t = 0 up to the window's horizon: every generation's candidates continue from states simulated once up to the
frame where the window's knots begin to act (`Rollouts.prepare`), which spares the steps they would all take
alike. After the windows, an optional polish searches all knots together on the whole clip. pycma's random
state is saved with every checkpoint and the robust copies' physics is drawn from a stream of its own per stage
(`physics_draws`), so a resumed search continues exactly where it stopped and a search is deterministic for a
given seed.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from retarget.files import atomic_path

from ..env.rollout import rollout
from .cost import Cost

FAULT_COST = 1e9   # what CMA-ES is told for a candidate whose physics failed (pycma wants finite values)


class RefineStopped(Exception):
    """Ctrl-C or SIGTERM: the search stopped after a generation and saved its checkpoint."""


@dataclass
class SearchState:
    """Everything a resumed search needs (pickled into the checkpoint)."""

    best: np.ndarray                    # the incumbent parameter vector
    stage: int = 0                      # index into the stage list (windows, then the polish)
    generation: int = 0                 # generations done in this stage
    es: object = None                   # the stage's pycma CMAEvolutionStrategy
    stage_best_cost: float = np.inf
    candidates: int = 0
    faulted: int = 0
    elapsed_s: float = 0.0
    key: dict = field(default_factory=dict)   # source and settings the checkpoint belongs to
    np_random: tuple | None = None
    best_terms: np.ndarray | None = None      # weighted cost terms of the incumbent in this stage
    round: int = 0                            # 0: the first search; n: the n-th retry (see retry_stages)
    plan: list | None = None                  # the stages of a retry (None: `stages` of the settings)


class Rollouts:
    """Simulates a batch of parameter vectors and scores them, each on `copies` envs: copy 0 with the nominal
    robot, the others with friction, base mass, kp / kd and action latency drawn from `ranges` (the domain
    randomization the policy will train with), drawn anew every call and the same for every candidate of the
    call, so candidates are compared on equal terms. A candidate's cost is the mean over its copies.

    The env must be in playback mode with the refinement's residual base and an action scale of 1 (the action
    is the offset in rad); with copies > 1 it must have been built with domain randomization."""

    def __init__(self, env, knots, cost: Cost, copies: int = 1, ranges: dict | None = None):
        self.env, self.knots, self.cost, self.copies = env, knots, cost, max(1, int(copies))
        if env.num_envs < self.copies:
            raise ValueError(f"{env.num_envs} envs cannot hold {self.copies} copies of a candidate")
        if self.copies > 1 and not env.dr_on:
            raise ValueError("robust copies need an env built with domain randomization")
        self.ranges = ranges
        self.num_envs = env.num_envs // self.copies         # candidates per call
        self.weights = cost.weights.cpu().numpy()
        self.term_names = cost.names

    def draw_physics(self, rng) -> tuple[np.ndarray, np.ndarray]:
        """Physics of each copy: (copies, 4) friction ratio, added base mass, kp and kd scales, and (copies,)
        action latency; copy 0 is the nominal robot."""
        r, c = self.ranges, self.copies
        draw = np.zeros((c, 4))
        draw[0] = [1.0, 0.0, 1.0, 1.0]
        delayed = np.zeros(c, dtype=bool)
        if c > 1:
            for i, key in enumerate(("friction", "added_base_mass", "kp_scale", "kd_scale")):
                draw[1:, i] = rng.uniform(r[key][0], r[key][1], size=c - 1)
            delayed[1:] = rng.uniform(size=c - 1) < r["action_latency_probability"]
        return draw, delayed

    def _set_physics(self, draw: np.ndarray, delayed: np.ndarray) -> None:
        """Every env's physics from its copy's (envs are candidate-major: env = candidate * copies + copy)."""
        reps = self.env.num_envs // self.copies + 1
        self._apply_physics(np.tile(draw, (reps, 1)), np.tile(delayed, reps))

    def _apply_physics(self, per_env: np.ndarray, delayed: np.ndarray) -> None:
        """Env i's friction ratio, added mass, kp and kd scales from row i of `per_env` (>= num_envs rows, 4),
        its action latency from `delayed`."""
        env = self.env
        per_env = torch.as_tensor(per_env[:env.num_envs], dtype=torch.float32, device=env.device)
        idx = torch.arange(env.num_envs, device=env.device)
        env.set_physics(idx, *(per_env[:, i:i + 1] for i in range(4)))
        env.delayed.copy_(torch.as_tensor(delayed[:env.num_envs], device=env.device))
        env.any_delay = bool(delayed[:env.num_envs].any())

    @property
    def pool_size(self) -> int:
        """How many generations' physics draws one `prepare` can hold (envs: the nominal robot and every draw's
        randomized copies)."""
        return (self.env.num_envs - 1) // (self.copies - 1) if self.copies > 1 and self.env.dr_on else 1 << 30

    def _prefix_row(self, draw_index: int) -> torch.Tensor:
        """(num_envs,) the prepared state each env continues from: copy 0 the nominal robot's (row 0), copy i of
        a candidate row 1 + draw_index * (copies - 1) + i - 1."""
        copy = torch.arange(self.env.num_envs, device=self.env.device) % self.copies
        return torch.where(copy == 0, 0, 1 + draw_index * (self.copies - 1) + copy - 1)

    def prepare(self, params: np.ndarray, first_frame: int, draws: list) -> None:
        """Simulate `params` (size,) up to `first_frame` on the nominal robot and on every randomized copy of each
        physics draw of `draws` (from draw_physics; None entries without randomization) and keep the states:
        a call with prefix=i then starts its envs there, with draws[i]'s physics, instead of at t = 0. Candidates
        that differ from `params` only in knots that act from `first_frame` on are scored exactly as from t = 0:
        a window's candidates share everything before its first knot's influence begins."""
        env, c = self.env, self.copies
        if len(draws) > self.pool_size:
            raise ValueError(f"{len(draws)} physics draws do not fit the {env.num_envs} envs")
        if env.dr_on:
            per_env, delayed = np.tile([1.0, 0.0, 1.0, 1.0], (env.num_envs, 1)), np.zeros(env.num_envs, dtype=bool)
            for j, (draw, late) in enumerate(draws):
                rows = slice(1 + j * (c - 1), 1 + (j + 1) * (c - 1))
                per_env[rows], delayed[rows] = draw[1:], late[1:]
            self._apply_physics(per_env, delayed)
        self._roll(self.knots.offsets(np.asarray(params)[None])[0], 0, first_frame)             # (F, 12)
        self._prefix = (first_frame, env.snapshot(), self.cost.snapshot())

    def _roll(self, offsets: torch.Tensor, first: int, last: int, start: tuple | None = None) -> None:
        """Step every env open loop from frame `first` to `last`, step k taking row k - 1 of the frame-major
        `offsets` ((F, 12) or (F, n, 12)), and score each step: from the reset at t = 0, or from `start` =
        (env snapshot, cost snapshot, rows) taken at frame `first`."""
        env = self.env

        def score(k, dones):
            if k > 0:
                self.cost.step(env, first + k, dones)
            elif start is None:
                self.cost.reset(env.root_quat)
            else:
                self.cost.restore(start[1], start[2])

        rollout(env, last - first, offsets[first:], score, redraw_physics=False,
                restore=None if start is None else (start[0], start[2]))

    def __call__(self, params: np.ndarray, last_frame: int, rng=None, physics=None,
                 prefix: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(terms (P, len(cost.names)) unweighted, total (P,), +inf for a physics fault) of `params` (P, size),
        P <= num_envs, scored on frames 1..last_frame; the copies' physics `physics` (from `draw_physics`), else
        drawn from `rng` (default: numpy's global random state). `prefix` i: start from the states `prepare`
        kept for its draw i (then `physics` must be that draw). The per-copy totals are kept in `copy_totals`
        (P, copies)."""
        env, c = self.env, self.copies
        p = len(params)
        full = np.concatenate([params, np.repeat(params[:1], self.num_envs - p, axis=0)])  # unused envs: a filler
        offsets = self.knots.offsets(np.repeat(full, c, axis=0))                         # (n, F, 12)
        if env.num_envs > len(offsets):
            offsets = torch.cat([offsets, offsets[:1].expand(env.num_envs - len(offsets), -1, -1)])
        if env.dr_on:  # an env built with randomization: set every copy's physics (copy 0: nominal)
            self._set_physics(*(physics or self.draw_physics(np.random if rng is None else rng)))
        first, start = 0, None
        if prefix is not None:
            first, snapshot, cost_snapshot = self._prefix
            start = (snapshot, cost_snapshot, self._prefix_row(prefix))
        # Open-loop: step k takes every env's offsets of frame k - 1; the physics drawn above is kept.
        self._roll(offsets.transpose(0, 1), first, last_frame, start)
        terms, total = self.cost.result(at_end=last_frame == env.ref.last)
        m = self.num_envs * c
        terms = terms[:m].reshape(self.num_envs, c, -1).mean(1)[:p]
        self.copy_totals = total[:m].reshape(self.num_envs, c)[:p].cpu().numpy().astype(float)
        total = total[:m].reshape(self.num_envs, c).mean(1)[:p]     # a faulted copy makes the mean +inf
        return terms.cpu().numpy(), total.cpu().numpy().astype(float)


def stages(knots, settings: dict) -> list[dict]:
    """The windows in search order, then the polish: knot range, scored frames, generations, step size."""
    out = []
    for w in knots.windows(settings["window_knots"], settings["window_stride"]):
        out.append({"knots": w, "last_frame": knots.last_frame(w, knots.dt, settings["horizon_s"], knots.num_frames),
                    "generations": settings["generations"], "sigma": settings["sigma0"]})
    if settings["polish_generations"]:
        out.append({"knots": (0, knots.num_knots), "last_frame": knots.num_frames - 1,
                    "generations": settings["polish_generations"], "sigma": settings["sigma0"] / 3})
    return out


def retry_stages(knots, settings: dict, times: list[float]) -> list[dict]:
    """The stages of a retry: the windows whose scored span holds one of `times` (s) where the result fails, and
    the window before each (the push that leads there), all windows when no time is known; each restarted at the
    full step size from the best so far, with retry_generations."""
    base = stages(knots, {**settings, "polish_generations": 0})
    keep = set()
    for i, st in enumerate(base):
        start, end = knots.times[st["knots"][0]], st["last_frame"] * knots.dt
        if any(start <= t <= end for t in times):
            keep |= {max(0, i - 1), i}
    chosen = [base[i] for i in sorted(keep)] or base
    return [{**st, "generations": settings["retry_generations"]} for st in chosen]


def search(rollouts: Rollouts, settings: dict, seed: int, state: SearchState, checkpoint, should_stop,
           progress=print) -> SearchState:
    """Run (or continue) the stages; returns the final state. `should_stop()` is polled after each generation:
    when true the checkpoint is written and RefineStopped raised."""
    import cma

    knots, n = rollouts.knots, rollouts.num_envs
    plan = state.plan or stages(knots, settings)
    # A window's candidates differ only from its first influenced frame on: they start from states simulated
    # once up to there (Rollouts.prepare) instead of at t = 0.
    steps = lambda s: s["last_frame"] - knots.first_frame(s["knots"])  # noqa: E731
    total_work = sum(s["generations"] * steps(s) for s in plan)
    t_start = time.time() - state.elapsed_s
    t_call = time.time()
    work_done = lambda: sum(s["generations"] * steps(s) for s in plan[:state.stage]) + \
        state.generation * steps(plan[min(state.stage, len(plan) - 1)])  # noqa: E731
    work_at_call = work_done()
    prepared = None
    while state.stage < len(plan):
        st = plan[state.stage]
        sl = knots.value_slice(st["knots"])
        first = knots.first_frame(st["knots"])
        draws = physics_draws(rollouts, seed, state.round, state.stage, st["generations"])
        if state.es is None:
            opts = {"popsize": n, "bounds": [-settings["bound"], settings["bound"]],
                    "seed": seed * 1000 + 100 * state.round + state.stage + 1,
                    "CMA_stds": knots.stds[sl], "verbose": -9}
            state.es = cma.CMAEvolutionStrategy(state.best[sl].copy(), st["sigma"], opts)
            state.generation, state.stage_best_cost = 0, np.inf
        elif state.np_random is not None:  # resumed in the middle of a stage
            _sample_from_global_random(state.es)
            np.random.set_state(state.np_random)
        es = state.es
        while state.generation < st["generations"]:
            t0 = time.time()
            g, pool = state.generation, rollouts.pool_size
            block = g - g % pool
            if first > 0 and prepared != (state.round, state.stage, block):
                rollouts.prepare(state.best, first, draws[block:block + pool])
                prepared = (state.round, state.stage, block)
            # The incumbent runs as candidate 0 of every generation: it is replaced only by a candidate that beats
            # it on the same draws of randomized physics.
            es.inject([state.best[sl].copy()], force=True)
            x = np.asarray(es.ask())
            params = np.tile(state.best, (n, 1))
            params[:, sl] = x
            params[0] = state.best
            terms, total = rollouts(params, st["last_frame"], physics=draws[g],
                                    prefix=g - block if first > 0 else None)
            faulted = ~np.isfinite(total)
            es.tell(list(x), np.where(faulted, FAULT_COST, total).tolist())
            state.candidates += n
            state.faulted += int(faulted.sum())
            i = int(np.argmin(np.where(faulted, np.inf, total)))
            state.stage_best_cost = float(total[i])
            if i != 0 and total[i] < total[0]:
                state.best = params[i].copy()
            state.best_terms = terms[i] * rollouts.weights
            state.generation += 1
            state.elapsed_s = time.time() - t_start
            state.np_random = np.random.get_state()
            done_work = work_done()
            rate = (done_work - work_at_call) / max(time.time() - t_call, 1e-9)   # this search's own pace
            eta = (total_work - done_work) / max(rate, 1e-9)
            top = sorted(zip(rollouts.term_names, state.best_terms), key=lambda kv: -kv[1])[:4]
            k0, k1 = st["knots"]
            polish = state.plan is None and settings["polish_generations"]
            where = "polish" if state.stage == len(plan) - 1 and polish else \
                f"{'retry ' if state.round else ''}window {state.stage + 1}/{len(plan) - bool(polish)}"
            progress(f"{where} (knots {knots.times[k0]:.1f}-{knots.times[k1 - 1]:.1f} s, scored to "
                     f"{st['last_frame'] * knots.dt:.2f} s) gen {state.generation}/{st['generations']}: "
                     f"best {state.stage_best_cost:.4f} (" + ", ".join(f"{k} {v:.3f}" for k, v in top) + ") "
                     f"{n / (time.time() - t0):.0f} candidates/s, ETA {eta:.0f} s")
            if should_stop():
                save_checkpoint(checkpoint, state)
                raise RefineStopped(str(checkpoint))
            if state.generation % 5 == 0:
                save_checkpoint(checkpoint, state)
        state.stage += 1
        state.es = None
    save_checkpoint(checkpoint, state)
    return state


def physics_draws(rollouts, seed: int, round_: int, stage: int, count: int) -> list:
    """The robust copies' physics of the first `count` generations of a stage (None without randomization): a
    random stream of their own, seeded by the search's seed, round and stage, so the draws are the same however
    many are prepared at once, after a resume and with any number of processes."""
    if not rollouts.env.dr_on:
        return [None] * count
    rng = np.random.RandomState([seed, round_, stage, 1])
    return [rollouts.draw_physics(rng) for _ in range(count)]


def _sample_from_global_random(es) -> None:
    """pycma samples with numpy's global random state (its `seed` option seeds it). An unpickled strategy samples
    from a copy of the state it was saved with instead: point it back, so that a resumed search draws what the
    uninterrupted one would."""
    es.opts["randn"] = np.random.randn
    if hasattr(es, "sm") and hasattr(es.sm, "randn"):
        es.sm.randn = np.random.randn


def save_checkpoint(path, state: SearchState) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(state, f)


def load_checkpoint(path) -> SearchState:
    with open(path, "rb") as f:
        state = pickle.load(f)
    if not isinstance(state, SearchState):
        raise ValueError("not a refinement checkpoint")
    return state
