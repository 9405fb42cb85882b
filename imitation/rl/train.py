"""PPO training with rsl-rl-lib 5.x's OnPolicyRunner.

A run lives in `runs/<experiment>/<timestamp>[_<run name>]/` (its files: imitation.runs): the resolved config,
checkpoints named by completed iterations, TensorBoard events, one line of metrics per iteration and the exports.
Ctrl-C or SIGTERM stops at the end of the current iteration and saves a checkpoint (a second
Ctrl-C aborts at once); `resume=` continues a run from its last checkpoint with its own config and
optimizer state.

Several processes train one policy when launched with `torchrun --nproc_per_node=N -m imitation.cli train`: on
CPUs (gloo) or one GPU per rank (cuda:LOCAL_RANK, NCCL). The config's `env.num_envs` is the total over all
ranks: each rank builds its own scene with num_envs / N envs and collects its own rollouts, seeds are seed + rank,
and rsl-rl's PPO averages gradients and the adaptive learning rate over the ranks (imitation.rl.distributed). Rank 0
writes the run, which is like any other. A rank that dies ends every rank's next collective; rank 0 then saves
the last finished iteration.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import io
import json
import math
import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from rsl_rl.runners import OnPolicyRunner

from retarget.clip import sha256_of
from retarget.errors import InputError
from retarget.files import atomic_path, write_text_atomic
from retarget.robot import PROJECT_ROOT

from .. import config as config_mod
from .. import runs
from ..config import resolve_path
from ..sim import cpu_cores, init_genesis
from . import distributed


class StopTraining(Exception):
    """Raised at an iteration boundary after Ctrl-C / SIGTERM."""


# ---------------------------------------------------------------------------- devices and threads


def resolve_device(device: str) -> tuple[str, int, int]:
    """(torch device, rank, world size). Under torchrun every rank runs on the CPU, or each on cuda:LOCAL_RANK."""
    p = distributed.place()
    if device == "cpu":
        return "cpu", p.rank, p.world
    if not device.startswith("cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}")
    if p.distributed:
        device = f"cuda:{p.local_rank}"
    elif device == "cuda":
        device = "cuda:0"
    torch.cuda.set_device(torch.device(device))
    return device, p.rank, p.world


def default_update_threads() -> int:
    """The cores of this machine shared out among the ranks on it: the update of each rank runs while the others
    update too (they meet at every mini-batch)."""
    return max(1, cpu_cores() // distributed.place().local_world)


# ---------------------------------------------------------------------------- the runner


class Runner(OnPolicyRunner):
    """OnPolicyRunner with atomic checkpoints named by completed iterations, a one-line progress
    report and metrics file, and a clean stop at iteration boundaries."""

    def __init__(self, env, train_cfg: dict, exp_cfg: dict, log_dir: Path | None, device: str, verbose: bool = False,
                 update_threads: int | None = None):
        super().__init__(env, train_cfg, log_dir=str(log_dir) if log_dir else None, device=device)
        self.exp_cfg = exp_cfg
        self.run_dir = log_dir
        self.verbose = verbose
        self.update_threads = default_update_threads() if update_threads is None else max(1, int(update_threads))
        self.completed = 0                 # iterations completed (= the next iteration's index)
        self.total = 0
        self.stop_requested = False
        self._updating = False
        self._offset = (0, 0.0)            # env steps and seconds of a resumed run's earlier sessions
        self._finished = None              # rank 0 of several: (iteration, state) at the end of the last iteration
        opt = self.alg.optimizer
        if type(opt) is torch.optim.Adam and not opt.defaults.get("fused"):
            # The fused Adam (CPU and CUDA): one kernel for all parameters instead of a loop of small ops per
            # tensor. Same algorithm and state, so checkpoints load either way.
            impl = ("fused", "foreach", "capturable", "differentiable")
            groups = [{k: v for k, v in g.items() if k not in impl} for g in opt.param_groups]
            self.alg.optimizer = torch.optim.Adam(groups, fused=True)
        orig_log, orig_update = self.logger.log, self.alg.update

        def log(it, start_it, total_it, collect_time, learn_time, **kw):
            self.completed, self.total = it + 1, total_it
            if self.is_distributed and self.run_dir is not None:
                # What rank 0 saves if another rank dies during the next iteration (its state is then half-updated).
                self._finished = (self.completed, copy.deepcopy(self.alg.save()))
            extras = _episode_means(self.logger.ep_extras)
            quiet = contextlib.nullcontext() if self.verbose else contextlib.redirect_stdout(io.StringIO())
            with quiet:  # rsl-rl's own multi-line report: only with verbose
                orig_log(it=it, start_it=start_it, total_it=total_it, collect_time=collect_time,
                         learn_time=learn_time, **kw)
            if self.logger.writer is not None:
                self._report(it, start_it, total_it, collect_time, learn_time, extras, kw.get("action_std"))
            if self._should_stop():
                raise StopTraining

        def update():
            self._updating = True
            threads = torch.get_num_threads()
            if self.device == "cpu":  # the env steps on one thread; the update may use more
                torch.set_num_threads(self.update_threads)
            try:
                return orig_update()
            finally:
                torch.set_num_threads(threads)
                self._updating = False

        self.logger.log, self.alg.update = log, update

    # -- several ranks

    def _configure_multi_gpu(self) -> None:
        """rsl-rl's set-up of several ranks, on CPUs (gloo) as well as on GPUs (NCCL, cuda:LOCAL_RANK).

        Sets what rsl-rl reads (is_distributed, gpu_world_size, gpu_global_rank, gpu_local_rank,
        cfg["multi_gpu"]); the process group is train()'s (distributed.init), joined here if not yet."""
        p = distributed.place()
        self.is_distributed = p.distributed
        self.gpu_world_size, self.gpu_global_rank, self.gpu_local_rank = p.world, p.rank, p.local_rank
        if not p.distributed:
            self.cfg["multi_gpu"] = None
            return
        if self.device != "cpu" and self.device != f"cuda:{p.local_rank}":
            raise ValueError(f"device {self.device!r} of rank {p.rank}: expected 'cpu' or 'cuda:{p.local_rank}' "
                             f"(one GPU per rank, by LOCAL_RANK)")
        distributed.init(self.device)
        self.cfg["multi_gpu"] = {"global_rank": p.rank, "local_rank": p.local_rank, "world_size": p.world}

    def weights_sha256(self) -> str:
        """Fingerprint of the actor's and the critic's parameters and buffers (equal on every rank after updates)."""
        h = hashlib.sha256()
        for model in (self.alg.actor, self.alg.critic):
            for key, value in model.state_dict().items():
                h.update(key.encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def save_last_finished(self) -> Path | None:
        """After another rank died: write the state at the end of the last finished iteration (rank 0), without
        another collective. Nothing when that checkpoint exists already or no iteration finished."""
        if self._finished is None or self.run_dir is None:
            return None
        n, state = self._finished
        final = runs.checkpoint_path(self.run_dir, n)
        if not final.is_file():
            state = {**state, "iter": n, "infos": {"config": self.exp_cfg}}
            with atomic_path(final) as tmp:
                torch.save(state, tmp)
        return final

    # -- checkpoints

    def save(self, path: str | None = None, infos: dict | None = None) -> Path | None:
        """Write model_<completed>.pt atomically in the run dir (the given file name is ignored)."""
        if self.run_dir is None or self.logger.disable_logs:
            return None
        final = runs.checkpoint_path(self.run_dir, self.completed)
        saved = self.alg.save()
        saved["iter"] = self.completed     # rsl-rl's load() resumes learn() at this iteration
        saved["infos"] = {"config": self.exp_cfg, **(infos or {})}
        with atomic_path(final) as tmp:
            torch.save(saved, tmp)
        return final

    def load(self, path, load_cfg=None, strict=True, map_location=None):
        """rsl-rl's load, reading the checkpoint as tensors and plain data only (imitation.runs.load_checkpoint)."""
        loaded = runs.load_checkpoint(path, map_location or self.device)
        if self.alg.load(loaded, load_cfg, strict):
            self.current_learning_iteration = loaded["iter"]
        self.completed = self.current_learning_iteration
        # Continue the run's step and time counts from its progress file.
        if self.run_dir is not None:
            done = [r for r in runs.read_progress(self.run_dir) if r["iteration"] <= self.completed]
            if done:
                self._offset = (done[-1]["env_steps"], done[-1]["wall_time"])
        return loaded["infos"]

    def export(self) -> None:
        if self.run_dir is None or self.logger.disable_logs:
            return
        out = runs.export_dir(self.run_dir)
        self.export_policy_to_jit(str(out), runs.POLICY)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.export_policy_to_onnx(str(out), runs.POLICY_ONNX)
        except Exception as e:  # onnx / onnxscript missing or an exporter problem: keep the TorchScript
            print(f"ONNX export failed ({type(e).__name__}: {e}); TorchScript policy written")

    # -- stopping

    def request_stop(self) -> None:
        self.stop_requested = True

    def _should_stop(self) -> bool:
        stop = self.stop_requested
        if self.is_distributed:  # every rank must leave at the same iteration (a SIGTERM may reach only one)
            flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    # -- reporting

    def _report(self, it, start_it, total_it, collect_time, learn_time, extras, action_std) -> None:
        lg = self.logger
        steps = self.cfg["num_steps_per_env"] * self.env.num_envs * self.gpu_world_size
        it_time = collect_time + learn_time
        done = it + 1 - start_it
        eta = lg.tot_time / done * (total_it - it - 1)
        mean_rew = float(np.mean(lg.rewbuffer)) if lg.rewbuffer else float("nan")
        mean_len = float(np.mean(lg.lenbuffer)) if lg.lenbuffer else float("nan")
        print(
            f"it {it + 1:>5}/{total_it} | {steps / it_time:>7,.0f} env-steps/s | {it_time:5.2f} s/it "
            f"(collect {collect_time:.2f}) | reward {mean_rew:8.3f} | ep len {mean_len:6.1f} | "
            f"ETA {datetime.timedelta(seconds=int(eta))}",
            flush=True,
        )
        env_steps = self._offset[0] + lg.tot_timesteps
        # Learning curves of the flip (episodes from t = 0) also against env steps, the x axis that
        # compares runs of different sizes.
        for key, value in extras.items():
            if key.startswith("Success/") and math.isfinite(value):
                lg.writer.add_scalar("SuccessByEnvSteps/" + key[8:], value, env_steps)
        extras = {k: (v if math.isfinite(v) else None) for k, v in extras.items()}  # NaN is not JSON
        record = {
            "iteration": it + 1, "env_steps": env_steps,
            "wall_time": round(self._offset[1] + lg.tot_time, 3),
            "steps_per_s": steps / it_time, "collect_s": collect_time, "learn_s": learn_time,
            "mean_reward": mean_rew, "mean_episode_length": mean_len,
            "action_std": float(action_std.detach().mean()) if action_std is not None else None,
            "learning_rate": self.alg.learning_rate, "ranks": self.gpu_world_size, "episode": extras,
        }
        runs.append_progress(self.run_dir, record)


def _episode_means(ep_extras: list[dict]) -> dict[str, float]:
    keys = dict.fromkeys(k for d in ep_extras for k in d)
    out = {}
    for k in keys:
        vals = [torch.as_tensor(d[k], dtype=torch.float32).reshape(-1).cpu() for d in ep_extras if k in d]
        out[k] = float(torch.cat(vals).mean())
    return out


# ---------------------------------------------------------------------------- training


def zero_output(actor: torch.nn.Module) -> None:
    """Zero the weights and bias of the actor's last linear layer (its mean action is then 0 everywhere)."""
    last = [m for m in actor.modules() if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)


def rsl_rl_config(cfg: dict) -> dict:
    """The OnPolicyRunner train_cfg from the config's `ppo` section."""
    ppo = {k: v for k, v in cfg["ppo"].items() if k != "max_iterations"}
    ppo["actor"] = config_mod.actor_model_kwargs(cfg)
    ppo["run_name"] = cfg.get("run_name")
    return json.loads(json.dumps(ppo))  # a deep copy: rsl-rl edits its config in place


def train(
    config_path: str | Path | None,
    clip: str | Path | None = None,
    num_envs: int | None = None,
    max_iterations: int | None = None,
    seed: int | None = None,
    device: str = "cpu",
    resume: str | Path | None = None,
    run_name: str | None = None,
    *,
    clips: list | None = None,
    init_from: str | Path | None = None,
    runs_dir: str | Path = "runs",
    env=None,
    verbose: bool = False,
    update_threads: int | None = None,
    timeout_s: float | None = None,
) -> Path:
    """Train a policy; returns the run directory.

    `config_path`: experiment YAML (ignored with `resume`, which reuses the run's own config.yaml).
    `clip`, `num_envs`, `max_iterations`, `seed` override the config; `clips` (paths) replaces its motion library
    (one policy for several clips: imitation.env.multi_clip). `init_from`: a checkpoint, run folder or shipped policy
    whose weights a new run starts from (a fine-tune; its observation must be the config's; see _init_weights). With `resume` (a run dir or a
    checkpoint), training continues at the checkpoint's iteration up to `max_iterations` in total
    (default: the config's). `env`: an already built ImitationEnv to train in (tests reuse one).
    `update_threads`: torch CPU threads for the PPO update; default: every core this process may use (shared out
    among the ranks on this machine under torchrun), which the update has to itself (Genesis waits for it). Runs
    side by side must share the cores out (1 each on 2 cores), or their updates oversubscribe the cores.

    Under torchrun (several ranks): `num_envs` is the total, split evenly over the ranks; only rank 0 reads the
    run to resume (the others get its config and checkpoint); `timeout_s` bounds every wait for the other ranks
    (default imitation.rl.distributed.DEFAULT_TIMEOUT_S).
    """
    device, rank, world = resolve_device(device)
    if world > 1:
        distributed.init(device, timeout_s or distributed.DEFAULT_TIMEOUT_S)
    ckpt = None
    if resume is not None:
        cfg, run_dir, ckpt = _resumed(resume, clip, rank, world)
        if config_path is not None and rank == 0:
            print(f"resuming {run_dir}: its own {runs.CONFIG} is used, not {config_path}")
        if num_envs is not None:
            cfg["env"]["num_envs"] = int(num_envs)
        if max_iterations is not None:
            cfg["ppo"]["max_iterations"] = int(max_iterations)
    else:
        if config_path is None:
            raise ValueError("a config file is needed unless resuming")
        overrides = _overrides(clip, clips, num_envs, max_iterations, seed)
        cfg = distributed.checked(lambda: _read_config(config_path, overrides, need_clip=env is None))
        run_dir = runs.new_run_dir(runs_dir, cfg["experiment"], run_name)
        run_dir = Path(distributed.from_rank0(str(run_dir)))  # rank 0's clock names the run
    if env is not None:
        cfg["env"]["num_envs"] = env.num_envs * world
    cfg["run_name"] = run_name
    if world > 1:
        _ranks_agree(cfg, world)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / runs.CONFIG, config_mod.dump({k: v for k, v in cfg.items() if k != "run_name"}))

    env = _rank_env(cfg, env, device, rank, world)
    runner = Runner(env, rsl_rl_config(cfg), cfg, run_dir if rank == 0 else None, device, verbose=verbose,
                    update_threads=update_threads)
    runner.add_git_repo_to_log(str(PROJECT_ROOT))
    if ckpt is None and cfg["ppo"]["actor"]["zero_output"]:
        zero_output(runner.alg.actor)
    if ckpt is None and init_from is not None:
        _init_weights(runner, init_from, device)
        if rank == 0:
            print(f"weights from {init_from}")
    if ckpt is not None:
        runner.load(ckpt)
        env.env_steps = runner.completed * cfg["ppo"]["num_steps_per_env"] * env.num_envs  # where a curriculum was
        if rank == 0:
            print(f"resumed from {ckpt} at iteration {runner.completed}")
    remaining = max(0, cfg["ppo"]["max_iterations"] - runner.completed)
    if world > 1 and rank == 0:
        print(f"{world} ranks x {env.num_envs} envs on {'the CPU' if device == 'cpu' else 'one GPU each'} "
              f"({torch.distributed.get_backend()}), {runner.update_threads} update thread(s) per rank", flush=True)

    t0 = time.time()
    interrupted = _learn(runner, remaining, run_dir, rank)
    path = runner.save()
    runner.export()
    if runner.logger.writer is not None and hasattr(runner.logger.writer, "close"):
        runner.logger.writer.close()
    if world > 1:
        print(f"rank {rank} weights sha256: {runner.weights_sha256()}", flush=True)
        distributed.close()
    if rank == 0:
        what = "stopped" if interrupted else "finished"
        print(f"{what} at iteration {runner.completed} after {time.time() - t0:.0f} s: checkpoint {path}, run {run_dir}")
    return run_dir


def _overrides(clip, clips, num_envs, max_iterations, seed) -> dict:
    """The command line's changes to a new run's config."""
    out: dict = {}
    if clip is not None:
        out["clip"] = str(clip)
    if clips:
        out["clips"], out["clip"] = [str(c) for c in clips], None
    if num_envs is not None:
        out.setdefault("env", {})["num_envs"] = int(num_envs)
    if max_iterations is not None:
        out.setdefault("ppo", {})["max_iterations"] = int(max_iterations)
    if seed is not None:
        out["seed"] = int(seed)
    return out


def _init_weights(runner, path, device: str) -> None:
    """Start from the weights of `path`: a checkpoint (actor and critic), a run folder (its latest checkpoint) or a
    shipped policy folder or TorchScript policy (the actor only; the critic starts afresh). The action noise is the
    new run's own (its config's init_std): a fine-tune on another motion explores anew rather than at the noise the
    source run had shrunk to."""
    file = runs.weights_file(path)
    if file is None:
        raise InputError(f"{path}: no checkpoint, run folder with a model_<n>.pt or folder with a {runs.POLICY}")
    path = file
    try:
        state = {"actor_state_dict": dict(torch.jit.load(str(path), map_location=device).state_dict())}
    except (RuntimeError, ValueError):
        state = runs.load_checkpoint(path, device)
    for model, key in ((runner.alg.actor, "actor_state_dict"), (runner.alg.critic, "critic_state_dict")):
        if key not in state and key == "critic_state_dict":
            continue
        own = model.state_dict()
        weights = {k: v for k, v in (state.get(key) or {}).items() if not k.startswith("distribution.")}
        missing = sorted(k for k in own if not k.startswith("distribution.") and k not in weights)
        odd = sorted(k for k, v in weights.items() if k not in own or own[k].shape != v.shape)
        if missing or odd:
            what = f"no {missing[0]}" if missing else f"{odd[0]} of shape {tuple(weights[odd[0]].shape)}"
            raise InputError(f"{path}: {key} does not fit this config's networks ({what})")
        model.load_state_dict({**own, **weights})


def _resumed(resume, clip, rank: int, world: int) -> tuple[dict, Path, object]:
    """(config, run folder, checkpoint) of the run to continue. Rank 0 reads the run; the others need not see its
    folder (another node): they get its config and the checkpoint's bytes."""
    def read_run():
        path = Path(resume)
        found = runs.latest_checkpoint(path) if path.is_dir() else path
        if not found.is_file():
            raise FileNotFoundError(f"{found}: no such checkpoint")
        folder = found.parent
        run_cfg = config_mod.validate(yaml.safe_load((folder / runs.CONFIG).read_text()), str(folder / runs.CONFIG))
        if clip is not None and Path(clip).resolve() != Path(run_cfg["clip"]).resolve():
            raise ValueError(f"resume: the run was trained on {run_cfg['clip']}, not {clip}")
        return run_cfg, folder, found

    cfg, run_dir, ckpt = distributed.checked(read_run if rank == 0 else lambda: (None, None, None))
    if world > 1:
        cfg, run_dir, data = distributed.from_rank0((cfg, str(run_dir), ckpt.read_bytes() if rank == 0 else None))
        run_dir = Path(run_dir)
        if rank > 0:
            ckpt = io.BytesIO(data)
    return cfg, run_dir, ckpt


def _read_config(config_path, overrides: dict, need_clip: bool) -> dict:
    """The experiment config with the command line's overrides; its clip (or its library's clips) checked before a
    run folder exists."""
    from retarget.clip import read_clip
    from retarget.robot import load_robot

    loaded = config_mod.load_config(config_path, overrides)
    if loaded["clip"] is None and not loaded["clips"] and need_clip:
        raise InputError(f"{config_path}: clip: no reference clip in this config; give one with --clip CLIP")
    robot = load_robot(resolve_path(loaded["robot"]))
    if loaded["clip"] is not None:
        loaded["clip"] = str(resolve_path(loaded["clip"]).resolve())
        read_clip(loaded["clip"], robot)
    for entry in loaded["clips"]:
        entry["clip"] = str(resolve_path(entry["clip"]).resolve())
        read_clip(entry["clip"], robot)
    if loaded["clips"] and not loaded["env"]["observations"]["future_frames"]:
        raise InputError(f"{config_path}: env.observations.future_frames: a motion library needs reference frames "
                         f"ahead in the observation (they tell the policy which clip it performs), e.g. [1, 10]")
    return loaded


def _ranks_agree(cfg: dict, world: int) -> None:
    """Each rank read its own config and clip (on several nodes: its own files); they must be the same, and the
    envs must split evenly."""
    shown = {k: v for k, v in cfg.items() if k not in ("run_name", "clip", "clips")}  # clips by content, not path
    paths = [cfg["clip"]] if cfg["clip"] else [e["clip"] for e in cfg["clips"]]
    clip_sha = distributed.checked(lambda: " ".join(sha256_of(p) for p in paths) or "none")
    distributed.agree({"config": distributed.flatten(shown), "clip (sha256)": clip_sha})
    total = int(cfg["env"]["num_envs"])
    distributed.stop_on_any_error(
        None if total % world == 0 and total >= world else
        f"{total} envs do not split evenly over {world} ranks (--num-envs is the total over all ranks)")


def _rank_env(cfg: dict, env, device: str, rank: int, world: int):
    """Seeds, Genesis and this rank's env (its share of the envs, its own seed for the env's draws)."""
    s = cfg["seed"] + rank
    torch.manual_seed(s)
    np.random.seed(s)
    if device == "cpu":
        torch.set_num_threads(1)  # Genesis runs one CPU thread; torch's thread pool only contends with it
    init_genesis(device)
    if env is None:
        from ..env.imitation_env import ImitationEnv
        from ..env.multi_clip import MultiClipEnv

        make = MultiClipEnv.build if cfg["clips"] else ImitationEnv
        env = make({**cfg, "seed": s, "env": {**cfg["env"], "num_envs": cfg["env"]["num_envs"] // world}})
    env.set_log_interval(cfg["ppo"]["num_steps_per_env"])
    if not cfg["reset"]["rsi"]:  # every env starts at t = 0: spread their clocks, or rollouts run in lockstep
        env.desynchronize()
    return env


def _learn(runner, remaining: int, run_dir: Path, rank: int) -> bool:
    """Run the iterations; Ctrl-C or SIGTERM stops after the current one (twice: at once). Returns whether it was
    stopped. A lost peer rank ends every rank after rank 0 saved the last iteration all of them finished."""
    def on_signal(signum, frame):
        if runner.stop_requested:  # second signal: abort now
            raise KeyboardInterrupt
        print(f"\n{signal.Signals(signum).name}: stopping after this iteration (again to abort)", flush=True)
        runner.request_stop()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    interrupted, lost = False, None
    try:
        if remaining > 0:
            runner.learn(num_learning_iterations=remaining)
    except StopTraining:
        interrupted = True
    except KeyboardInterrupt:
        interrupted = True
        if runner._updating:  # parameters half-updated: keep the last checkpoint as is
            saved = runner.save_last_finished()  # (several ranks: rank 0 kept the last finished iteration)
            print("aborted during a policy update: " + ("not saving" if saved is None else f"saved the last finished "
                                                         f"iteration, {saved}"))
            raise
    except Exception as e:
        if not (runner.is_distributed and distributed.is_peer_failure(e)):
            raise
        lost = e
    finally:
        # After a peer failure torchrun's agent stops the surviving ranks with SIGTERM: the save and the message
        # below come first (the agent kills with SIGKILL after its grace period).
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_IGN if lost is not None and sig == signal.SIGTERM else handler)
    if lost is not None:
        path = runner.save_last_finished()
        # gloo's text: "[<source file>:<line>] Read error [<peer>]: Connection reset by peer. This is typically ..."
        what = re.sub(r"^\[[^\]]*\]\s*", "", str(lost).strip()).split(". ")[0].splitlines()[0][:160] or type(lost).__name__
        if rank == 0:
            saved = (f"last finished iteration {runner.completed}: checkpoint {path}; continue with --resume {run_dir}"
                     if path is not None else "no iteration finished: nothing saved")
            print(f"stopped: another rank failed ({what}); {saved}", file=sys.stderr, flush=True)
        else:
            print(f"rank {rank} stopped: another rank failed ({what})", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, old[signal.SIGTERM])
        raise SystemExit(1)
    return interrupted
