"""Evaluation metrics of a flip: recorded rollouts in, per-episode numbers and side-by-side tables out.

Numpy/scipy (no genesis; success through imitation.env.success, batched in torch), so the same code scores the
imitation policy, the reward-only baseline and the official policies, and can be tested on scripted trajectories.

Conventions (the ones of the Genesis Go2: x forward, y left, z up; quaternions w x y z):

- A backward flip is a *negative* rotation about the body y axis in Genesis; every pitch figure here
  reports it as **positive** degrees.
- Pitch rotation is the body-frame rotation between consecutive recorded attitudes, projected on the
  body y axis and accumulated: the integral of the body pitch rate, computed from the quaternions so
  that it is exact for any per-step rotation below 180 degrees, never wraps (a full turn is 360, two
  are 720) and does not depend on the rate samples lining up with the attitude samples.
- Tilt is the angle between the body z axis and world z (0 = upright, 180 = upside down).

Success (`success`, with a reference) is imitation.env.success's rule: the episode did what its reference does
(for a backflip: turned 360 degrees backward within the tolerance, landed upright near the reference's landing
with four feet down, no body contact).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

# (label, unit, format) of every known metric, in table order; bool metrics are shown as rates.
METRIC_INFO: dict[str, tuple[str, str, str]] = {
    "success": ("success rate [95% CI]", "%", ".1f"),
    "pitch_rotation_deg": ("pitch rotation (net, backward +)", "deg", ".1f"),
    "max_pitch_rotation_deg": ("pitch rotation (peak)", "deg", ".1f"),
    "peak_pitch_rate": ("peak backward pitch rate", "rad/s", ".2f"),
    "apex_height": ("apex base height", "m", ".3f"),
    "flight_time": ("flight time", "s", ".3f"),
    "final_tilt_deg": ("landing attitude error (final tilt)", "deg", ".1f"),
    "forward_speed": ("mean forward speed", "m/s", ".2f"),
    "ref_forward_speed": ("reference's mean forward speed", "m/s", ".2f"),
    "lateral_speed": ("mean lateral speed", "m/s", ".2f"),
    "yaw_rate_deg_s": ("mean yaw rate", "deg/s", ".1f"),
    "ref_yaw_rate_deg_s": ("reference's mean yaw rate", "deg/s", ".1f"),
    "final_height": ("final base height", "m", ".3f"),
    "body_contact": ("non-foot ground contact", "%", ".1f"),
    "feet_down_at_end": ("four feet down at end", "%", ".1f"),
    "joint_rmse": ("joint RMSE vs reference", "rad", ".3f"),
    "foot_pos_error": ("foot position error", "m", ".3f"),
    "root_orient_error": ("root orientation error", "rad", ".3f"),
    "root_height_error": ("root height error", "m", ".3f"),
    "root_pos_error": ("root position error", "m", ".3f"),
    "peak_torque": ("peak |torque|", "N m", ".1f"),
    "landing_peak_torque": ("peak |torque| from touchdown on", "N m", ".1f"),
    "rms_torque": ("RMS torque", "N m", ".2f"),
    "action_rate": ("action rate (mean sum dA^2)", "", ".3f"),
    "energy": ("mechanical energy sum|tau qd|dt", "J", ".1f"),
}

_FLOAT_ARRAYS = ("root_pos", "root_quat", "root_ang_vel_b", "dof_pos", "dof_vel", "torque", "actions", "foot_pos")


@dataclass
class Trajectory:
    """Recorded rollouts: E episodes of T control steps of length `dt`, sample k at time k * dt.

    Shapes (world frame unless noted):
        root_pos (E,T,3) m; root_quat (E,T,4) w x y z; root_ang_vel_b (E,T,3) rad/s body frame;
        dof_pos, dof_vel, torque, actions (E,T,J); foot_pos (E,T,F,3) m; foot_contact (E,T,F) bool;
        body_contact (E,T) bool, any non-foot link touching the ground.
    `length` (E,) ints: episodes that ended early hold `length[e]` valid samples followed by padding
    that every metric ignores; None means all T samples are valid.
    `joint_names` / `foot_names`: the column order of the arrays; when both the trajectory and the
    reference name them, the reference is reordered to match (Genesis and the clips order legs
    differently, and a silent mismatch would corrupt every tracking error).
    """

    dt: float
    root_pos: np.ndarray
    root_quat: np.ndarray
    root_ang_vel_b: np.ndarray
    dof_pos: np.ndarray
    dof_vel: np.ndarray
    torque: np.ndarray
    actions: np.ndarray
    foot_pos: np.ndarray
    foot_contact: np.ndarray
    body_contact: np.ndarray
    time: np.ndarray | None = None
    length: np.ndarray | None = None
    joint_names: tuple[str, ...] | None = None
    foot_names: tuple[str, ...] | None = None

    def __post_init__(self):
        self.dt = float(self.dt)
        if not np.isfinite(self.dt) or self.dt <= 0:
            raise ValueError(f"dt must be positive, got {self.dt}")
        for name in _FLOAT_ARRAYS:
            setattr(self, name, np.asarray(getattr(self, name), float))
        for name in ("foot_contact", "body_contact"):
            setattr(self, name, np.asarray(getattr(self, name)).astype(bool))
        if self.time is not None:
            self.time = np.asarray(self.time, float)
        e, t = self.root_pos.shape[:2]
        j, nf = self.dof_pos.shape[-1], self.foot_contact.shape[-1]
        want = {
            "root_pos": (e, t, 3), "root_quat": (e, t, 4), "root_ang_vel_b": (e, t, 3),
            "dof_pos": (e, t, j), "dof_vel": (e, t, j), "torque": (e, t, j), "actions": (e, t, j),
            "foot_pos": (e, t, nf, 3), "foot_contact": (e, t, nf), "body_contact": (e, t),
        }
        for name, shape in want.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"Trajectory.{name} has shape {getattr(self, name).shape}, expected {shape}")
        if t < 2:
            raise ValueError(f"a trajectory needs at least 2 samples, got {t}")
        if self.time is None:
            self.time = np.arange(t) * self.dt
        elif self.time.shape != (t,):
            raise ValueError(f"Trajectory.time has shape {self.time.shape}, expected ({t},)")
        if self.length is None:
            self.length = np.full(e, t, dtype=int)
        else:
            self.length = np.asarray(self.length).astype(int).reshape(e)
            if np.any(self.length < 1) or np.any(self.length > t):
                raise ValueError(f"Trajectory.length must lie in 1..{t}, got {self.length}")

    @property
    def num_episodes(self) -> int:
        return self.root_pos.shape[0]

    @property
    def num_steps(self) -> int:
        return self.root_pos.shape[1]

    @property
    def valid(self) -> np.ndarray:
        """(E,T) bool: samples inside each episode."""
        return np.arange(self.num_steps)[None, :] < self.length[:, None]


def reference_trajectory(ref, frames) -> Trajectory:
    """One episode that is the reference itself at control frames `frames` (a 1-D torch tensor; repeated frames
    hold a pose, frames past a loop's cycle repeat it), as a recorded trajectory: what a robot that moved exactly
    as the reference would be judged on. `ref` an imitation.env.reference.Reference."""
    f = ref.frame(frames)
    steps = len(frames)
    z = np.zeros((1, steps, 12))
    return Trajectory(dt=ref.dt, root_pos=f.root_pos.double().numpy()[None], root_quat=f.root_quat.double().numpy()[None],
                      root_ang_vel_b=f.root_ang_vel_b.double().numpy()[None], dof_pos=f.dof_pos.double().numpy()[None],
                      dof_vel=f.dof_vel.double().numpy()[None], torque=z, actions=z,
                      foot_pos=f.foot_pos.double().numpy()[None], foot_contact=f.foot_contact.numpy()[None],
                      body_contact=np.zeros((1, steps), bool))


def _last(x: np.ndarray, length: np.ndarray) -> np.ndarray:
    """x[e, length[e] - 1, ...] for every episode."""
    idx = (length - 1).reshape(-1, *([1] * (x.ndim - 1)))
    return np.take_along_axis(x, idx, axis=1)[:, 0]


def _masked_mean(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over axis 1 and any trailing axes of the samples where mask (E,T) is set (padding may be NaN)."""
    per_sample = x.reshape(*x.shape[:2], -1).mean(axis=-1)
    return np.where(mask, per_sample, 0.0).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)


def pitch_increments(quat_wxyz: np.ndarray) -> np.ndarray:
    """(E,T-1) backward pitch (rad) turned between consecutive samples, body frame, backward positive."""
    e, t = quat_wxyz.shape[:2]
    a = Rotation.from_quat(quat_wxyz[:, :-1].reshape(-1, 4), scalar_first=True)
    b = Rotation.from_quat(quat_wxyz[:, 1:].reshape(-1, 4), scalar_first=True)
    # a^-1 b is the step expressed in the body frame at the start of the step.
    step = (a.inv() * b).as_rotvec().reshape(e, t - 1, 3)
    return -step[..., 1]


def unit_quats(traj: Trajectory) -> np.ndarray:
    """root_quat normalized, with the identity over padding (which may hold zeros or NaN)."""
    q = traj.root_quat
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    ok = traj.valid[..., None] & (norm > 1e-9)
    return np.where(ok, q / np.where(ok, norm, 1.0), [1.0, 0.0, 0.0, 0.0])


def cumulative_pitch(traj: Trajectory) -> np.ndarray:
    """(E,T) backward pitch turned since t = 0 (rad); constant over padding."""
    inc = pitch_increments(unit_quats(traj)) * traj.valid[:, 1:]
    return np.concatenate([np.zeros((traj.num_episodes, 1)), np.cumsum(inc, axis=1)], axis=1)


def tilt(quat_wxyz: np.ndarray) -> np.ndarray:
    """Angle (rad) between body z and world z: the (2,2) entry of the rotation matrix is 1 - 2(x^2 + y^2)."""
    q = quat_wxyz / np.linalg.norm(quat_wxyz, axis=-1, keepdims=True)
    return np.arccos(np.clip(1.0 - 2.0 * (q[..., 1] ** 2 + q[..., 2] ** 2), -1.0, 1.0))


def quat_angle(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Rotation angle (rad, 0..pi) between two attitudes; |dot| because q and -q are the same attitude."""
    q1 = q1 / np.linalg.norm(q1, axis=-1, keepdims=True)
    q2 = q2 / np.linalg.norm(q2, axis=-1, keepdims=True)
    return 2.0 * np.arccos(np.clip(np.abs(np.sum(q1 * q2, axis=-1)), 0.0, 1.0))


def run_lengths(flag: np.ndarray) -> np.ndarray:
    """(E, T) length of the run of consecutive True along axis 1 that ends at each sample (0 at False)."""
    c = np.cumsum(flag, axis=1)
    # At every False the running count is frozen; subtracting the last frozen value restarts it.
    return c - np.maximum.accumulate(np.where(flag, 0, c), axis=1)


def longest_run(flag: np.ndarray) -> np.ndarray:
    """(E,) length in samples of the longest run of consecutive True along axis 1, vectorized."""
    return run_lengths(flag).max(axis=1)


def apex(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(E,) highest base height, refined by the parabola through the top sample and its neighbours.

    Near the apex the base is ballistic, so the three samples lie on a parabola and its vertex is the
    true apex between samples rather than the sampled maximum (off by up to g dt^2 / 8).
    """
    e, t = z.shape
    zm = np.where(valid, z, -np.inf)
    k = np.argmax(zm, axis=1)
    rows = np.arange(e)
    top = zm[rows, k]
    inner = (k > 0) & (k < t - 1)
    km, kp = np.clip(k - 1, 0, t - 1), np.clip(k + 1, 0, t - 1)
    inner &= valid[rows, km] & valid[rows, kp]
    # Neighbours outside the episode (padding, maybe NaN) are replaced so they cannot leak in.
    zl, zr = np.where(inner, z[rows, km], top), np.where(inner, z[rows, kp], top)
    curv = zl - 2 * top + zr
    ok = curv < -1e-12
    shift = np.where(ok, 0.5 * (zl - zr) / np.where(ok, curv, -1.0), 0.0)
    return top - 0.25 * (zl - zr) * shift


def _reference_at(traj: Trajectory, ref) -> dict[str, np.ndarray]:
    """Reference arrays at the trajectory's sample times, columns in the trajectory's order."""
    s = ref.sample(traj.time)  # holds the last frame past the end of a non-looping clip
    dof, feet = s["dof_pos"], s["foot_pos"]
    if traj.joint_names is not None and getattr(ref, "joint_names", None) is not None:
        dof = dof[:, _permutation(ref.joint_names, traj.joint_names, "joint")]
    if traj.foot_names is not None and getattr(ref, "foot_names", None) is not None:
        feet = feet[:, _permutation(ref.foot_names, traj.foot_names, "foot")]
    if dof.shape[-1] != traj.dof_pos.shape[-1] or feet.shape[-2] != traj.foot_pos.shape[-2]:
        raise ValueError(f"reference has {dof.shape[-1]} joints / {feet.shape[-2]} feet, "
                         f"trajectory {traj.dof_pos.shape[-1]} / {traj.foot_pos.shape[-2]}")
    return {"root_pos": s["root_pos"], "root_quat": s["root_quat"], "dof_pos": dof, "foot_pos": feet}


def _permutation(src, dst, what) -> np.ndarray:
    src, dst = list(src), list(dst)
    if sorted(src) != sorted(dst):
        raise ValueError(f"reference {what} names {src} differ from the trajectory's {dst}")
    return np.array([src.index(n) for n in dst])


def episode_metrics(traj: Trajectory, ref=None, tolerances: dict | None = None, reference=None) -> dict[str, np.ndarray]:
    """Per-episode metrics, each an (E,) array (bool for flags). See the module docstring for success.

    pitch_rotation_deg      net backward pitch turned from t = 0 to the final sample (deg)
    max_pitch_rotation_deg  largest backward pitch reached at any sample (deg)
    peak_pitch_rate         largest backward body pitch rate, from root_ang_vel_b (rad/s)
    apex_height             highest base z, sub-sample parabola vertex at the top (m)
    flight_time             longest run of samples with no foot in contact, times dt (s); only runs
                            after a first touchdown count, so the drop from the spawn height is no flight
    final_tilt_deg          landing attitude error: body z vs world z at the final sample (deg)
    final_height            base z at the final sample (m)
    body_contact            any non-foot ground contact during the episode
    feet_down_at_end        every foot in contact at some sample within the success tolerance feet_down_s of the end,
                            or lower than feet_down_height_m at the final sample
    success                 see the module docstring
    with `ref`, means over the valid samples:
    joint_rmse              sqrt(mean over samples and joints of (q - q_ref)^2) (rad)
    foot_pos_error          mean over samples and feet of |p_foot - p_foot_ref|, world frame (m)
    root_orient_error       mean rotation angle between base and reference attitudes (rad)
    root_height_error       mean |z - z_ref| of the base (m)
    root_pos_error          mean |p - p_ref| of the base, world frame (m)
    effort:
    peak_torque             max |torque| over samples and joints (N m)
    landing_peak_torque     max |torque| from the touchdown after the longest flight to the end (N m): how
                            hard the landing is; NaN without a flight or a touchdown within the episode
    rms_torque              sqrt(mean torque^2) over samples and joints (N m)
    action_rate             mean over steps of sum over joints of (a_k - a_{k-1})^2
    energy                  sum over samples and joints of |torque * dof_vel| * dt (J)

    `ref` is a retarget.clip.Clip (or anything with the same `sample(t)`), aligned so that its t = 0
    is the trajectory's t = 0; with it the success (imitation.env.success, `tolerances` overriding the config
    defaults of its `success` section) and the tracking errors are added. `reference`: the env's
    imitation.env.reference.Reference to judge success against instead of `ref` (the same clip on the env's clock).
    """
    valid, n, dt = traj.valid, traj.length, traj.dt
    out: dict[str, np.ndarray] = {}

    pitch = cumulative_pitch(traj)
    out["pitch_rotation_deg"] = np.degrees(_last(pitch, n))
    out["max_pitch_rotation_deg"] = np.degrees(np.where(valid, pitch, -np.inf).max(axis=1))
    out["peak_pitch_rate"] = np.where(valid, -traj.root_ang_vel_b[..., 1], -np.inf).max(axis=1)

    out["apex_height"] = apex(traj.root_pos[..., 2], valid)
    any_foot = traj.foot_contact.any(axis=-1) & valid
    touched = np.logical_or.accumulate(any_foot, axis=1)
    # Airborne only after a first touchdown: the drop from the spawn height is not a flight.
    airborne = valid & ~any_foot & touched
    run = run_lengths(airborne)
    out["flight_time"] = run.max(axis=1) * dt
    # Touchdown: the sample after the longest flight (its run length peaks at the flight's last sample).
    touchdown = np.where(run.max(axis=1) > 0, run.argmax(axis=1) + 1, traj.num_steps)

    quat = unit_quats(traj)
    out["final_tilt_deg"] = np.degrees(tilt(_last(quat, n)))
    out["final_height"] = _last(traj.root_pos[..., 2], n)
    out["body_contact"] = (traj.body_contact & valid).any(axis=1)
    # A foot is down at the end if it touched the ground within the success rule's window before the end.
    from ..config import defaults

    tol = {**defaults()["success"], **(tolerances or {})}
    window = max(1, int(round(tol["feet_down_s"] / dt)))
    steps = np.arange(traj.num_steps)[None, :]
    recent = valid & (steps > (n - 1 - window)[:, None])
    low = _last(traj.foot_pos[..., 2], n) < tol["feet_down_height_m"]
    out["feet_down_at_end"] = ((traj.foot_contact & recent[..., None]).any(axis=1) | low).all(axis=-1)
    if ref is not None or reference is not None:
        from ..env.success import CRITERIA, trajectory_verdicts

        verdicts = trajectory_verdicts(traj, reference if reference is not None else ref, tolerances)
        out["success"] = verdicts["success"]
        for key in CRITERIA:  # each criterion of the rule, to tell what an episode failed on
            if key in verdicts:
                out[f"passes_{key}"] = verdicts[key]
        for key in ("forward_speed", "ref_forward_speed", "lateral_speed", "yaw_rate_deg_s", "ref_yaw_rate_deg_s",
                    "path_error", "path_amplitude", "turning_error", "turning_amplitude", "feet_correlation",
                    "feet_lift_ratio", "height_error", "height_amplitude", "attitude_error", "attitude_amplitude"):
            if key in verdicts:  # the motion's course (loops: within the cycles; motions that end: on the way)
                out[key] = verdicts[key]
    if ref is not None:
        r = _reference_at(traj, ref)
        dq = traj.dof_pos - r["dof_pos"][None]
        out["joint_rmse"] = np.sqrt(_masked_mean(dq ** 2, valid))
        out["foot_pos_error"] = _masked_mean(np.linalg.norm(traj.foot_pos - r["foot_pos"][None], axis=-1), valid)
        out["root_orient_error"] = _masked_mean(quat_angle(quat, r["root_quat"][None]), valid)
        out["root_height_error"] = _masked_mean(np.abs(traj.root_pos[..., 2] - r["root_pos"][None, :, 2]), valid)
        out["root_pos_error"] = _masked_mean(np.linalg.norm(traj.root_pos - r["root_pos"][None], axis=-1), valid)

    tau = np.where(valid[..., None], traj.torque, 0.0)
    qd = np.where(valid[..., None], traj.dof_vel, 0.0)
    out["peak_torque"] = np.abs(tau).max(axis=(1, 2))
    after = (np.arange(traj.num_steps)[None, :] >= touchdown[:, None]) & valid
    landing = np.where(after[..., None], np.abs(tau), -np.inf).max(axis=(1, 2))
    out["landing_peak_torque"] = np.where(np.isfinite(landing), landing, np.nan)
    out["rms_torque"] = np.sqrt(_masked_mean(traj.torque ** 2, valid))
    da = np.diff(traj.actions, axis=1)
    step_valid = valid[:, 1:]
    # Sum over joints, mean over steps: the quantity the action-rate reward penalizes.
    out["action_rate"] = _masked_mean((da ** 2).sum(axis=-1), step_valid)
    out["energy"] = np.abs(tau * qd).sum(axis=(1, 2)) * dt
    return out


def summarize(metrics: dict[str, np.ndarray]) -> dict[str, float]:
    """Aggregate per-episode metrics: `<name>_mean` and `<name>_std` (population, NaNs ignored) for
    numbers, `<name>_rate` for flags, `episodes`, and a Wilson 95% interval `success_ci_low/high`
    so that two success rates from finite rollouts can be told apart (or not)."""
    out: dict[str, float] = {}
    e = 0
    for name, v in metrics.items():
        v = np.asarray(v)
        e = max(e, v.shape[0])
        if v.dtype == bool:
            out[f"{name}_rate"] = float(v.mean()) if v.size else float("nan")
        else:
            finite = v[np.isfinite(v)]
            out[f"{name}_mean"] = float(finite.mean()) if finite.size else float("nan")
            out[f"{name}_std"] = float(finite.std()) if finite.size else float("nan")
    out["episodes"] = float(e)
    if "success" in metrics and e:
        out["success_ci_low"], out["success_ci_high"] = wilson_interval(out["success_rate"], e)
    return out


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def metric_rows(summaries: dict[str, dict[str, float]]) -> list[list[str]]:
    """[label, cell per policy] for every metric present in any summary, in METRIC_INFO order."""
    rows = [["episodes", *(_fmt_int(s.get("episodes")) for s in summaries.values())]]
    present = {k.rsplit("_", 1)[0] for s in summaries.values() for k in s if k.endswith(("_mean", "_rate"))}
    order = [k for k in METRIC_INFO if k in present] + sorted(present - set(METRIC_INFO))
    for key in order:
        label, unit, fmt = METRIC_INFO.get(key, (key, "", ".3g"))
        cells = []
        for s in summaries.values():
            if f"{key}_rate" in s:
                cell = f"{100 * s[f'{key}_rate']:.1f}%"
                if key == "success" and "success_ci_low" in s:
                    cell += f" [{100 * s['success_ci_low']:.0f}-{100 * s['success_ci_high']:.0f}]"
            elif f"{key}_mean" in s:
                cell = f"{s[f'{key}_mean']:{fmt}} ± {s.get(f'{key}_std', float('nan')):{fmt}}"
            else:
                cell = "-"
            cells.append(cell)
        rows.append([f"{label} ({unit})" if unit and unit != "%" else label, *cells])
    return rows


def format_table(summaries: dict[str, dict[str, float]]) -> str:
    """Plain-text table, one column per policy, one row per metric present in any summary."""
    rows = [["metric", *summaries], *metric_rows(summaries)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt_int(v) -> str:
    return "-" if v is None else f"{int(v)}"
