"""Quality report of a clip: what a reference motion must get right before a policy imitates it.

Besides what it measures on the clip, the report carries what the importer had to clamp
(retarget_settings["clamping"]: joint angles past a limit, foot targets out of reach, planted feet
that could not be held), which the stored angles no longer show, and for a wrapping clip the
displacement and turn of one cycle.
"""

from __future__ import annotations

import io

import numpy as np
from scipy.integrate import cumulative_trapezoid
from scipy.spatial.transform import Rotation

from .clip import Clip, cycle_delta
from .contacts import contact_intervals
from .robot import Robot

G = 9.81


def body_pitch_angle(clip: Clip) -> np.ndarray:
    """Pitch angle (rad) integrated from the body-frame pitch rate, so it runs past ±180°.

    Negative is a backward turn (nose up), as in the Genesis backflip reward.
    """
    rot = Rotation.from_quat(clip.root_quat, scalar_first=True)
    rate = rot.inv().apply(clip.root_ang_vel)[:, 1]
    return cumulative_trapezoid(rate, dx=1.0 / clip.fps, initial=0.0)


def flight_segments(contact: np.ndarray) -> list[tuple[int, int]]:
    """(first, last_exclusive) frames of each run where no foot is on the ground."""
    airborne = ~np.asarray(contact, bool).any(axis=1)
    padded = np.concatenate([[0], airborne.astype(int), [0]])
    edges = np.diff(padded)
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def quality_report(clip: Clip, robot: Robot) -> dict:
    dt = 1.0 / clip.fps
    q, qd = clip.dof_pos, clip.dof_vel
    excess = np.maximum(q - robot.upper, 0) + np.maximum(robot.lower - q, 0)
    speed_ratio = np.abs(qd).max(axis=0) / robot.velocity

    foot_z = clip.foot_pos[..., 2] - robot.foot_radius
    # Skating: horizontal foot speed over frame pairs where the foot stays in contact.
    contact = clip.foot_contact.astype(bool)
    both = contact[1:] & contact[:-1]
    step_speed = np.linalg.norm(np.diff(clip.foot_pos[..., :2], axis=0), axis=-1) * clip.fps
    skate = np.where(both, step_speed, 0.0)

    pitch = body_pitch_angle(clip)
    flights = flight_segments(contact)
    longest = max(flights, key=lambda s: s[1] - s[0], default=None)
    report = {
        "frames": clip.num_frames,
        "duration_s": clip.duration,
        "joint_limit_violations": {
            name: {"frames": int((excess[:, j] > 1e-6).sum()), "max_rad": float(excess[:, j].max())}
            for j, name in enumerate(robot.joint_names) if (excess[:, j] > 1e-6).any()
        },
        "joint_limit_violation_frames": int((excess > 1e-6).any(axis=1).sum()),
        "peak_joint_speed": {name: float(np.abs(qd[:, j]).max()) for j, name in enumerate(robot.joint_names)},
        "peak_joint_speed_ratio": float(speed_ratio.max()),
        "peak_joint_speed_joint": robot.joint_names[int(speed_ratio.argmax())],
        "max_foot_penetration_m": float(max(0.0, -foot_z.min())),
        "max_stance_skating_m_s": float(skate.max()) if skate.size else 0.0,
        "total_pitch_deg": float(np.degrees(pitch[-1])),
        "max_backward_pitch_deg": float(np.degrees(-pitch.min())),
        "apex_base_height_m": float(clip.root_pos[:, 2].max()),
        "flight_segments": len(flights),
        "flight_time_s": float((longest[1] - longest[0]) * dt) if longest else 0.0,
        "takeoff_vertical_speed_m_s": float(clip.root_lin_vel[longest[0], 2]) if longest else 0.0,
        "flight_vertical_accel_m_s2": _flight_accel(clip, longest),
        "contact_intervals": len(contact_intervals(contact)),
        **_lowest_body_point(clip, robot),
    }
    if clip.retarget_settings.get("clamping"):
        report["clamping"] = clip.retarget_settings["clamping"]
    if clip.loop_mode == "wrap":
        delta, turn = cycle_delta(clip.root_pos, clip.root_quat)
        report["cycle"] = {
            "displacement_m": delta[:2].tolist(), "heading_change_deg": float(np.degrees(turn)),
            "mean_speed_m_s": float(np.linalg.norm(delta) / clip.duration),
            "offset_position": bool(clip.cycle_offset_position), "offset_rotation": bool(clip.cycle_offset_rotation),
        }
    return report


# m a body link (trunk, hip, thigh) may reach into the ground in a clip before the report calls it touching: what
# the simulator's contact model lets a shape sink before it pushes back
BODY_GROUND_TOLERANCE = 0.005


def _lowest_body_point(clip: Clip, robot: Robot) -> dict:
    """The body's lowest point over the clip: the clearance (m, negative: into the ground), which link, when."""
    from .kinematics import body_clearance

    if not robot.body_points:
        return {}
    c = body_clearance(robot, clip.root_pos, clip.root_quat, clip.dof_pos)
    k = int(np.argmin(c["clearance_m"]))
    return {"min_body_clearance_m": float(c["clearance_m"][k]), "min_body_clearance_link": c["link"][k],
            "min_body_clearance_time_s": float(k / clip.fps)}


def body_through_ground(report: dict) -> str | None:
    """In words, where a clip's body goes into the ground (None if it does not)."""
    low = report.get("min_body_clearance_m")
    if low is None or low >= -BODY_GROUND_TOLERANCE:
        return None
    return (f"{report['min_body_clearance_link']} is {-low * 1000:.0f} mm below the ground at "
            f"t = {report['min_body_clearance_time_s']:.2f} s: raise the base there (or fold that leg) by at least "
            f"{-low * 1000:.0f} mm")


BALLISTIC_TOLERANCE = 3.0   # m/s^2: a flight's mean vertical acceleration this far from -g is not a flight


def floating_feet(report: dict) -> str | None:
    """Why the clip's longest "flight" is not one (every foot off the ground while the base does not fall: the
    source's feet do not reach the ground at this robot's proportions), or None."""
    accel = report.get("flight_vertical_accel_m_s2")
    if accel is None or report["flight_time_s"] < 0.1 or abs(accel + 9.81) <= BALLISTIC_TOLERANCE:
        return None
    return (f"no foot on the ground for {report['flight_time_s']:.2f} s while the base accelerates at {accel:+.1f} "
            f"m/s^2 (a flight falls at -9.8): the feet float")


def _flight_accel(clip: Clip, seg) -> float | None:
    # Second differences away from take-off and touch-down, where the arc meets the ground phases.
    if seg is None or seg[1] - seg[0] < 5:
        return None
    z = clip.root_pos[seg[0] + 1 : seg[1] - 1, 2]
    return float(np.mean(np.diff(z, 2)) * clip.fps**2)


def format_report(report: dict, title: str = "clip quality") -> str:
    """The report as a plain-text table (rich renders it when printed to a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=True)
    table.add_column("check")
    table.add_column("value", justify="right")
    accel = report["flight_vertical_accel_m_s2"]
    rows = [
        ("frames / duration", f"{report['frames']} / {report['duration_s']:.2f} s"),
        ("joint-limit violation frames", str(report["joint_limit_violation_frames"])),
        ("peak joint speed / limit", f"{report['peak_joint_speed_ratio']:.2f} ({report['peak_joint_speed_joint']})"),
        ("max foot penetration", f"{report['max_foot_penetration_m'] * 1000:.1f} mm"),
        *([("lowest body point", f"{report['min_body_clearance_m'] * 1000:.0f} mm ({report['min_body_clearance_link']}, "
                                 f"t = {report['min_body_clearance_time_s']:.2f} s)")]
          if "min_body_clearance_m" in report else []),
        ("max stance-foot skating", f"{report['max_stance_skating_m_s'] * 100:.2f} cm/s"),
        ("total pitch rotation", f"{report['total_pitch_deg']:.1f} deg"),
        ("apex base height", f"{report['apex_base_height_m']:.3f} m"),
        ("flight time (longest)", f"{report['flight_time_s']:.2f} s"),
        ("take-off vertical speed", f"{report['takeoff_vertical_speed_m_s']:.2f} m/s"),
        ("flight vertical accel", "-" if accel is None else f"{accel:.3f} m/s^2"),
    ]
    for name, v in report["joint_limit_violations"].items():
        rows.append((f"  limit: {name}", f"{v['frames']} frames, max {np.degrees(v['max_rad']):.1f} deg"))
    rows += _clamping_rows(report.get("clamping")) + _cycle_rows(report.get("cycle"))
    for row in rows:
        table.add_row(*row)
    console = Console(width=80, file=io.StringIO())
    console.print(table)
    through, floating = body_through_ground(report), floating_feet(report)
    return (console.file.getvalue() + (f"warning: the body goes through the ground: {through}\n" if through else "")
            + (f"warning: {floating}\n" if floating else ""))


def _clamping_rows(c: dict | None) -> list[tuple[str, str]]:
    if not c:
        return []
    rows = [("clamped to joint limits", f"{c['clamped_frames']} of {c['source_frames']} source frames")]
    if c.get("max_excess_joint"):
        rows.append(("  largest excess", f"{c['max_excess_rad']:.3f} rad ({np.degrees(c['max_excess_rad']):.1f} deg), "
                                         f"{c['max_excess_joint']}, frame {c['max_excess_frame']}"))
    for name, frames in c.get("clamped_frames_per_joint", {}).items():
        rows.append((f"  clamped: {name}", f"{frames} frames"))
    if c.get("foot_target_missed_frames"):
        rows.append(("foot targets not reached", f"{c['foot_target_missed_frames']} frames, max "
                     f"{c['max_foot_miss_m'] * 1000:.1f} mm ({c['max_foot_miss_foot']}, "
                     f"frame {c['max_foot_miss_frame']})"))
    if c.get("planted_foot_missed_frames"):
        rows.append(("planted feet not held", f"{c['planted_foot_missed_frames']} frames, max "
                     f"{c['max_planted_foot_miss_m'] * 1000:.1f} mm"))
    return rows


def _cycle_rows(c: dict | None) -> list[tuple[str, str]]:
    if not c:
        return []
    offsets = [name for name, on in (("position", c["offset_position"]), ("heading", c["offset_rotation"])) if on]
    return [("cycle displacement (x, y)", f"{c['displacement_m'][0]:.3f}, {c['displacement_m'][1]:.3f} m, "
                                          f"{c['mean_speed_m_s']:.2f} m/s"),
            ("cycle heading change", f"{c['heading_change_deg']:.1f} deg"),
            ("repetitions offset by", ", ".join(offsets) or "nothing (each repeats in place)")]
