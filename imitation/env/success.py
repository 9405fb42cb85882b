"""Did an episode do what its reference does? One rule for every motion, batched in torch, used by the training
statistics (imitation.env.online_success), evaluation and checkpoint sweeps (imitation.analysis.metrics) and the report.

An episode is summarized as an `Outcome`: the net turn about each body axis (its final attitude relative to its
start, plus the whole turns that the body-frame rotation accumulated step by step counts, so a backflip is -360
degrees of pitch, not 0), its displacement and heading change from its
start, its final tilt and base height, which feet are down at the end, whether anything but the feet touched the
ground, and its mean velocity (in the start's heading frame) and yaw rate. The reference is summarized the same
way over the same span of clip time (`expected`), and the episode succeeds when (`judge`):

    a motion that ends (loop_mode none):
      rotation   |turn - reference turn| < rotation_deg about each body axis (roll, pitch, yaw)
      upright    final tilt < the reference's final tilt + final_tilt_deg
      height     final base height > the reference's final height - end_height_m
      position   horizontal distance from the reference's displacement < end_position_m
      heading    |heading change - the reference's| < end_heading_deg
      feet       every foot the reference has down at the end is down
      no body contact at any step
      and the motion on the way (recorded episodes; `profile_errors`), with the reference shifted by up to a
      twentieth of the clip either way:
      profile    the base's height and its attitude relative to the start follow the reference's: each mean error
                 < profile_rel x the reference's own amplitude (mean departure from its start) + a floor (height_m,
                 tilt_deg)
      feet       the feet's heights correlated with the reference's, as for loops (not their lift: how high the
                 feet go in a flight is the policy's to choose)
      A robot that stands still fails a motion that ends where it began (a rear-up, a jump in place), which the
      outcome criteria alone pass.
    a looping motion, over the whole episode:
      no fall    no body contact and final tilt < the reference's + final_tilt_deg
      speed      |mean forward and lateral speed - the reference's| < speed_m_s
      yaw rate   |mean yaw rate - the reference's| < yaw_rate_deg_s
      and the motion within the cycles (recorded episodes; `motion_errors`), each as
      mean error < motion_rel x the reference's own amplitude + an absolute floor:
      path       the base's horizontal displacement over every window of half a cycle, in the heading frame at
                 the window's start, against the reference's (floor path_m)
      turning    the heading change over those windows against the reference's (floor turn_deg)
      each error the smallest with the reference shifted by up to a twentieth of the feet's period either way (a
      policy runs a little early or late; the period is the cycle, or a part of it when a clip steps several times
      per cycle: `stepping_period`); and
      feet       the feet's heights follow the reference's in time (correlation, mean over the feet, above
                 feet_correlation, with the same shift) and lift as much (mean height above where each foot rests, ratio
                 to the reference's within feet_lift_ratio)
      A robot that stands still, or moves half as much, or a quarter of that period late, fails every loop whose
      reference moves (tests/test_success.py); the mean speed alone passes it on a motion that comes back.

Tolerances come from the config's `success` section (defaults in imitation.config). The backflip configs loosen
the yaw, heading and landing-spot tolerances (configs/base_backflip.yaml), which makes the rule the project's
first flip test: at least 330 of 360 degrees backward (and, landing upright, at most 390), landing within 30 degrees
of upright, base above 0.2 m (0.32 - 0.12), four feet down, no body contact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from ..utils.rotations import quat_conj, quat_mul, quat_rotate, quat_to_rotvec

CRITERIA_END = ("rotation", "upright", "height", "position", "heading", "feet", "no_body_contact")
CRITERIA_LOOP = ("no_fall", "speed", "yaw_rate")
CRITERIA_MOTION = ("path", "turning", "feet")   # loops, judged on recorded episodes
CRITERIA_PROFILE = ("profile", "feet_motion")        # motions that end, judged on recorded episodes
CRITERIA = tuple(dict.fromkeys(CRITERIA_END + CRITERIA_LOOP + CRITERIA_MOTION + CRITERIA_PROFILE))


@dataclass
class Outcome:
    """Per-episode summary, (E, ...) tensors."""

    turn: torch.Tensor            # (E, 3) rad, net turn about the body axes (final attitude + whole turns)
    displacement: torch.Tensor    # (E, 3) m, final - start base position (world)
    heading_change: torch.Tensor  # (E,) rad in (-pi, pi]
    final_tilt: torch.Tensor      # (E,) rad, body z vs world z
    final_height: torch.Tensor    # (E,) m
    feet_down: torch.Tensor       # (E, F) bool at the end
    body_contact: torch.Tensor    # (E,) bool, at any step
    velocity: torch.Tensor        # (E, 2) m/s mean forward, lateral speed in the start's heading frame
    yaw_rate: torch.Tensor        # (E,) rad/s mean (the accumulated turn about world z over the duration)

    def to(self, device, dtype: torch.dtype | None = None) -> "Outcome":
        """On `device`, floating fields as `dtype` (if given)."""
        conv = lambda t: t.to(device, dtype) if dtype is not None and t.is_floating_point() else t.to(device)  # noqa: E731
        return Outcome(**{f.name: conv(getattr(self, f.name)) for f in fields(self)})


def heading(quat: torch.Tensor) -> torch.Tensor:
    """(...,) yaw of the body x axis projected on the ground (rad)."""
    x = quat_rotate(quat, torch.tensor([1.0, 0.0, 0.0], device=quat.device, dtype=quat.dtype).expand_as(quat[..., 1:]))
    return torch.atan2(x[..., 1], x[..., 0])


def tilt(quat: torch.Tensor) -> torch.Tensor:
    """(...,) angle between body z and world z (rad)."""
    return torch.acos((1.0 - 2.0 * (quat[..., 1] ** 2 + quat[..., 2] ** 2)).clamp(-1.0, 1.0))


def wrap(angle: torch.Tensor) -> torch.Tensor:
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def step_turn(prev_quat: torch.Tensor, quat: torch.Tensor) -> torch.Tensor:
    """Body-frame rotation vector from `prev_quat` to `quat` (..., 3)."""
    return quat_to_rotvec(quat_mul(quat_conj(prev_quat), quat))


def summarize(start_pos, start_quat, final_pos, final_quat, turn, world_yaw, feet_down, body_contact,
              duration) -> Outcome:
    """An Outcome from the quantities an episode accumulates (all (E, ...)): `turn` the summed step_turn,
    `world_yaw` the summed change of heading (unwrapped), `duration` in seconds."""
    # Net turn: the final attitude relative to the start as a rotation vector, plus the whole turns the
    # accumulated body rates count (the accumulation alone drifts with the path: a little twist in the middle of
    # a flip shows as tens of degrees of "yaw" although the robot lands facing where it started).
    rel = quat_to_rotvec(quat_mul(quat_conj(start_quat), final_quat))
    turn = rel + 2 * math.pi * torch.round((turn - rel) / (2 * math.pi))
    disp = final_pos - start_pos
    h0 = heading(start_quat)
    c, s = torch.cos(h0), torch.sin(h0)
    dur = duration.clamp(min=1e-9)
    forward = (c * disp[:, 0] + s * disp[:, 1]) / dur
    lateral = (-s * disp[:, 0] + c * disp[:, 1]) / dur
    return Outcome(
        turn=turn, displacement=disp, heading_change=wrap(heading(final_quat) - h0), final_tilt=tilt(final_quat),
        final_height=final_pos[:, 2], feet_down=feet_down.bool(), body_contact=body_contact.bool(),
        velocity=torch.stack([forward, lateral], dim=-1), yaw_rate=world_yaw / dur,
    )


def feet_window(tolerances: dict, dt: float) -> int:
    """Control steps before the end in which a foot's ground contact counts as the foot being down."""
    return max(1, int(round(tolerances["feet_down_s"] / dt)))


def feet_down(recent_contact: torch.Tensor, foot_z: torch.Tensor | None, tolerances: dict | None) -> torch.Tensor:
    """(E, F) bool: feet down at the end: in ground contact within the window before the end (`recent_contact`),
    or ending lower than the tolerance feet_down_height_m (`foot_z` (E, F) at the end; None: contacts only)."""
    if foot_z is None or tolerances is None:
        return recent_contact
    return recent_contact | (foot_z < tolerances["feet_down_height_m"])


def outcome_of(root_pos, root_quat, foot_contact, body_contact, length, dt: float, feet_steps: int = 1,
               foot_z=None, tolerances: dict | None = None) -> Outcome:
    """The Outcome of recorded episodes: (E, T, ...) samples of which the first `length` (E,) are valid; a foot is
    down at the end if in contact in any of the last `feet_steps` valid samples or, given its height `foot_z`
    (E, T, F) and the `tolerances`, low enough at the last one (see feet_down)."""
    e, t = root_pos.shape[:2]
    dev = root_pos.device
    valid = torch.arange(t, device=dev)[None, :] < length[:, None]
    steps = valid[:, 1:]
    turns = step_turn(root_quat[:, :-1], root_quat[:, 1:]) * steps[..., None]
    yaw = wrap(heading(root_quat[:, 1:]) - heading(root_quat[:, :-1])) * steps
    last = (length - 1).clamp(min=0)
    rows = torch.arange(e, device=dev)
    t_idx = torch.arange(t, device=dev)[None, :]
    recent = valid & (t_idx > (last - feet_steps)[:, None])                     # (E, T): the last feet_steps samples
    down = feet_down((foot_contact & recent[..., None]).any(1), None if foot_z is None else foot_z[rows, last],
                     tolerances)
    return summarize(
        root_pos[:, 0], root_quat[:, 0], root_pos[rows, last], root_quat[rows, last], turns.sum(1), yaw.sum(1),
        down, (body_contact & valid).any(1), last.to(root_pos.dtype) * dt,
    )


def expected(ref, start: int, steps: int) -> Outcome:
    """The reference's own Outcome over clip frames start .. start + steps (a Reference of imitation.env.reference;
    looping clips continue through their cycles)."""
    idx = torch.arange(start, start + steps + 1, device=ref.device)
    f = ref.frame(idx)
    return outcome_of(f.root_pos[None], f.root_quat[None], f.foot_contact[None],
                      torch.zeros(1, steps + 1, dtype=torch.bool, device=ref.device),
                      torch.tensor([steps + 1], device=ref.device), ref.dt)


def motion_window(cycle_frames: int) -> int:
    """Control steps of the windows the within-cycle motion is compared over: half a cycle."""
    return max(1, int(round(cycle_frames / 2)))


def motion_slack(period_frames: int) -> int:
    """Control steps by which the motion may run early or late against the reference: a twentieth of its period
    (see stepping_period) or of the clip."""
    return max(1, int(round(period_frames / 20)))


def stepping_period(foot_z: torch.Tensor) -> int:
    """Samples per period of the strongest frequency of the feet's heights over one cycle of a loop (T, F): the
    cycle itself, or a part of it when the clip steps several times per cycle (a slack of a twentieth of a long
    cycle would forgive a lag of a whole step); the cycle when no foot moves."""
    z = foot_z - foot_z.mean(0)
    power = (torch.fft.rfft(z, dim=0).abs() ** 2).sum(-1)
    if len(power) < 2 or float(power[1:].max()) < 1e-12:
        return len(foot_z)
    return max(1, int(round(len(foot_z) / (int(torch.argmax(power[1:])) + 1))))


def motion_errors(root_pos, root_quat, foot_z, length, ref_pos, ref_quat, ref_foot_z, window: int, slack: int,
                  foot_floor: float) -> dict[str, torch.Tensor]:
    """Mean errors and the reference's amplitudes, the feet's correlation with the reference's and their lift ratio
    (each (E,)) of the within-cycle motion of recorded episodes:
    (E, T, ...) samples of which the first `length` (E,) are valid, against the reference's (T + 2 slack, ...)
    samples at clip frames -slack .. T - 1 + slack (see the module docstring). Each error is the smallest over
    the reference shifted by up to `slack` steps either way; `foot_floor`: a foot's height on the ground."""
    e, t = root_pos.shape[:2]
    dev, dt_ = root_pos.device, root_pos.dtype
    w = min(window, max(1, t - 1))
    k = torch.arange(w, t, device=dev)
    valid = (k[None, :] < length[:, None]).to(dt_)                              # (E, K): windows inside the episode
    n = valid.sum(1).clamp(min=1.0)
    samples = (torch.arange(t, device=dev)[None, :] < length[:, None]).to(dt_)  # (E, T)
    n_samples = samples.sum(1).clamp(min=1.0)
    mean = lambda x: (x * valid).sum(1) / n  # noqa: E731
    lift = lambda z, floor: ((z - floor).clamp(min=0.0).mean(-1) * samples).sum(1) / n_samples  # noqa: E731

    def local(pos, h0):         # displacement over the window, in the heading frame at its start: (..., K, 2)
        d = pos[..., k, :2] - pos[..., k - w, :2]
        c, s_ = torch.cos(h0), torch.sin(h0)
        return torch.stack([c * d[..., 0] + s_ * d[..., 1], -s_ * d[..., 0] + c * d[..., 1]], dim=-1)

    h = heading(root_quat)
    d_rob, turn_rob = local(root_pos, h[:, k - w]), wrap(h[:, k] - h[:, k - w])
    best = {name: torch.full((e,), float("inf"), dtype=dt_, device=dev) for name in ("path", "turning", "feet")}
    for lag in range(-slack, slack + 1):
        rows = slice(slack - lag, slack - lag + t)          # the reference `lag` steps behind the episode
        rp, rq, rz = ref_pos[rows], ref_quat[rows], ref_foot_z[rows]
        hr = heading(rq)
        d_ref, turn_ref = local(rp, hr[k - w]), wrap(hr[k] - hr[k - w])
        errors = {"path": mean(torch.linalg.vector_norm(d_rob - d_ref[None], dim=-1)),
                  "turning": mean(wrap(turn_rob - turn_ref[None]).abs()),
                  "feet": 1.0 - _correlation(foot_z, rz[None].expand_as(foot_z), samples)}
        for name, err in errors.items():
            torch.minimum(best[name], err, out=best[name])
    rows = slice(slack, slack + t)
    ref_lift = lift(ref_foot_z[rows][None].expand_as(foot_z), foot_floor)
    hr = heading(ref_quat[rows])
    d_ref, turn_ref = local(ref_pos[rows], hr[k - w]), wrap(hr[k] - hr[k - w])
    return {
        "path_error": best["path"], "path_amplitude": mean(torch.linalg.vector_norm(d_ref, dim=-1)[None].expand(e, -1)),
        "turning_error": best["turning"], "turning_amplitude": mean(turn_ref.abs()[None].expand(e, -1)),
        "feet_correlation": 1.0 - best["feet"],
        # (a reference whose feet stay down sets no lift to match)
        "feet_lift_ratio": torch.where(ref_lift > 1e-3, lift(foot_z, rest_height(foot_z, samples)[:, None])
                                       / ref_lift.clamp(min=1e-3), 1.0),
    }


def rest_height(foot_z: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """(E, F) each foot's own resting height in each episode: the tenth percentile of its height over the valid
    `samples` (E, T). A simulated foot rests a few millimetres lower than the reference's (the contact is soft), and a
    step of a few centimetres measured from the reference's floor would lose that much."""
    z = torch.where(samples[..., None] > 0, foot_z, torch.full_like(foot_z, float("inf"))).sort(dim=1).values
    k = ((samples.sum(1) - 1).clamp(min=0) * 0.1).long()                          # (E,)
    return z.gather(1, k[:, None, None].expand(-1, 1, z.shape[-1]))[:, 0]


def profile_errors(root_pos, root_quat, foot_z, length, ref_pos, ref_quat, ref_foot_z, slack: int,
                   foot_floor: float) -> dict[str, torch.Tensor]:
    """Mean errors of the base height and of the attitude relative to the start against the reference's, with the
    reference's own amplitudes, and the feet's correlation and lift ratio (each (E,)), of recorded episodes of a
    motion that ends: (E, T, ...) samples, the first `length` (E,) valid, against the reference's (T + 2 slack, ...)
    samples at clip frames -slack .. T - 1 + slack; each error the smallest over shifts of up to `slack` steps."""
    e, t = root_pos.shape[:2]
    dev, dt_ = root_pos.device, root_pos.dtype
    samples = (torch.arange(t, device=dev)[None, :] < length[:, None]).to(dt_)
    n = samples.sum(1).clamp(min=1.0)
    mean = lambda x: (x * samples).sum(1) / n  # noqa: E731
    lift = lambda z, floor: ((z - floor).clamp(min=0.0).mean(-1) * samples).sum(1) / n  # noqa: E731
    rel = quat_mul(quat_conj(root_quat[:, :1]), root_quat)                       # attitude from the start
    best = {name: torch.full((e,), float("inf"), dtype=dt_, device=dev) for name in ("height", "attitude", "feet")}
    for lag in range(-slack, slack + 1):
        rows = slice(slack - lag, slack - lag + t)
        rq = ref_quat[rows]
        ref_rel = quat_mul(quat_conj(ref_quat[slack:slack + 1]).expand_as(rq), rq)
        errors = {"height": mean((root_pos[..., 2] - ref_pos[rows, 2][None]).abs()),
                  "attitude": mean(_angle(quat_mul(quat_conj(rel), ref_rel[None].expand_as(rel)))),
                  "feet": 1.0 - _correlation(foot_z, ref_foot_z[rows][None].expand_as(foot_z), samples)}
        for name, err in errors.items():
            torch.minimum(best[name], err, out=best[name])
    rows = slice(slack, slack + t)
    rq = ref_quat[rows]
    ref_rel = quat_mul(quat_conj(rq[:1]).expand_as(rq), rq)
    ref_lift = lift(ref_foot_z[rows][None].expand_as(foot_z), foot_floor)
    ones = torch.ones(e, 1, dtype=dt_, device=dev)
    return {
        "height_error": best["height"], "height_amplitude": mean((ref_pos[rows, 2] - ref_pos[slack, 2]).abs()[None] * ones),
        "attitude_error": best["attitude"], "attitude_amplitude": mean(_angle(ref_rel)[None] * ones),
        "feet_correlation": 1.0 - best["feet"],
        "feet_lift_ratio": torch.where(ref_lift > 1e-3, lift(foot_z, rest_height(foot_z, samples)[:, None])
                                       / ref_lift.clamp(min=1e-3), 1.0),
    }


# m: standard deviation in time of a reference foot's height below which the foot counts as staying down (the
# planted feet of a retargeted clip move by well under a millimetre; a step lifts a foot by centimetres)
FOOT_STILL_M = 0.002


def _angle(quat: torch.Tensor) -> torch.Tensor:
    """(...,) rotation angle of unit quaternions (rad, 0..pi)."""
    return 2.0 * torch.atan2(torch.linalg.vector_norm(quat[..., 1:], dim=-1), quat[..., 0].abs())


def _correlation(x: torch.Tensor, y: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """(E,) mean over the feet whose reference y moves of the correlation in time of x and y (E, T, F) over the
    valid `samples` (E, T); 0 for a foot of x that does not move; 1 when no reference foot moves (nothing to
    follow). Feet that stay down in the reference (height spread under FOOT_STILL_M) are left out: a robot
    standing still would match them."""
    m = samples[..., None]
    n = m.sum(1).clamp(min=1.0)
    xc, yc = x - (x * m).sum(1, keepdim=True) / n[:, None], y - (y * m).sum(1, keepdim=True) / n[:, None]
    cov = (xc * yc * m).sum(1)
    sx, sy = torch.sqrt((xc * xc * m).sum(1)), torch.sqrt((yc * yc * m).sum(1))
    corr = torch.where(sx > 1e-9, cov / (sx * sy).clamp(min=1e-18), torch.zeros_like(cov))
    moving = (sy / torch.sqrt(n) > FOOT_STILL_M).to(corr.dtype)
    count = moving.sum(-1)
    return torch.where(count > 0, (corr * moving).sum(-1) / count.clamp(min=1.0), torch.ones_like(count))


def judge(out: Outcome, ref: Outcome, tol: dict, loop: bool,
          motion: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Per-criterion verdicts (E,) bool and `success`; `ref` is a one-episode Outcome (broadcast); `motion`: the
    motion_errors of a loop's recorded episodes (judged when given)."""
    upright = out.final_tilt < ref.final_tilt + math.radians(tol["final_tilt_deg"])
    no_contact = ~out.body_contact
    if loop:
        v = {
            "no_fall": no_contact & upright,
            "speed": ((out.velocity - ref.velocity).abs() < tol["speed_m_s"]).all(-1),
            "yaw_rate": (out.yaw_rate - ref.yaw_rate).abs() < math.radians(tol["yaw_rate_deg_s"]),
        }
        if motion is not None:
            rel = tol["motion_rel"]
            for name, floor in (("path", tol["path_m"]), ("turning", math.radians(tol["turn_deg"]))):
                v[name] = motion[f"{name}_error"] < rel * motion[f"{name}_amplitude"] + floor
    else:
        v = {
            "rotation": ((out.turn - ref.turn).abs()
                         < torch.deg2rad(torch.as_tensor(tol["rotation_deg"], dtype=out.turn.dtype,
                                                         device=out.turn.device))).all(-1),
            "upright": upright,
            "height": out.final_height > ref.final_height - tol["end_height_m"],
            "position": torch.linalg.vector_norm((out.displacement - ref.displacement)[:, :2], dim=-1)
                        < tol["end_position_m"],
            "heading": wrap(out.heading_change - ref.heading_change).abs() < math.radians(tol["end_heading_deg"]),
            "feet": (out.feet_down | ~ref.feet_down).all(-1),
            "no_body_contact": no_contact,
        }
        if motion is not None:
            rel = tol["profile_rel"]
            follows = [motion[f"{name}_error"] < rel * motion[f"{name}_amplitude"] + floor
                       for name, floor in (("height", tol["height_m"]), ("attitude", math.radians(tol["tilt_deg"])))]
            v["profile"] = follows[0] & follows[1]
    if motion is not None and loop:
        lo, hi = tol["feet_lift_ratio"]
        ratio = motion["feet_lift_ratio"]
        v["feet"] = (motion["feet_correlation"] > tol["feet_correlation"]) & (ratio > lo) & (ratio < hi)
    elif motion is not None:  # (how high the feet go in a flight is the policy's to choose)
        v["feet_motion"] = motion["feet_correlation"] > tol["feet_correlation"]
    success = torch.ones_like(no_contact)
    for verdict in v.values():
        success = success & verdict
    v["success"] = success
    return v


def trajectory_verdicts(traj, ref, tolerances: dict | None = None) -> dict:
    """Verdicts (numpy (E,) bool arrays, `success` among them) of recorded episodes that start at the clip's
    t = 0, and for a looping reference their mean forward / lateral speed and yaw rate beside the reference's
    (E,) floats: `traj` an imitation.analysis.metrics.Trajectory, `ref` the reference (a retarget.clip.Clip or an
    imitation.env.reference.Reference)."""
    import numpy as np

    from ..config import defaults
    from .reference import Reference

    tol = {**defaults()["success"], **(tolerances or {})}
    if not isinstance(ref, Reference):
        ref = Reference(ref, None, traj.dt, "cpu")
    t = lambda a, dtype=torch.float64: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
    quat = t(np.where(traj.valid[..., None], traj.root_quat, [1.0, 0.0, 0.0, 0.0]))
    quat = quat / torch.linalg.vector_norm(quat, dim=-1, keepdim=True)
    out = outcome_of(t(traj.root_pos), quat, t(traj.foot_contact, torch.bool), t(traj.body_contact, torch.bool),
                     t(traj.length, torch.long), traj.dt, feet_window(tol, traj.dt), t(traj.foot_pos[..., 2]), tol)
    exp = expected(ref, 0, traj.num_steps - 1).to("cpu", torch.float64)
    loop = getattr(ref, "loop", False)
    motion = None
    if loop:
        slack = motion_slack(stepping_period(ref.frame(torch.arange(ref.cycle)).foot_pos[..., 2].double()))
        f = ref.frame(torch.arange(-slack, traj.num_steps + slack))
        motion = motion_errors(t(traj.root_pos), quat, t(traj.foot_pos[..., 2]), t(traj.length, torch.long),
                               f.root_pos.double(), f.root_quat.double(), f.foot_pos[..., 2].double(),
                               motion_window(ref.cycle), slack, float(ref.foot_floor))
    else:
        slack = motion_slack(ref.num_frames)
        f = ref.frame(torch.arange(-slack, traj.num_steps + slack))
        motion = profile_errors(t(traj.root_pos), quat, t(traj.foot_pos[..., 2]), t(traj.length, torch.long),
                                f.root_pos.double(), f.root_quat.double(), f.foot_pos[..., 2].double(), slack,
                                float(ref.foot_floor))
    verdicts = judge(out, exp, tol, loop=loop, motion=motion)
    result = {k: v.numpy() for k, v in verdicts.items()}
    if not getattr(ref, "loop", False):
        result.update({k: v.numpy() for k, v in motion.items()})
        return result
    # What a gait is judged on, beside the reference's own values (upright motions only: the heading of a body
    # turning through +-90 degrees of pitch flips, so a flip's "yaw rate" means nothing).
    e = traj.num_episodes
    deg = 180.0 / math.pi
    result.update({k: v.numpy() for k, v in motion.items()})
    result.update(forward_speed=out.velocity[:, 0].numpy(), lateral_speed=out.velocity[:, 1].numpy(),
                  yaw_rate_deg_s=(out.yaw_rate * deg).numpy(),
                  ref_forward_speed=np.full(e, float(exp.velocity[0, 0])),
                  ref_yaw_rate_deg_s=np.full(e, float(exp.yaw_rate[0]) * deg))
    return result
