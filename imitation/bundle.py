"""The policy bundle: everything a runner needs to run a shipped policy, without this project's configs or code.

`imitation ship` writes it beside policy.onnx as `bundle.json`, and the same JSON into the ONNX file's metadata
(key `go2_imitation_bundle`, plus mjlab-style flat keys: joint_names, default_joint_pos, kp, kd, action_scale),
so a deployment reading either cannot get the joint order, gains or observation wrong. Fields:

    format            "go2-imitation-bundle/1"
    robot             name, urdf (inside genesis-world's assets), joint_names (policy order), foot_names,
                      body_links (whose ground contact is a fall), default_pose, effort limits (N m), joint limits,
                      the actuator model (armature kg m^2, damping N m s/rad, friction_loss N m per joint)
    control           dt (control period, s), substeps (the training engine's physics steps per control step),
                      kp, kd, action_scale, action_mode ("default" | "residual"), clip_actions, latency_steps
                      (0 or 1), torque_limits, residual_base {kind "reference" | "pd_target", lead (frames
                      ahead), velocity_gain}
    observation       size, slices [{name, start, size, scale}], last_actions, future_frames, future_terms,
                      phase {kind "episode" (pi t / T x (1, 1/2, 1/4)) | "cycle" (2 pi x (1, 2, 4) x phase in
                      the cycle), episode_length_s, cycle_frames}
    reference         clip (path relative to the project), sha256, loop, episode_length_s
    success           the success tolerances the policy is judged with
    randomization     the domain-randomization ranges it was trained with
    library           (a policy of several clips) per clip: clip, sha256, loop, episode_length_s, success; the
                      fields above are those of its first clip

Reading checks every field: a missing or inconsistent one is refused in one line naming it. Neither torch
nor genesis is imported here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from retarget.errors import InputError
from retarget.files import write_text_atomic

FORMAT = "go2-imitation-bundle/1"
FILE = "bundle.json"
ONNX_KEY = "go2_imitation_bundle"
N_JOINTS = 12


def make_bundle(cfg: dict, robot, clip_path: Path, clip_rel: str, clip_sha256: str) -> dict:
    """The bundle of a policy trained with the resolved config `cfg` on the clip at `clip_path`
    (`clip_rel`: its path as the bundle names it)."""
    from types import SimpleNamespace

    from retarget.clip import read_clip
    from retarget.robot import genesis_assets_dir

    from .env.observations import ObservationSpec
    from .env.reference import episode_length_s

    clip = read_clip(clip_path, robot)
    e, o = cfg["env"], cfg["env"]["observations"]
    loop = clip.loop_mode == "wrap"
    frames = clip.resample(1.0 / float(e["dt"])).num_frames
    length = episode_length_s(e, SimpleNamespace(loop=loop, duration=clip.duration))
    future = [int(k) for k in o["future_frames"]]
    terms = list(o["future_terms"]) if future else []
    spec = ObservationSpec(dt=float(e["dt"]), episode_length_s=length, loop=loop, cycle=max(1, frames - 1),
                           last_actions=o["last_actions"], future_frames=tuple(future), future_terms=tuple(terms))
    slices, start = [], 0
    for name, size, scale in spec.layout():
        slices.append({"name": name, "start": start, "size": size, "scale": scale})
        start += size
    residual = e["action_mode"] == "residual"
    base_kind = None
    if residual:
        base_kind = e["residual_base"]
        if base_kind == "auto":
            base_kind = "pd_target" if clip.pd_target is not None else "reference"
    lst = lambda a: [float(x) for x in a]  # noqa: E731
    return {
        "format": FORMAT,
        "robot": {"name": robot.name, "urdf": str(Path(robot.urdf_path).relative_to(genesis_assets_dir())),
                  "joint_names": list(robot.joint_names), "foot_names": list(robot.foot_names),
                  "body_links": list(cfg["termination"]["contact_links"] or robot.body_links),
                  "base_link": robot.base_link, "default_pose": lst(robot.default_pose),
                  "effort": lst(robot.effort), "lower": lst(robot.lower), "upper": lst(robot.upper),
                  "armature": lst(robot.armature), "damping": lst(robot.joint_damping),
                  "friction_loss": lst(robot.friction_loss)},
        "control": {"dt": float(e["dt"]), "substeps": int(e["substeps"]), "kp": float(e["kp"]), "kd": float(e["kd"]),
                    "action_scale": float(e["action_scale"]), "action_mode": e["action_mode"],
                    "clip_actions": float(e["clip_actions"]), "latency_steps": int(bool(e["action_latency"])),
                    "torque_limits": bool(e["torque_limits"]),
                    "residual_base": None if not residual else {
                        "kind": base_kind, "lead": int(e["residual_lead"]),
                        "velocity_gain": float(e["residual_velocity_gain"])}},
        "observation": {"size": start, "slices": slices, "last_actions": o["last_actions"],
                        "future_frames": future, "future_terms": terms,
                        "phase": {"kind": "cycle" if loop else "episode", "episode_length_s": length,
                                  "cycle_frames": max(1, frames - 1)}},
        "reference": {"clip": clip_rel, "sha256": clip_sha256, "loop": loop, "episode_length_s": length},
        "success": dict(cfg["success"]),
        "randomization": {k: v for k, v in cfg["domain_randomization"].items() if k != "init_noise"},
    }


def bundle_of_folder(folder) -> dict:
    """The bundle of a run or shipped policy `folder` made from its config.yaml (a folder shipped before bundles
    existed, or a run folder). A policy of a motion library: its bundle on the library's first clip (the
    observation and actions are the same on every clip) and `library`, each clip's reference and success rule."""
    from retarget.clip import sha256_of
    from retarget.robot import PROJECT_ROOT, load_robot

    from . import runs
    from .config import for_clip, resolve_path

    folder = Path(folder)
    cfg = runs.read_config(folder / runs.CONFIG)
    if cfg["clip"] is None and not cfg["clips"]:
        raise InputError(f"{folder / runs.CONFIG}: clip: the policy's config names no reference clip")
    robot = load_robot(resolve_path(cfg["robot"]))

    def of_clip(cfg: dict) -> dict:
        clip = resolve_path(cfg["clip"])
        if not clip.is_file():
            raise InputError(f"{folder / runs.CONFIG}: clip: {cfg['clip']} not found")
        try:
            rel = str(clip.resolve().relative_to(PROJECT_ROOT))
        except ValueError:
            rel = str(clip.resolve())
        return make_bundle(cfg, robot, clip, rel, sha256_of(clip))

    if cfg["clip"] is None:
        per_clip = [of_clip(for_clip(cfg, i)) for i in range(len(cfg["clips"]))]
        return {**per_clip[0], "library": [{**b["reference"], "success": b["success"]} for b in per_clip]}
    return of_clip(cfg)


# ---------------------------------------------------------------------------- checking


def _need(b: dict, path: str, kind, where: str):
    cur = b
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            raise InputError(f"{where}: bundle field {path}: missing")
        cur = cur[key]
    ok = isinstance(cur, kind) and not (isinstance(cur, bool) and kind in (int, float, (int, float)))
    if not ok:
        raise InputError(f"{where}: bundle field {path}: expected {getattr(kind, '__name__', kind)}, got {cur!r}")
    return cur


def _numbers(b: dict, path: str, n: int, where: str) -> list:
    v = _need(b, path, list, where)
    if len(v) != n or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                              for x in v):
        raise InputError(f"{where}: bundle field {path}: expected {n} finite numbers, got {len(v)} values")
    return v


def check_bundle(b: dict, where: str) -> dict:
    """`b` if complete and consistent; else InputError naming the first bad field."""
    if not isinstance(b, dict):
        raise InputError(f"{where}: a bundle is a JSON object")
    if _need(b, "format", str, where) != FORMAT:
        raise InputError(f"{where}: bundle field format: {b['format']!r} is not {FORMAT!r}")
    names = _need(b, "robot.joint_names", list, where)
    if len(names) != N_JOINTS or len(set(names)) != N_JOINTS or not all(isinstance(x, str) for x in names):
        raise InputError(f"{where}: bundle field robot.joint_names: expected {N_JOINTS} distinct joint names")
    feet = _need(b, "robot.foot_names", list, where)
    if len(feet) != 4:
        raise InputError(f"{where}: bundle field robot.foot_names: expected 4 foot links")
    _need(b, "robot.body_links", list, where)
    _need(b, "robot.urdf", str, where)
    _need(b, "robot.base_link", str, where)
    for key in ("default_pose", "effort", "lower", "upper", "armature", "damping", "friction_loss"):
        _numbers(b, f"robot.{key}", N_JOINTS, where)
    r = b["robot"]
    if any(lo >= hi for lo, hi in zip(r["lower"], r["upper"])):
        raise InputError(f"{where}: bundle field robot.lower: not below robot.upper")
    if any(not lo - 1e-6 <= q <= hi + 1e-6 for q, lo, hi in zip(r["default_pose"], r["lower"], r["upper"])):
        raise InputError(f"{where}: bundle field robot.default_pose: outside the joint limits")
    for key in ("effort",):
        if any(x <= 0 for x in r[key]):
            raise InputError(f"{where}: bundle field robot.{key}: must be positive")
    for key in ("armature", "damping", "friction_loss"):
        if any(x < 0 for x in r[key]):
            raise InputError(f"{where}: bundle field robot.{key}: must not be negative")
    for key in ("dt", "kp", "kd", "action_scale", "clip_actions"):
        v = _need(b, f"control.{key}", (int, float), where)
        if not (math.isfinite(v) and v > 0 if key != "kd" else v >= 0):
            raise InputError(f"{where}: bundle field control.{key}: {v!r} must be positive")
    _need(b, "control.substeps", int, where)
    if _need(b, "control.latency_steps", int, where) not in (0, 1):
        raise InputError(f"{where}: bundle field control.latency_steps: 0 or 1")
    _need(b, "control.torque_limits", bool, where)
    mode = _need(b, "control.action_mode", str, where)
    if mode not in ("default", "residual"):
        raise InputError(f"{where}: bundle field control.action_mode: {mode!r} is not default or residual")
    if mode == "residual":
        kind = _need(b, "control.residual_base.kind", str, where)
        if kind not in ("reference", "pd_target"):
            raise InputError(f"{where}: bundle field control.residual_base.kind: {kind!r}")
        if _need(b, "control.residual_base.lead", int, where) < 0:
            raise InputError(f"{where}: bundle field control.residual_base.lead: must not be negative")
        _need(b, "control.residual_base.velocity_gain", (int, float), where)
    size = _need(b, "observation.size", int, where)
    start = 0
    for i, s in enumerate(_need(b, "observation.slices", list, where)):
        for key, kind in (("name", str), ("start", int), ("size", int), ("scale", (int, float))):
            _need(s, key, kind, f"{where}: observation.slices[{i}]")
        if s["start"] != start:
            raise InputError(f"{where}: bundle field observation.slices[{i}].start: {s['start']}, expected {start}")
        start += s["size"]
    if start != size:
        raise InputError(f"{where}: bundle field observation.size: {size}, but its slices add up to {start}")
    if _need(b, "observation.last_actions", str, where) not in ("previous", "current"):
        raise InputError(f"{where}: bundle field observation.last_actions: previous or current")
    frames = _need(b, "observation.future_frames", list, where)
    terms = _need(b, "observation.future_terms", list, where)
    from .env.observations import FUTURE_TERMS, observation_size

    unknown = [t for t in terms if t not in FUTURE_TERMS]
    if unknown:
        raise InputError(f"{where}: bundle field observation.future_terms: unknown {unknown} (known: "
                         f"{', '.join(FUTURE_TERMS)})")
    if observation_size(frames, terms) != size:
        raise InputError(f"{where}: bundle field observation.size: {size} does not fit 60 + the {len(frames)} "
                         f"future frames of {terms}")
    if _need(b, "observation.phase.kind", str, where) not in ("episode", "cycle"):
        raise InputError(f"{where}: bundle field observation.phase.kind: episode or cycle")
    if _need(b, "observation.phase.episode_length_s", (int, float), where) <= 0:
        raise InputError(f"{where}: bundle field observation.phase.episode_length_s: must be positive")
    _need(b, "observation.phase.cycle_frames", int, where)
    _need(b, "reference.clip", str, where)
    sha = _need(b, "reference.sha256", str, where)
    if len(sha) != 64:
        raise InputError(f"{where}: bundle field reference.sha256: not a sha256")
    loop = _need(b, "reference.loop", bool, where)
    if (b["observation"]["phase"]["kind"] == "cycle") != loop:
        raise InputError(f"{where}: bundle field observation.phase.kind: {b['observation']['phase']['kind']} "
                         f"for a {'looping' if loop else 'non-looping'} reference")
    _need(b, "reference.episode_length_s", (int, float), where)
    _need(b, "success", dict, where)
    _need(b, "randomization", dict, where)
    for i, entry in enumerate(b.get("library") or []):
        at = f"{where}: library[{i}]"
        for key, kind in (("clip", str), ("sha256", str), ("loop", bool), ("episode_length_s", (int, float)),
                          ("success", dict)):
            _need(entry, key, kind, at)
    return b


def library_entry(b: dict, clip_path: Path, clip_sha256: str) -> dict:
    """The bundle's settings for the clip at `clip_path` ({clip, sha256, loop, episode_length_s, success}): its
    library entry when the policy was trained on several clips and this is one of them (by content), else the
    bundle's own reference and success (a single-clip policy, or a clip the library did not hold)."""
    for entry in b.get("library") or []:
        if entry["sha256"] == clip_sha256:
            return entry
    return {**b["reference"], "success": b["success"]}


# ---------------------------------------------------------------------------- files


def write_bundle(folder: str | Path, bundle: dict) -> Path:
    """bundle.json in `folder`, and the bundle in the metadata of its policy.onnx (if there is one)."""
    folder = Path(folder)
    check_bundle(bundle, str(folder / FILE))
    text = json.dumps(bundle, indent=1) + "\n"
    onnx_path = folder / "policy.onnx"
    if onnx_path.is_file():
        _write_onnx_metadata(onnx_path, bundle, text)
    return write_text_atomic(folder / FILE, text)


def _write_onnx_metadata(path: Path, bundle: dict, text: str) -> None:
    import onnx

    from retarget.files import atomic_path

    model = onnx.load(str(path), load_external_data=False)
    c, r = bundle["control"], bundle["robot"]
    flat = {ONNX_KEY: text, "joint_names": ",".join(r["joint_names"]),
            "default_joint_pos": ",".join(f"{x:.6g}" for x in r["default_pose"]),
            "kp": f"{c['kp']:g}", "kd": f"{c['kd']:g}", "action_scale": f"{c['action_scale']:g}",
            "control_dt": f"{c['dt']:g}", "observation_size": str(bundle["observation"]["size"])}
    keep = [p for p in model.metadata_props if p.key not in flat]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in flat.items():
        model.metadata_props.add(key=k, value=v)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def read_bundle(folder: str | Path) -> dict:
    """The checked bundle of a shipped policy folder (or of a bundle.json path)."""
    p = Path(folder)
    path = p if p.suffix == ".json" else p / FILE
    if not path.is_file():
        raise InputError(f"{path}: no policy bundle (re-ship the policy with: imitation ship RUN DEST)")
    try:
        b = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON: {e.msg} (line {e.lineno})") from None
    return check_bundle(b, str(path))


def read_onnx_bundle(path: str | Path) -> dict:
    """The checked bundle stored in an ONNX file's metadata."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    if ONNX_KEY not in props:
        raise InputError(f"{path}: no {ONNX_KEY} metadata (re-ship the policy with: imitation ship RUN DEST)")
    return check_bundle(json.loads(props[ONNX_KEY]), f"{path} (metadata)")
