"""Experiment configuration: YAML files validated against one schema at load time.

A config file may name a base file with `include: base.yaml` (relative to the including file); the
including file's values override the base's, key by key. Every file is checked on its own, so an
error names the file the bad value came from: unknown keys and wrong types raise a ConfigError
(`configs/x.yaml: env.kp: expected a number, got 'abc'`); a missing key takes the default below.
The loaded config is a plain nested dict holding every key, defaults filled in.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import yaml

from retarget.errors import InputError
from retarget.robot import PROJECT_ROOT


class ConfigError(InputError):
    """A config file is malformed: the message names the file and the key path."""


_MISSING = object()


# ---------------------------------------------------------------------------- schema language


class Spec:
    default: Any = _MISSING

    def check(self, value, where: str, path: str, partial: bool):
        raise NotImplementedError

    def fill(self):
        """The default value, or _MISSING when the key is required."""
        return copy.deepcopy(self.default)


def _fail(where, path, what, value):
    raise ConfigError(f"{where}: {path}: expected {what}, got {value!r}")


class Num(Spec):
    def __init__(self, default=_MISSING):
        self.default = default

    def check(self, value, where, path, partial):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(where, path, "a number", value)
        return float(value)


class Int(Spec):
    def __init__(self, default=_MISSING, min=None):
        self.default, self.min = default, min

    def check(self, value, where, path, partial):
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(where, path, "an integer", value)
        if self.min is not None and value < self.min:
            _fail(where, path, f"an integer >= {self.min}", value)
        return value


class Bool(Spec):
    def __init__(self, default=_MISSING):
        self.default = default

    def check(self, value, where, path, partial):
        if not isinstance(value, bool):
            _fail(where, path, "true or false", value)
        return value


class Str(Spec):
    def __init__(self, default=_MISSING):
        self.default = default

    def check(self, value, where, path, partial):
        if not isinstance(value, str):
            _fail(where, path, "a string", value)
        return value


class Choice(Spec):
    def __init__(self, *options, default=_MISSING):
        self.options, self.default = options, default

    def check(self, value, where, path, partial):
        if value not in self.options:
            _fail(where, path, "one of " + ", ".join(map(repr, self.options)), value)
        return value


class Maybe(Spec):
    """`inner` or null."""

    def __init__(self, inner: Spec, default=None):
        self.inner, self.default = inner, default

    def check(self, value, where, path, partial):
        return None if value is None else self.inner.check(value, where, path, partial)


class ListOf(Spec):
    def __init__(self, item: Spec, length: int | None = None, default=_MISSING):
        self.item, self.length, self.default = item, length, default

    def check(self, value, where, path, partial):
        if not isinstance(value, list):
            _fail(where, path, "a list", value)
        if self.length is not None and len(value) != self.length:
            _fail(where, path, f"a list of {self.length} values", value)
        return [self.item.check(v, where, f"{path}[{i}]", partial) for i, v in enumerate(value)]


class Range(ListOf):
    """[low, high] with low <= high."""

    def __init__(self, default=_MISSING):
        super().__init__(Num(), 2, default)

    def check(self, value, where, path, partial):
        lo, hi = super().check(value, where, path, partial)
        if lo > hi:
            _fail(where, path, "[low, high] with low <= high", value)
        return [lo, hi]


class Section(Spec):
    """A mapping with a fixed set of keys."""

    def __init__(self, **fields: Spec):
        self.fields = fields

    def check(self, value, where, path, partial):
        if not isinstance(value, dict):
            _fail(where, path or "top level", "a mapping", value)
        out = {}
        for key, v in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in self.fields:
                known = ", ".join(self.fields)
                raise ConfigError(f"{where}: {sub}: unknown key (known keys here: {known})")
            out[key] = self.fields[key].check(v, where, sub, partial)
        if not partial:
            for key, spec in self.fields.items():
                if key not in out:
                    d = spec.fill()
                    if d is _MISSING:
                        raise ConfigError(f"{where}: {path + '.' if path else ''}{key}: required key missing")
                    out[key] = d
            out = {k: out[k] for k in self.fields}  # schema order
        return out

    def fill(self):
        return {k: s.fill() for k, s in self.fields.items()}


class MapOf(Spec):
    """A mapping from free-form names to values of one kind."""

    def __init__(self, value: Spec, default=_MISSING):
        self.value, self.default = value, default

    def check(self, value, where, path, partial):
        if not isinstance(value, dict):
            _fail(where, path, "a mapping", value)
        return {str(k): self.value.check(v, where, f"{path}.{k}", partial) for k, v in value.items()}


class RewardTerm(Spec):
    """{weight: number, <parameter of the term's function>: number, ...} (see imitation.env.rewards)."""

    def check(self, value, where, path, partial):
        from .env import rewards  # the registry of reward terms (torch, no genesis)

        name = path.rsplit(".", 1)[-1]
        if name not in rewards.TERMS:
            raise ConfigError(f"{where}: {path}: unknown reward term (known: {', '.join(sorted(rewards.TERMS))})")
        if not isinstance(value, dict):
            _fail(where, path, "a mapping {weight: ..., parameters}", value)
        params = rewards.term_parameters(name)
        out = {}
        for key, v in value.items():
            if key != "weight" and key not in params:
                raise ConfigError(
                    f"{where}: {path}.{key}: not a parameter of reward term {name!r} "
                    f"(its parameters: {', '.join(['weight', *params]) })"
                )
            out[key] = Num().check(v, where, f"{path}.{key}", partial)
        if not partial:
            if "weight" not in out:
                raise ConfigError(f"{where}: {path}.weight: required key missing")
            missing = [p for p, d in params.items() if d is inspect.Parameter.empty and p not in out]
            if missing:
                raise ConfigError(f"{where}: {path}.{missing[0]}: required parameter missing")
        return out


class ClipEntry(Spec):
    """One clip of a motion library (`clips`): a path, or {clip: path, weight: share of the envs, and overrides of
    the per-clip sections below}. A policy's settings (actions, observations, PPO) are the library's, shared by all
    clips; what judges and ends an episode may differ per clip (a flip's success rule is not a gait's)."""

    OVERRIDABLE = ("success", "termination", "rewards", "reset")

    def check(self, value, where, path, partial):
        if isinstance(value, str):
            value = {"clip": value}
        if not isinstance(value, dict):
            _fail(where, path, "a clip path or a mapping {clip: path, ...}", value)
        known = ("clip", "weight", "episode_length_s", *self.OVERRIDABLE)
        out = {}
        for key, v in value.items():
            sub = f"{path}.{key}"
            if key not in known:
                raise ConfigError(f"{where}: {sub}: unknown key (known keys here: {', '.join(known)})")
            if key == "clip":
                out[key] = Str().check(v, where, sub, partial)
            elif key == "weight":
                out[key] = Num().check(v, where, sub, partial)
                if out[key] <= 0:
                    _fail(where, sub, "a positive number", v)
            elif key == "episode_length_s":
                out[key] = Maybe(Num()).check(v, where, sub, partial)
            else:  # a partial override, checked against the section's schema
                out[key] = SCHEMA.fields[key].check(v, where, sub, partial=True)
        if "clip" not in out:
            raise ConfigError(f"{where}: {path}.clip: required key missing")
        out.setdefault("weight", 1.0)
        return out


# ---------------------------------------------------------------------------- the schema

SCHEMA = Section(
    experiment=Str("imitation"),
    clip=Maybe(Str(), None),                    # path of the reference clip (HDF5), relative to the cwd
    # A motion library: several clips, one policy (imitation/env/multi_clip.py); `clip` then stays null.
    clips=ListOf(ClipEntry(), default=[]),
    robot=Str("configs/robot/go2.yaml"),
    seed=Int(1),
    env=Section(
        num_envs=Int(4096, min=1),
        dt=Num(0.02),                           # control period (s)
        substeps=Int(2, min=1),                 # physics steps per control step
        episode_length_s=Maybe(Num(), None),    # clip time at which an episode times out; null: clip duration,
        loop_episode_length_s=Num(10.0),        # ... or this for a looping clip
        kp=Num(70.0),
        kd=Num(3.0),
        action_scale=Num(0.5),
        action_mode=Choice("default", "residual", default="default"),  # PD target around default pose / next ref frame
        residual_lead=Int(1, min=0),            # residual mode: reference frame k + lead is the PD target's base
        residual_velocity_gain=Num(0.0),        # residual mode: + gain * reference joint velocity (kd/kp cancels the damping lag)
        # residual mode: the base of the PD target. "reference": the clip's joints at frame k + lead (+ velocity
        # gain); "pd_target": the clip's stored open-loop PD targets (a refined clip: the zero action replays it);
        # "auto": pd_target when the clip has them.
        residual_base=Choice("auto", "reference", "pd_target", default="auto"),
        action_latency=Bool(False),             # PD target of step k from the action of step k-1
        clip_actions=Num(100.0),
        torque_limits=Bool(True),               # clamp PD torques at the URDF effort limits
        self_collision=Bool(False),
        max_collision_pairs=Int(30, min=1),
        observations=Section(
            last_actions=Choice("previous", "current", default="previous"),  # "current": as the Genesis example plays back
            future_frames=ListOf(Int(min=1), default=[]),   # reference frames ahead (control steps) in the actor obs
            future_terms=ListOf(Choice("joint_pos", "attitude", "position"), default=["joint_pos", "attitude"]),
            privileged_critic=Bool(True),       # critic gets base velocity, height, contacts, tracking errors
        ),
    ),
    reset=Section(
        rsi=Bool(True),                         # start at a random clip frame in the reference state
        start_at_zero_fraction=Num(0.2),        # share of starts at t = 0 under RSI
        # RSI start frames drawn by recent failures (imitation/env/start_sampler.py) instead of uniformly
        adaptive=Section(
            enabled=Bool(False),
            bins=Int(50, min=1),                # at most one per frame
            uniform=Num(0.1),                   # share of the probability spread evenly over the bins
            decay=Num(0.001),                   # weight of one step's failures in the running counts
            kernel=Num(0.8),                    # failures in bin b + j count kernel**j for starting in bin b
            kernel_size=Int(3, min=1),
        ),
    ),
    termination=Section(
        body_contact=Bool(True),
        contact_links=Maybe(ListOf(Str()), None),   # null: the robot's body_links
        contact_force=Num(1.0),                 # N
        max_height_error=Maybe(Num(), None),    # m; null: off
        max_position_error=Maybe(Num(), None),  # m
        max_orientation_error=Maybe(Num(), None),   # rad
    ),
    domain_randomization=Section(
        enabled=Bool(False),
        friction=Range([0.2, 1.5]),
        added_base_mass=Range([-1.0, 3.0]),     # kg
        kp_scale=Range([0.8, 1.2]),
        kd_scale=Range([0.8, 1.2]),
        action_latency_probability=Num(0.0),    # share of envs with one-step latency (resampled at reset)
        # The actuator model (configs/robot/go2.yaml `actuators`), drawn per env and joint from absolute ranges; null:
        # the robot's nominal values. The ranges span what a second engine or the real motors may differ in.
        armature=Maybe(Range(), [0.0, 0.02]),       # kg m^2 (nominal: hip, thigh 0.0045, knee 0.0165)
        friction_loss=Maybe(Range(), [0.0, 0.3]),   # N m
        joint_damping=Maybe(Range(), [0.0, 0.3]),   # N m s/rad
        # Mean number of control steps between redraws of friction, base mass and kp / kd for the envs that reset
        # inside step() (1: at every reset). reset_envs() always redraws.
        physics_redraw_every=Int(10, min=1),
        # A curriculum: 0, the full ranges from the first step; else every draw is pulled towards the nominal robot
        # by a factor that grows linearly from 0 to 1 over this many training env steps (this process's envs; a
        # resumed run goes on from where it stopped). Evaluations always draw from the full ranges.
        curriculum_env_steps=Int(0, min=0),
        init_noise=Section(                     # standard deviations added to the initial state
            root_pos=Num(0.0), root_rot=Num(0.0), root_lin_vel=Num(0.0), root_ang_vel=Num(0.0),
            dof_pos=Num(0.0), dof_vel=Num(0.0),
        ),
    ),
    rewards=Section(
        scale_by_dt=Bool(False),                # multiply weights by dt (legged_gym convention)
        terms=MapOf(RewardTerm(), default={}),
    ),
    success=Section(                            # when an episode did what its reference does (imitation/env/success.py)
        rotation_deg=ListOf(Num(), 3, default=[30.0, 30.0, 30.0]),  # net turn about body x, y, z vs the reference's
        final_tilt_deg=Num(30.0),               # final tilt beyond the reference's
        end_height_m=Num(0.12),                 # final base height below the reference's
        end_position_m=Num(0.3),                # horizontal end position (from the start) vs the reference's
        end_heading_deg=Num(45.0),              # heading change vs the reference's
        speed_m_s=Num(0.25),                    # loops: mean forward / lateral speed vs the reference's
        yaw_rate_deg_s=Num(20.0),               # loops: mean yaw rate vs the reference's
        # loops: the motion within the cycles (imitation/env/success.py): mean error < motion_rel x the reference's
        # amplitude + a floor, for the base's path and its turning; the feet's heights correlated with the
        # reference's and lifting as much
        motion_rel=Num(0.35),
        path_m=Num(0.02),
        turn_deg=Num(5.0),
        # motions that end: the base height's and attitude's course (imitation/env/success.py): mean error
        # < profile_rel x the reference's amplitude + a floor (a robot standing still has an error of 1 x)
        profile_rel=Num(0.5),
        height_m=Num(0.01),
        tilt_deg=Num(10.0),                     # covers the heading drift of a landing (end_heading_deg allows 45)
        feet_correlation=Num(0.5),
        feet_lift_ratio=Range([0.6, 1.6]),
        # a foot is down at the end when it touched the ground within this time before the end, or ends this
        # low (foot link origin above the ground; the Go2's foot sphere has a 0.022 m radius): the contact force of
        # a lightly loaded foot resting on the ground flickers around any threshold from step to step
        feet_down_s=Num(0.1),
        feet_down_height_m=Num(0.035),
    ),
    refine=Section(                             # physics refinement (imitation refine): see imitation/refine/
        knot_dt=Num(0.1),                       # s between the time knots of the PD-target offsets
        window_knots=Int(6, min=1),             # knots optimized together in one window
        window_stride=Int(3, min=1),            # knots between window starts (< window_knots: windows overlap)
        horizon_s=Num(0.6),                     # s past a window's last knot that its candidates are scored over
        population=Int(32, min=4),              # CMA-ES candidates per generation
        # Envs per candidate: one nominal robot plus copies with physics drawn from `domain_randomization`'s
        # ranges (new draws every generation, the same for all its candidates); the cost is their mean, so the
        # open-loop targets keep working on the robots the policy will meet. 1: the nominal robot only.
        robust_copies=Int(4, min=1),
        generations=Int(40, min=1),             # per window
        polish_generations=Int(0, min=0),       # then all knots together, from the windows' result
        sigma0=Num(0.25),                       # rad, initial CMA-ES step size
        bound=Num(1.2),                         # rad, |offset| limit
        symmetry=Choice("auto", "on", "off", default="auto"),  # left/right-mirrored offsets for sagittal motions
        residual_lead=Int(1, min=0),            # PD target base = source joints of frame k + lead ...
        velocity_gain=Num(0.0),                 # ... + gain * source joint velocity
        costs=Section(                          # weights of the cost terms (imitation/refine/cost.py)
            root_pos=Num(4.0), root_rot=Num(2.0), joint_pos=Num(0.5), foot_pos=Num(2.0), contact=Num(0.5),
            body_contact=Num(20.0), height_deficit=Num(30.0), joint_limit=Num(10.0), torque_limit=Num(0.05),
            net_rotation=Num(3.0), end_pos=Num(4.0), end_height=Num(20.0), end_rot=Num(10.0), end_contact=Num(2.0),
            closure_joints=Num(5.0), closure_velocity=Num(0.5),   # loops only: the cycle ends where it began
        ),
        height_margin=Num(0.03),                # m the base may sink below the source before height_deficit counts
        tolerances=Section(                     # the refined clip must meet these, else refine fails
            rotation_deg=Num(15.0),             # net turn about each body axis vs the source's
            final_tilt_deg=Num(10.0),           # final tilt vs the source's
            end_position_m=Num(0.3),            # horizontal distance of the end position from the source's
            end_height_m=Num(0.05),
            apex_ratio=Num(0.75),               # apex base height / the source's
            min_height_drop_m=Num(0.07),        # lowest base height may be at most this below the source's lowest
            # deepest a foot sphere may go into the ground: the simulator's contact is soft, a hard landing sinks a
            # foot by centimetres (the bundled backflip's refined landing: 44 mm); deeper leans on ground that is not there
            foot_penetration_m=Num(0.05),
            flight_time_s=Num(0.1),             # longest flight vs the source's (a stand must not become a hop)
            loop_closure_rad=Num(0.15),         # loops: joint RMSE between the cycle's end and its start
        ),
        # When the result misses a tolerance: more rounds over the windows around where it fails (all of them when
        # the miss has no time, e.g. the net turn), each with retry_generations per window, from the best so far
        retries=Int(1, min=0),
        retry_generations=Int(60, min=1),
    ),
    ppo=Section(                                # rsl-rl-lib 5.x OnPolicyRunner config
        max_iterations=Int(1000, min=0),
        num_steps_per_env=Int(24, min=1),
        save_interval=Int(50, min=1),
        logger=Choice("tensorboard", default="tensorboard"),
        check_for_nan=Bool(True),
        obs_groups=MapOf(ListOf(Str()), default={"actor": ["policy"], "critic": ["critic"]}),
        algorithm=Section(
            class_name=Str("PPO"),
            learning_rate=Num(1e-3),
            schedule=Choice("adaptive", "fixed", default="adaptive"),
            desired_kl=Num(0.01),
            num_learning_epochs=Int(5, min=1),
            num_mini_batches=Int(4, min=1),
            clip_param=Num(0.2),
            gamma=Num(0.99),
            lam=Num(0.95),
            entropy_coef=Num(0.01),
            value_loss_coef=Num(1.0),
            max_grad_norm=Num(1.0),
            use_clipped_value_loss=Bool(True),
            normalize_advantage_per_mini_batch=Bool(False),
            optimizer=Choice("adam", "adamw", "sgd", "rmsprop", default="adam"),
        ),
        actor=Section(
            class_name=Str("MLPModel"),
            hidden_dims=ListOf(Int(min=1), default=[512, 256, 128]),
            activation=Str("elu"),
            obs_normalization=Bool(False),
            # The output layer starts at zero: the mean action is 0 for every observation, so a residual policy
            # starts as its base (the reference, or a refined clip's open loop that already performs the motion).
            zero_output=Bool(False),
            distribution_cfg=Section(
                class_name=Str("GaussianDistribution"),
                init_std=Num(1.0),
                std_type=Choice("scalar", "log", default="scalar"),
            ),
        ),
        critic=Section(
            class_name=Str("MLPModel"),
            hidden_dims=ListOf(Int(min=1), default=[512, 256, 128]),
            activation=Str("elu"),
            obs_normalization=Bool(False),
        ),
    ),
)


# Domain-randomization ranges that draw the nominal robot, and no initial-state noise: what playback of an env
# built with randomization uses for the nominal robot.
def actor_model_kwargs(cfg: dict) -> dict:
    """The `ppo.actor` settings rsl-rl's model constructor takes (zero_output is applied by the training)."""
    return {k: v for k, v in cfg["ppo"]["actor"].items() if k != "zero_output"}


NOMINAL_DR = {"friction": [1.0, 1.0], "added_base_mass": [0.0, 0.0], "kp_scale": [1.0, 1.0],
              "kd_scale": [1.0, 1.0], "action_latency_probability": 0.0, "armature": None, "friction_loss": None,
              "joint_damping": None}
ZERO_NOISE = {k: 0.0 for k in ("root_pos", "root_rot", "root_lin_vel", "root_ang_vel", "dof_pos", "dof_vel")}
# The `termination` settings that switch every early termination off (evaluation, refinement).
TERMINATIONS_OFF = {"body_contact": False, "max_height_error": None, "max_position_error": None,
                    "max_orientation_error": None}


# ---------------------------------------------------------------------------- loading


def resolve_path(path: str | Path) -> Path:
    """A path in a config or on the command line: absolute, relative to the cwd, or else relative to the project
    root."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return PROJECT_ROOT / p


def _read_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level: expected a mapping, got {type(raw).__name__}")
    return raw


def merge(base: dict, over: dict) -> dict:
    """Deep merge: mappings merge key by key, anything else in `over` replaces the base value."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _load_partial(path: Path, chain: tuple[Path, ...]) -> dict:
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"{path}: include: circular include ({' -> '.join(p.name for p in (*chain, path))})")
    raw = _read_yaml(path)
    include = raw.pop("include", None)
    where = _display(path)
    SCHEMA.check(raw, where, "", partial=True)  # unknown keys and types, blamed on this file
    if include is None:
        return raw
    if not isinstance(include, str):
        _fail(where, "include", "a file name", include)
    base = _load_partial(path.parent / include, (*chain, path))
    return merge(base, raw)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Load, include, validate and complete a config file; `overrides` is a nested dict applied last."""
    path = Path(path)
    raw = _load_partial(path, ())
    if overrides:
        SCHEMA.check(overrides, "overrides", "", partial=True)
        raw = merge(raw, overrides)
    where = _display(path.resolve())
    out = SCHEMA.check(raw, where, "", partial=False)
    if out["clips"] and out["clip"] is not None:
        raise ConfigError(f"{where}: clip: a motion library (clips) and a single clip at once; set clip: null "
                          f"to train on the library")
    return out


def validate(cfg: dict, where: str = "config") -> dict:
    """Check a complete config dict (e.g. a run's saved config.yaml) and fill defaults."""
    return SCHEMA.check(cfg, where, "", partial=False)


def for_clip(cfg: dict, clip: int | str | Path) -> dict:
    """The single-clip config of a motion library's clip: `clip` an index into cfg["clips"] or a path. A clip the
    library holds (by path, or a copy of one by content) gets its entry's overrides over the shared settings;
    another (a held-out clip) the shared settings alone. A config without a library comes back with `clip` set."""
    entries = cfg.get("clips") or []
    if isinstance(clip, int):
        entry = entries[clip]
    else:
        target = resolve_path(clip).resolve()
        entry = next((e for e in entries if resolve_path(e["clip"]).resolve() == target), None)
        if entry is None and entries and target.is_file():  # a copy of a library clip: by content
            from retarget.clip import sha256_of

            sha = sha256_of(target)
            entry = next((e for e in entries if resolve_path(e["clip"]).is_file()
                          and sha256_of(resolve_path(e["clip"])) == sha), None)
        entry = {**(entry or {}), "clip": str(clip)}
    out = {k: copy.deepcopy(v) for k, v in cfg.items() if k != "clips"}
    for key in ClipEntry.OVERRIDABLE:
        if key in entry:
            out[key] = merge(out[key], entry[key])
    if "episode_length_s" in entry:
        out["env"]["episode_length_s"] = entry["episode_length_s"]
    out["clip"] = entry["clip"]
    out["clips"] = []
    return out


def defaults() -> dict:
    return SCHEMA.fill()


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
