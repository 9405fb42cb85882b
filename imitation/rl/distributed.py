"""Several processes training one policy: the torch.distributed set-up around rsl-rl's PPO.

Under `torchrun --nproc_per_node=N -m imitation.cli train ...` every rank builds its own Genesis scene with its
share of the envs and collects its own rollouts; rsl-rl's PPO broadcasts rank 0's parameters when learning
starts and averages the gradients, the KL of the adaptive learning rate and the observation normalizers over the
ranks. rsl-rl sets this up only for CUDA with NCCL; the same collectives run on CPUs with gloo. This module holds
the set-up around them and imports neither genesis nor the env:

- `init`: the process group (gloo on CPUs, NCCL on GPUs) with a timeout, so that no collective waits forever for
  a rank that hangs; a port already in use is a one-line error;
- `checked`, `agree`: ranks that fail to read their inputs, or read different ones (config, clip), all stop at
  start with one error line from rank 0;
- `is_peer_failure`: a collective that failed because another rank is gone;
- `torchrun_command`: N ranks on this machine through torchrun (a free port, or a given one checked first).
"""

from __future__ import annotations

import datetime
import os
import socket
import sys
from dataclasses import dataclass

from retarget.errors import InputError

# Seconds a rank waits in one collective before giving up. Ranks meet at every PPO mini-batch; the longest
# legitimate wait is the start, while the slowest rank builds its scene (minutes when its kernels compile).
DEFAULT_TIMEOUT_S = 600.0

# Error texts of a collective whose peer is gone (gloo raises a plain RuntimeError with these).
_PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Timed out", "timed out",
              "NCCL communicator was aborted", "ProcessGroupNCCL")


@dataclass(frozen=True)
class Place:
    """This process's place among the ranks (torchrun's environment variables; one process without them)."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1
    local_world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1


def place() -> Place:
    world = int(os.getenv("WORLD_SIZE", "1"))
    return Place(rank=int(os.getenv("RANK", "0")), local_rank=int(os.getenv("LOCAL_RANK", "0")), world=world,
                 # launchers other than torchrun may not say: then assume every rank is on this machine
                 local_world=int(os.getenv("LOCAL_WORLD_SIZE", str(world))))


def _dist():
    import torch.distributed as dist

    return dist


def active() -> bool:
    """A process group is set up (this process is one of several ranks)."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized()


def init(device: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Join the process group of torchrun's ranks: gloo for "cpu", NCCL for "cuda:i". Idempotent."""
    import torch

    dist = _dist()
    if dist.is_initialized():
        return
    kwargs = {"device_id": torch.device(device)} if device.startswith("cuda") else {}
    try:
        dist.init_process_group("gloo" if device == "cpu" else "nccl",
                                timeout=datetime.timedelta(seconds=float(timeout_s)), **kwargs)
    except RuntimeError as e:  # (DistNetworkError is one)
        where = f"{os.getenv('MASTER_ADDR', 'localhost')}:{os.getenv('MASTER_PORT', '?')}"
        if "EADDRINUSE" in str(e) or "address already in use" in str(e):  # rank 0's store could not listen there
            raise InputError(f"port {where} is already in use (another training?): launch with a free one "
                             f"(torchrun --standalone picks one; else --master-port / --rdzv-endpoint)") from None
        if isinstance(e, getattr(dist, "DistNetworkError", ())):
            raise InputError(f"rank {place().rank}: could not join the ranks at {where}: {e}") from None
        raise


def close() -> None:
    if active():
        _dist().destroy_process_group()


def is_peer_failure(e: BaseException) -> bool:
    """A collective failed because another rank died or stopped answering."""
    if isinstance(e, getattr(_dist(), "DistError", ())):
        return True
    return isinstance(e, RuntimeError) and any(s in str(e) for s in _PEER_LOST)


# ---------------------------------------------------------------------------- agreeing at start


def _stop_all(error: str) -> None:
    """Every rank calls this with the same error: rank 0 prints it, then all exit with code 2. The others wait for
    that line: torchrun stops the remaining ranks as soon as one exits, which could cut rank 0 off before it."""
    if place().rank == 0:
        print(f"error: {error}", file=sys.stderr, flush=True)
    _dist().barrier()
    raise SystemExit(2)


def stop_on_any_error(error: str | None) -> None:
    """Collective: each rank passes its error (None when fine). If any has one, every rank stops (`_stop_all`)
    with the first, naming its rank unless it is rank 0."""
    if not active():
        if error:
            raise InputError(error)
        return
    for r, e in enumerate(gather_objects(error)):
        if e:
            _stop_all(e if r == 0 else f"rank {r}: {e}")


def checked(fn, *args, **kwargs):
    """fn(*args, **kwargs) on every rank; its one-line errors (bad input, missing files) stop every rank at once
    with that line instead of leaving the others waiting in their next collective. One process: just fn()."""
    if not active():
        return fn(*args, **kwargs)
    try:
        value, error = fn(*args, **kwargs), None
    except (InputError, ValueError, OSError) as e:
        value, error = None, str(e)
    stop_on_any_error(error)
    return value


def agree(values: dict[str, object]) -> None:
    """Collective: every rank's {what: value} (a fingerprint, or a dict such as a flattened config). Ranks that
    differ from rank 0 stop every rank with one line naming what differs and where."""
    if not active():
        return
    gathered = gather_objects(values)
    for key, mine in gathered[0].items():
        differ = [r for r, v in enumerate(gathered) if v.get(key) != mine]
        if differ:
            r = differ[0]
            _stop_all(f"the ranks disagree on the {key}: {_difference(mine, gathered[r].get(key), r)}; every rank "
                      f"must get the same arguments and files (same checkout, config and clip on every node)")


def _difference(a, b, rank: int) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        key = next(k for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k))
        return f"{key} is {a.get(key)!r} on rank 0, {b.get(key)!r} on rank {rank}"
    return f"{str(a)[:12]} on rank 0, {str(b)[:12]} on rank {rank}"


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, object] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def from_rank0(value):
    """Collective: rank 0's `value` on every rank (a picklable object)."""
    if not active():
        return value
    box = [value if place().rank == 0 else None]
    _dist().broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value) -> list:
    """Collective: every rank's `value`, in rank order (one process: [value])."""
    if not active():
        return [value]
    out: list = [None] * _dist().get_world_size()
    _dist().all_gather_object(out, value)
    return out


# ---------------------------------------------------------------------------- launching on this machine


def port_in_use(port: int) -> bool:
    """Something already listens on this TCP port here (what rank 0's store would fail to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the store does: a closing socket is no conflict
        try:
            s.bind(("", int(port)))
        except OSError:
            return True
    return False


def torchrun_command(ranks: int, module_args: list[str], port: int | None = None) -> list[str]:
    """The command that runs `python -m <module_args>` as `ranks` ranks on this machine. Without `port` torchrun
    picks a free one (--standalone), so trainings side by side never collide; a given port is checked first: a
    busy one would fail inside torchrun with a long traceback, or make it wait for a rendezvous that never comes."""
    if ranks < 1:
        raise InputError(f"--ranks must be at least 1, got {ranks}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks)]
    if port is None:
        cmd.append("--standalone")
    else:
        if port_in_use(port):
            raise InputError(f"port {port} is already in use (another training?): pick a free one, or leave --port "
                             f"out to take any free port")
        cmd += ["--nnodes", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{port}"]
    return cmd + ["-m", *module_args]


def launch_env() -> dict[str, str]:
    """The environment for launched ranks: unbuffered output (logs follow the run), and OMP_NUM_THREADS=1 as
    torchrun would set it (with a warning); each rank sets its own torch threads anyway."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
