"""Policies to evaluate, loaded as deterministic callables `policy(obs: TensorDict) -> actions (n, 12)`:

- a run folder of ours (its latest `model_<n>.pt`) or a checkpoint `model_<n>.pt`: the actor is rebuilt
  from the run's config (saved in the checkpoint, or the run's config.yaml) and run deterministically;
- a run's export `exported/policy.pt` (TorchScript), with the config.yaml of its run, or a shipped policy
  folder (`policies/<name>/`: policy.pt beside its config.yaml);
- any other TorchScript policy taking the Genesis backflip 60-value observation, e.g. the official `single.pt`
  (imitation.evaluation.evaluate runs it with the settings of the Genesis example it was made for).
"""

from __future__ import annotations

from pathlib import Path

import torch

from retarget.errors import InputError

from .. import config as config_mod
from .. import runs


def load_policy(path: str | Path, device: str = "cpu"):
    """(policy, info): `policy(obs: TensorDict) -> actions (n, 12)`, deterministic, on `device`.

    info: kind ("checkpoint", "export" or "torchscript"), path, config (the run's config dict, or None
    for an external policy), obs_groups (the observation groups it reads, concatenated), obs_dim (their
    total size, None if unknown), iteration (checkpoints).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such policy file or run folder")
    if path.is_dir():
        try:
            path = runs.latest_checkpoint(path)
        except FileNotFoundError:
            export = runs.find_export(path)
            if export is None:
                raise InputError(f"{path}: no checkpoint model_<n>.pt, {runs.EXPORT_DIR}/{runs.POLICY} or "
                                 f"{runs.POLICY} in this folder") from None
            path = export
    dev = torch.device(device)

    try:
        module = torch.jit.load(str(path), map_location=dev)
    except (RuntimeError, ValueError):
        module = None
    if module is not None:
        module.eval()
        run_cfg = runs.config_path(path)
        cfg = runs.read_config(run_cfg) if run_cfg.is_file() else None
        weights = [p for p in module.parameters() if p.dim() == 2]
        info = {"kind": "export" if cfg is not None else "torchscript", "path": str(path), "config": cfg,
                "obs_groups": ["policy"], "obs_dim": int(weights[0].shape[1]) if weights else None,
                "iteration": None}

        def policy(obs):
            return module(obs["policy"].to(dev))

        return policy, info

    ckpt = runs.load_checkpoint(str(path), dev, not_one="neither a TorchScript policy nor a checkpoint of this project")
    cfg = (ckpt.get("infos") or {}).get("config")
    if cfg is not None:
        cfg = config_mod.validate({k: v for k, v in cfg.items() if k != "run_name"}, f"{path} (infos.config)")
    elif (path.parent / runs.CONFIG).is_file():
        cfg = runs.read_config(path.parent / runs.CONFIG)
    else:
        raise InputError(f"{path}: checkpoint without a config, and no {runs.CONFIG} beside it")
    actor, groups, obs_dim = _build_actor(cfg, ckpt["actor_state_dict"], dev, path)
    info = {"kind": "checkpoint", "path": str(path), "config": cfg, "obs_groups": groups, "obs_dim": obs_dim,
            "iteration": ckpt.get("iter")}

    def policy(obs):
        return actor(obs.to(dev))

    return policy, info


def _build_actor(cfg: dict, state: dict, dev, path):
    """The rsl-rl actor of a run's config with the checkpoint's weights, in eval mode."""
    import rsl_rl.models
    from tensordict import TensorDict

    weights = [v for k, v in state.items() if k.startswith("mlp.") and k.endswith("weight") and v.dim() == 2]
    if not weights:
        raise InputError(f"{path}: actor_state_dict has no MLP weights")
    obs_dim = int(weights[0].shape[1])
    groups = list(cfg["ppo"]["obs_groups"]["actor"])
    # The actor only needs the total input size: the first group gets all of it, the others none.
    fake = TensorDict({g: torch.zeros(1, obs_dim if i == 0 else 0) for i, g in enumerate(groups)}, batch_size=[1])
    kw = config_mod.actor_model_kwargs(cfg)
    cls = getattr(rsl_rl.models, kw.pop("class_name"))
    actor = cls(fake, {"actor": groups}, "actor", 12, **kw)
    actor.load_state_dict(state)
    return actor.to(dev).eval(), groups, obs_dim
