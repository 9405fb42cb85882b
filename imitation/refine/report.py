"""The refinement report and its feasibility verdict, computed from a clip's stored arrays (numpy only).

`outcome(clip)` measures what a motion does: net turn about each body axis (the body-frame rotation
accumulated frame by frame, so a backflip is -360 degrees of pitch, not 0), apex, longest flight, end pose,
final tilt, lowest base height. `physics(clip, robot, kp, kd)` measures what it costs the robot: peak PD torque
(recomputed from the stored PD targets and states, clamped at the effort limits as the simulator does), the
largest joint-limit excess and foot penetration. `shortfalls` compares a refined clip's outcome with its
source's under the config's tolerances and names every one it misses.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from retarget.quality import flight_segments

from ..analysis.metrics import tilt

AXES = ("roll", "pitch", "yaw")


def net_rotation(root_quat_wxyz: np.ndarray) -> np.ndarray:
    """(T, 4) -> (3,) rad: sum of the frame-to-frame rotations about the body axes."""
    r = Rotation.from_quat(root_quat_wxyz, scalar_first=True)
    return (r[:-1].inv() * r[1:]).as_rotvec().sum(axis=0)


def outcome(clip) -> dict:
    """What the motion does, from its root and foot arrays."""
    turn = np.degrees(net_rotation(clip.root_quat))
    return {
        "net_turn_deg": dict(zip(AXES, (float(v) for v in turn))),
        "apex_m": float(clip.root_pos[:, 2].max()),
        "min_height_m": float(clip.root_pos[:, 2].min()),
        "flight_time_s": max((b - a for a, b in flight_segments(clip.foot_contact)), default=0) / clip.fps,
        "end_pos_m": [float(v) for v in clip.root_pos[-1]],
        "final_tilt_deg": float(np.degrees(tilt(clip.root_quat[-1]))),
        "duration_s": float(clip.duration),
    }


def physics(clip, robot, kp: float, kd: float) -> dict:
    """What the motion costs the robot: peak torque, joint-limit excess, foot penetration."""
    from retarget.clip import limit_excess

    worst = limit_excess(clip, robot)
    out = {
        "joint_limit_excess_rad": worst["excess_rad"], "limit_joint": worst["joint"], "limit_time_s": worst["time_s"],
        "foot_penetration_m": float(max(0.0, robot.foot_radius - clip.foot_pos[..., 2].min())),
        "penetration_time_s": float(np.unravel_index(clip.foot_pos[..., 2].argmin(), clip.foot_pos.shape[:2])[0]
                                    / clip.fps),
    }
    if clip.pd_target is not None:
        # Torque at frame k + 1 under target k, as the env reports it.
        tau = kp * (clip.pd_target[:-1] - clip.dof_pos[1:]) - kd * clip.dof_vel[1:]
        tau = np.clip(tau, -robot.effort, robot.effort)
        out["peak_torque_nm"] = float(np.abs(tau).max())
        j = int(np.abs(tau).max(axis=0).argmax())
        out["peak_torque_joint"] = robot.joint_names[j]
    return out


def shortfalls(result: dict, source: dict, tol: dict, body_contact_time: float | None,
               physics: dict | None = None) -> list[str]:
    """What a refined motion's `result` (outcome) misses of its `source`'s, and where its `physics` breaks what a
    clip may hold (the joint limits, as `read_clip` checks them; the feet's ground penetration), in words; [] when
    it is feasible."""
    from retarget.clip import LIMIT_TOLERANCE

    out = []
    if physics is not None:
        if physics["joint_limit_excess_rad"] > LIMIT_TOLERANCE:
            out.append(f"{physics.get('limit_joint', 'a joint')} {physics['joint_limit_excess_rad']:.3f} rad past its "
                       f"limit at {physics.get('limit_time_s', float('nan')):.2f} s (tolerance {LIMIT_TOLERANCE} rad)")
        if physics["foot_penetration_m"] > tol["foot_penetration_m"]:
            out.append(f"a foot {physics['foot_penetration_m'] * 1000:.0f} mm into the ground (tolerance "
                       f"{tol['foot_penetration_m'] * 1000:.0f} mm)")
    for axis in AXES:
        got, want = result["net_turn_deg"][axis], source["net_turn_deg"][axis]
        if abs(got - want) > tol["rotation_deg"]:
            out.append(f"{axis} turn {got:.0f} deg of {want:.0f} deg")
    if result["final_tilt_deg"] - source["final_tilt_deg"] > tol["final_tilt_deg"]:
        out.append(f"ends tilted {result['final_tilt_deg']:.0f} deg (source {source['final_tilt_deg']:.0f} deg)")
    off = float(np.hypot(*(np.subtract(result["end_pos_m"][:2], source["end_pos_m"][:2]))))
    if off > tol["end_position_m"]:
        out.append(f"ends {off:.2f} m off the source's end position")
    dz = result["end_pos_m"][2] - source["end_pos_m"][2]
    if abs(dz) > tol["end_height_m"]:
        out.append(f"ends {dz * 100:+.0f} cm off the source's end height")
    if result["apex_m"] < tol["apex_ratio"] * source["apex_m"]:
        out.append(f"apex {result['apex_m']:.2f} m of {source['apex_m']:.2f} m")
    if abs(result["flight_time_s"] - source["flight_time_s"]) > tol["flight_time_s"]:
        out.append(f"longest flight {result['flight_time_s']:.2f} s where the source's is {source['flight_time_s']:.2f} s")
    if result["min_height_m"] < source["min_height_m"] - tol["min_height_drop_m"]:
        out.append(f"base down to {result['min_height_m']:.3f} m (source's lowest {source['min_height_m']:.3f} m)")
    if body_contact_time is not None:
        out.append(f"body touches the ground at {body_contact_time:.2f} s")
    return out


def loop_shortfalls(loop: dict, tol: dict) -> list[str]:
    """What a refined cycle misses as a loop (imitation.refine.run.loop_check): it must end in the state it began
    in, and repeated, do what its source does by the success rule."""
    out = []
    if loop["closure_joint_rms_rad"] > tol["loop_closure_rad"]:
        out.append(f"the cycle ends with its joints {loop['closure_joint_rms_rad']:.3f} rad (RMS) from where it began "
                   f"(tolerance {tol['loop_closure_rad']} rad)")
    if not loop["follows_source"]:
        out.append(f"repeated, the refined cycle does not follow the source (failing: {', '.join(loop['failing'])})")
    return out


def shortfall_times(report: dict, tol: dict) -> list[float]:
    """Times (s) where the result breaks a physical tolerance (joint limit, foot penetration, body contact);
    [] when its misses are of the whole motion (turn, tilt, end pose, apex, flight)."""
    from retarget.clip import LIMIT_TOLERANCE

    p, out = report["physics"], []
    if p["joint_limit_excess_rad"] > LIMIT_TOLERANCE:
        out.append(p["limit_time_s"])
    if p["foot_penetration_m"] > tol["foot_penetration_m"] and "penetration_time_s" in p:
        out.append(p["penetration_time_s"])
    if report.get("body_contact_time_s") is not None:
        out.append(report["body_contact_time_s"])
    loop = report.get("loop")
    if loop and loop["closure_joint_rms_rad"] > tol["loop_closure_rad"]:
        out.append(report["result"].get("duration_s", float("inf")))
    return out


def format_report(report: dict) -> str:
    """The report as plain text lines."""
    res, src = report["result"], report["source"]
    lines = [f"refinement of {report['source_file']}: {report['candidates']:,} candidates "
             f"({report['faulted_candidates']} with physics faults) in {report['wall_time_s']:.0f} s"]
    lines.append(f"  {'':24s}{'source':>12s}{'replay before':>15s}{'refined':>12s}")
    before = report["before"]
    for axis in AXES:
        lines.append(f"  {axis + ' turn (deg)':24s}{src['net_turn_deg'][axis]:12.1f}"
                     f"{before['net_turn_deg'][axis]:15.1f}{res['net_turn_deg'][axis]:12.1f}")
    for key, label, fmt in (("apex_m", "apex (m)", ".3f"), ("min_height_m", "lowest base (m)", ".3f"),
                            ("flight_time_s", "flight time (s)", ".2f"), ("final_tilt_deg", "final tilt (deg)", ".1f")):
        lines.append(f"  {label:24s}{src[key]:12{fmt}}{before[key]:15{fmt}}{res[key]:12{fmt}}")
    err = report["end_error"]
    lines.append(f"  end pose error: {err['horizontal_m']:.3f} m horizontal, {err['height_m'] * 100:+.1f} cm height, "
                 f"{err['heading_deg']:.1f} deg heading")
    ph = report["physics"]
    lines.append(f"  peak torque {ph.get('peak_torque_nm', float('nan')):.1f} N m ({ph.get('peak_torque_joint', '-')}), "
                 f"joint-limit excess {ph['joint_limit_excess_rad']:.3f} rad, foot penetration "
                 f"{ph['foot_penetration_m'] * 1000:.1f} mm")
    lines.append(f"  cost per term (weighted, mean over {report['robust_copies']} robots)   before -> after")
    for term, b in report["cost_before"].items():
        a = report["cost_after"][term]
        if b or a:
            lines.append(f"    {term:22s}{b:10.4f} -> {a:.4f}")
    lines.append(f"    {'total':22s}{sum(report['cost_before'].values()):10.4f} -> {sum(report['cost_after'].values()):.4f}")
    lines.append(f"    {'nominal robot total':22s}{report['nominal_cost_before']:10.4f} -> {report['nominal_cost_after']:.4f}")
    for w in report.get("warnings", []):
        lines.append("  note: " + w)
    loop = report.get("loop")
    if loop:
        lines.append(f"  loop: the cycle closes within {loop['closure_joint_rms_rad']:.3f} rad (joint RMS), "
                     f"{loop['closure_height_m'] * 100:+.1f} cm, {loop['closure_tilt_deg']:+.1f} deg tilt; repeated, it "
                     + ("follows the source by the success rule" if loop["follows_source"] else
                        f"fails the success rule against the source ({', '.join(loop['failing'])})"))
    lines.append("  feasible" if not report["shortfalls"] else "  SHORT OF THE SOURCE: " + "; ".join(report["shortfalls"]))
    return "\n".join(lines) + "\n"


def end_error(result: dict, source: dict, refined_quat: np.ndarray, source_quat: np.ndarray) -> dict:
    """End pose error of a refined motion against its source."""
    heading = lambda q: Rotation.from_quat(q, scalar_first=True).apply([1.0, 0.0, 0.0])  # noqa: E731
    a, b = heading(refined_quat), heading(source_quat)
    yaw = np.degrees(np.arctan2(a[1], a[0]) - np.arctan2(b[1], b[0]))
    return {
        "horizontal_m": float(np.hypot(*(np.subtract(result["end_pos_m"][:2], source["end_pos_m"][:2])))),
        "height_m": float(result["end_pos_m"][2] - source["end_pos_m"][2]),
        "heading_deg": float((yaw + 180.0) % 360.0 - 180.0),
    }


def warnings(report: dict) -> list[str]:
    """What a feasible-looking result should not hide: a search that made the robots on average worse than the
    unrefined replay (the result then fits the nominal robot only)."""
    out = []
    before, after = sum(report["cost_before"].values()), sum(report["cost_after"].values())
    if after > before:
        out.append(f"the mean cost over the {report['robust_copies']} robots rose ({before:.2f} -> {after:.2f}) while "
                   f"the nominal robot's went {report['nominal_cost_before']:.2f} -> {report['nominal_cost_after']:.2f}: "
                   "the targets fit the nominal robot, not the randomized ones")
    return out
