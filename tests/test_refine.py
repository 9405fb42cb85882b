"""Physics refinement (`imitation refine`): the search space, the search (on a simulator-free dummy), the report
against independent computations, bad input, and a real refinement in the session's Genesis scene."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.integrate import cumulative_trapezoid
from scipy.spatial.transform import Rotation

from imitation.cli import main
from imitation.refine import report as rep
from imitation.refine.cost import TERMS
from imitation.refine.knots import Knots, is_sagittal
from imitation.refine.search import FAULT_COST, RefineStopped, SearchState, load_checkpoint, search
from retarget.clip import Clip, read_clip
from retarget.robot import PROJECT_ROOT, load_robot
from test_bad_inputs import CORPUS, EXPECTED, assert_one_error_line, leftovers

ROBOT = load_robot()


# ----------------------------------------------------------------------------- the search space


def test_knots_interpolate_between_their_values_and_mirror_the_hips():
    dt = 0.02
    knots = Knots(num_frames=51, dt=dt, knot_dt=0.1, symmetric=True, robot=ROBOT)
    assert knots.num_knots == 11 and knots.per_knot == 6 and knots.size == 66
    values = np.arange(knots.size, dtype=float).reshape(11, 6) / 100.0
    off = knots.offsets(values.reshape(1, -1))[0].numpy()        # (51, 12)
    assert off.shape == (51, 12)
    front, rear = [0, 3], [6, 9]                                   # FR, FL / RR, RL hips in robot order
    # At knot j (frame 5 j) the offsets are the knot's values; FR's hip is FL's mirrored.
    for j in range(11):
        f = 5 * j
        np.testing.assert_allclose(off[f, 3:6], values[j, 0:3], atol=1e-6)     # FL = front values
        np.testing.assert_allclose(off[f, 0], -values[j, 0], atol=1e-6)        # FR hip mirrored
        np.testing.assert_allclose(off[f, 1:3], values[j, 1:3], atol=1e-6)
        np.testing.assert_allclose(off[f, 9:12], values[j, 3:6], atol=1e-6)    # RL = rear values
    # Between knots: linear (frame 2 of 5 between knots 3 and 4).
    np.testing.assert_allclose(off[17], 0.6 * off[15] + 0.4 * off[20], atol=1e-6)
    assert front and rear
    full = Knots(num_frames=51, dt=dt, knot_dt=0.1, symmetric=False, robot=ROBOT)
    v = np.random.default_rng(0).normal(size=(2, full.size))
    np.testing.assert_allclose(full.offsets(v).numpy()[:, ::5], v.reshape(2, 11, 12), atol=1e-6)


def test_windows_cover_every_knot_in_order():
    knots = Knots(num_frames=101, dt=0.02, knot_dt=0.1, symmetric=True, robot=ROBOT)
    wins = knots.windows(6, 3)
    assert wins[0] == (0, 6) and wins[-1][1] == knots.num_knots
    assert all(b[0] - a[0] == 3 for a, b in zip(wins, wins[1:]))
    covered = set().union(*(range(*w) for w in wins))
    assert covered == set(range(knots.num_knots))
    assert knots.last_frame((0, 6), 0.02, 0.6, 101) == 55      # knot 5 at 0.5 s + 0.6 s horizon


def test_periodic_knots_end_where_they_begin():
    """A loop's offsets: the knot at the cycle's end is the first knot, so the next cycle's PD targets continue
    without a jump; one knot fewer to search, and the first window touches the cycle's end too."""
    open_, loop = (Knots(46, 0.02, 0.1, False, ROBOT, periodic=p) for p in (False, True))   # 0.9 s: 10 knots
    assert (open_.num_knots, loop.num_knots) == (10, 9) and loop.size == 9 * 12
    v = np.random.default_rng(1).normal(size=(3, loop.size))
    off = loop.offsets(v).numpy()
    np.testing.assert_allclose(off[:, -1], off[:, 0], atol=1e-6)
    np.testing.assert_allclose(off[:, ::5][:, :9], v.reshape(3, 9, 12), atol=1e-6)   # knot j at frame 5 j
    np.testing.assert_allclose(off[:, 42], 0.6 * off[:, 40] + 0.4 * off[:, 0], atol=1e-6)  # last knot -> first
    assert loop.first_frame((0, 3)) == 0 and loop.first_frame((3, 9)) == 11


def test_a_loop_refinement_is_judged_on_closing_and_on_the_source_s_body_motion():
    from imitation.config import load_config
    from imitation.refine.run import loop_check
    from retarget.importer import load_motion

    cfg = load_config(PROJECT_ROOT / "configs" / "imitation.yaml")
    src = load_motion(PROJECT_ROOT / "motions" / "dog_pace.txt", ROBOT).resample(1.0 / cfg["env"]["dt"])
    tol = cfg["refine"]["tolerances"]
    itself = loop_check(src, src, cfg, ROBOT)
    assert itself["follows_source"] and itself["failing"] == []
    assert itself["closure_joint_rms_rad"] == pytest.approx(
        np.sqrt(np.mean(np.square(src.dof_pos[-1] - src.dof_pos[0]))), abs=1e-9)
    assert rep.loop_shortfalls(itself, tol) == []
    # The first frame held (a robot standing where the pace starts): its body does not move as the source's.
    n = src.num_frames
    stand = Clip(fps=src.fps, root_pos=np.repeat(src.root_pos[:1], n, 0), root_quat=np.repeat(src.root_quat[:1], n, 0),
                 dof_pos=np.repeat(src.dof_pos[:1], n, 0), foot_pos=np.repeat(src.foot_pos[:1], n, 0),
                 foot_contact=np.repeat(src.foot_contact[:1], n, 0), joint_names=src.joint_names,
                 foot_names=src.foot_names, loop_mode="wrap")
    held = loop_check(stand, src, cfg, ROBOT)
    assert not held["follows_source"] and "speed" in held["failing"] and "feet" not in held["failing"]
    assert held["closure_joint_rms_rad"] == 0.0
    assert any("does not follow the source" in m for m in rep.loop_shortfalls(held, tol))
    # A cycle that ends 0.2 rad (RMS) from where it began does not close.
    assert "rad (RMS) from where it began" in rep.loop_shortfalls({**itself, "closure_joint_rms_rad": 0.2}, tol)[0]


def test_loop_only_cost_weights_leave_the_caches_of_motions_that_end_valid():
    from imitation.refine.run import _searched

    base = {"population": 32, "costs": {"root_pos": 4.0, "closure_joints": 5.0, "closure_velocity": 0.5},
            "tolerances": {}, "retries": 1, "retry_generations": 60}
    other = {**base, "costs": {**base["costs"], "closure_joints": 1.0}}
    assert _searched(base, False, loop=False) == _searched(other, False, loop=False)
    assert _searched(base, False, loop=True) != _searched(other, False, loop=True)


def _clip(root_pos, rpy_deg, dof_pos, fps=50.0):
    n = len(root_pos)
    quat = Rotation.from_euler("ZYX", np.radians(rpy_deg)[:, ::-1]).as_quat(scalar_first=True)
    return Clip(fps=fps, root_pos=root_pos, root_quat=quat, dof_pos=dof_pos, foot_pos=np.zeros((n, 4, 3)),
                foot_contact=np.ones((n, 4)), joint_names=ROBOT.joint_names, foot_names=ROBOT.foot_names)


def test_a_retry_searches_the_windows_around_the_failures():
    from imitation.refine.search import retry_stages, stages

    knots = Knots(101, 0.02, 0.1, False, ROBOT)          # 2 s: knots every 0.1 s
    settings = {"window_knots": 6, "window_stride": 3, "horizon_s": 0.6, "generations": 40, "sigma0": 0.25,
                "polish_generations": 10, "retry_generations": 60}
    first = stages(knots, settings)
    spans = [(knots.times[s["knots"][0]], s["last_frame"] * 0.02) for s in first[:-1]]
    t = 1.25
    holding = [i for i, (a, b) in enumerate(spans) if a <= t <= b]
    want = sorted({max(0, i - 1) for i in holding} | set(holding))
    got = retry_stages(knots, settings, [t])
    assert [s["knots"] for s in got] == [first[i]["knots"] for i in want]
    assert all(s["generations"] == 60 and s["sigma"] == 0.25 for s in got)
    assert [s["knots"] for s in retry_stages(knots, settings, [])] == [s["knots"] for s in first[:-1]]  # no polish


def test_sagittal_motions_are_told_from_the_others():
    n = 30
    pos = np.column_stack([np.linspace(0, 0.5, n), np.zeros(n), np.full(n, 0.3)])
    stand = np.tile(ROBOT.default_pose, (n, 1))
    pitch = np.column_stack([np.zeros(n), np.linspace(0, -300, n), np.zeros(n)])   # through +-90 deg pitch
    assert is_sagittal(_clip(pos, pitch, stand), ROBOT)
    yaw = np.column_stack([np.zeros(n), np.zeros(n), np.linspace(0, 90, n)])
    assert not is_sagittal(_clip(pos, yaw, stand), ROBOT)
    side = pos.copy()
    side[:, 1] = np.linspace(0, 0.3, n)
    assert not is_sagittal(_clip(side, np.zeros((n, 3)), stand), ROBOT)
    lopsided = stand.copy()
    lopsided[:, 1] += 0.3                                                          # FR thigh only
    assert not is_sagittal(_clip(pos, np.zeros((n, 3)), lopsided), ROBOT)


# ----------------------------------------------------------------------------- the search, without a simulator


class QuadraticRollouts:
    """A stand-in for the batched scene: cost = |params - target|^2 over the scored knots; candidates whose
    sixth value is above `blow_up` "fault" (their cost is +inf, as a physics fault's)."""

    env = SimpleNamespace(dr_on=False)
    pool_size = 1 << 30

    def __init__(self, knots, target, blow_up=0.2):
        self.knots, self.target, self.blow_up = knots, target, blow_up
        self.num_envs = 16
        self.weights = np.ones(len(TERMS))
        self.term_names = TERMS
        self.prepared = []

    def prepare(self, params, first_frame, draws):
        self.prepared.append(first_frame)

    def __call__(self, params, last_frame, physics=None, prefix=None):
        last_knot = int(np.searchsorted(self.knots.times, last_frame * self.knots.dt, side="right"))
        d = (params - self.target)[:, : last_knot * self.knots.per_knot]
        terms = np.zeros((len(params), len(TERMS)))
        # As the real rollouts' randomized robots: a draw from numpy's global random state every call.
        terms[:, 0] = np.sum(d * d, axis=1) * np.random.uniform(0.9, 1.1)
        total = terms @ self.weights
        total[params[:, 5] > self.blow_up] = np.inf
        return terms, total


SETTINGS = {"window_knots": 3, "window_stride": 2, "horizon_s": 0.1, "generations": 30, "polish_generations": 10,
            "sigma0": 0.3, "bound": 1.2}


def _run(tmp_path, seed, stop_after=None, state=None, name="ckpt"):
    knots = Knots(num_frames=31, dt=0.02, knot_dt=0.1, symmetric=True, robot=ROBOT)   # 7 knots x 6
    target = np.linspace(-0.4, 0.4, knots.size)
    roll = QuadraticRollouts(knots, target)
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return stop_after is not None and calls["n"] >= stop_after

    state = state or SearchState(best=np.zeros(knots.size))
    out = search(roll, SETTINGS, seed, state, tmp_path / name, should_stop, progress=lambda *a, **k: None)
    return out, roll, target


def test_search_lowers_the_cost_counts_faults_and_is_deterministic(tmp_path):
    state, roll, target = _run(tmp_path, seed=3)
    start = float(np.sum(target ** 2))
    end = float(np.sum((state.best - target) ** 2))
    assert end < 0.1 * start
    assert state.candidates == 16 * (30 * 3 + 10)                    # 3 windows of 30 generations, polish 10
    assert state.faulted > 0                                           # some candidates blew up; the search went on
    # Windows 2 and 3 start from shared states, simulated once up to the frame after their first knot's
    # predecessor (knots at 0.2 s and 0.4 s, 0.1 s apart, 0.02 s frames); window 1 and the polish from t = 0.
    assert roll.prepared == [6, 16]
    again, _, _ = _run(tmp_path, seed=3, name="again")
    np.testing.assert_array_equal(again.best, state.best)
    other, _, _ = _run(tmp_path, seed=4, name="other")
    assert not np.array_equal(other.best, state.best)
    assert FAULT_COST > 1e6


def test_a_stopped_search_resumes_to_the_same_result(tmp_path):
    full, _, _ = _run(tmp_path, seed=5, name="full")
    with pytest.raises(RefineStopped):
        _run(tmp_path, seed=5, stop_after=35, name="part")        # stops in the middle of the second window
    saved = load_checkpoint(tmp_path / "part")
    assert saved.stage == 1 and saved.generation == 5 and saved.candidates == 16 * 35
    np.random.seed(999)                                            # a resumed process starts with another state
    resumed, _, _ = _run(tmp_path, seed=5, state=saved, name="part")
    np.testing.assert_array_equal(resumed.best, full.best)
    assert resumed.candidates == full.candidates


# ----------------------------------------------------------------------------- the report


def _flip_clip(turn_deg=-360.0, n=101, fps=50.0, end_x=-0.6):
    t = np.arange(n) / fps
    s = np.clip((t - 0.4) / 0.8, 0, 1)
    pitch = turn_deg * (3 * s ** 2 - 2 * s ** 3)
    z = 0.3 + 0.45 * np.sin(np.pi * s)
    pos = np.column_stack([end_x * s, np.zeros(n), z])
    clip = _clip(pos, np.column_stack([np.zeros(n), pitch, np.zeros(n)]), np.tile(ROBOT.default_pose, (n, 1)), fps)
    clip.foot_contact[(s > 0.1) & (s < 0.9)] = 0
    return clip


def test_outcome_against_independent_computations():
    clip = _flip_clip()
    out = rep.outcome(clip)
    # Net pitch turn: the trapezoid integral of the body pitch rate (the clip's central-difference velocities).
    body_rate = Rotation.from_quat(clip.root_quat, scalar_first=True).inv().apply(clip.root_ang_vel)[:, 1]
    integral = math.degrees(cumulative_trapezoid(body_rate, dx=1 / clip.fps)[-1])
    assert out["net_turn_deg"]["pitch"] == pytest.approx(-360.0, abs=0.01)
    assert out["net_turn_deg"]["pitch"] == pytest.approx(integral, abs=3.0)
    assert abs(out["net_turn_deg"]["roll"]) < 1e-6 and abs(out["net_turn_deg"]["yaw"]) < 1e-6
    assert out["apex_m"] == pytest.approx(clip.root_pos[:, 2].max())
    airborne = np.flatnonzero(~clip.foot_contact.any(axis=1))
    assert out["flight_time_s"] == pytest.approx(len(airborne) / clip.fps)     # one contiguous flight
    assert out["final_tilt_deg"] == pytest.approx(0.0, abs=1e-4)
    assert out["end_pos_m"] == pytest.approx([-0.6, 0.0, 0.3])


def test_shortfalls_name_what_a_refined_motion_misses():
    src = rep.outcome(_flip_clip())
    tol = {"rotation_deg": 15.0, "final_tilt_deg": 10.0, "end_position_m": 0.3, "end_height_m": 0.05,
           "apex_ratio": 0.75, "min_height_drop_m": 0.07, "flight_time_s": 0.1, "foot_penetration_m": 0.05}
    assert rep.shortfalls(src, src, tol, None) == []
    hop = {**src, "flight_time_s": src["flight_time_s"] + 0.24}          # a stand made into a hop
    assert rep.shortfalls(hop, src, tol, None) == [
        f"longest flight {src['flight_time_s'] + 0.24:.2f} s where the source's is {src['flight_time_s']:.2f} s"]
    physics = {"joint_limit_excess_rad": 0.112, "limit_joint": "FL_calf_joint", "limit_time_s": 0.66,
               "foot_penetration_m": 0.06, "penetration_time_s": 1.1}
    assert rep.shortfalls(src, src, tol, None, physics) == [
        "FL_calf_joint 0.112 rad past its limit at 0.66 s (tolerance 0.1 rad)",
        "a foot 60 mm into the ground (tolerance 50 mm)"]
    assert rep.shortfall_times({"physics": physics, "body_contact_time_s": 0.3}, tol) == [0.66, 1.1, 0.3]
    assert rep.shortfall_times({"physics": {**physics, "joint_limit_excess_rad": 0.05, "foot_penetration_m": 0.0},
                                "body_contact_time_s": None}, tol) == []
    short = rep.outcome(_flip_clip(turn_deg=-210.0, end_x=0.0))
    msgs = rep.shortfalls(short, src, tol, 0.84)
    assert "pitch turn -210 deg of -360 deg" in msgs
    assert "ends 0.60 m off the source's end position" in msgs
    assert "body touches the ground at 0.84 s" in msgs
    assert any(m.startswith("ends tilted 150 deg") for m in msgs)


def test_physics_figures_from_the_stored_arrays():
    clip = _flip_clip()
    n = clip.num_frames
    rng = np.random.default_rng(1)
    clip.pd_target = clip.dof_pos + rng.normal(scale=0.3, size=(n, 12))
    clip.dof_pos = clip.dof_pos.copy()
    clip.dof_pos[40, 2] = ROBOT.lower[2] - 0.05                       # FR calf 0.05 rad past its limit
    clip.foot_pos[..., 2] = 0.03
    clip.foot_pos[50, 1, 2] = 0.012                                   # FL foot 10 mm into the ground
    ph = rep.physics(clip, ROBOT, kp=70.0, kd=3.0)
    peak = 0.0
    for k in range(1, n):                                             # the torque of each step, one by one
        for j in range(12):
            tau = 70.0 * (clip.pd_target[k - 1, j] - clip.dof_pos[k, j]) - 3.0 * clip.dof_vel[k, j]
            peak = max(peak, min(abs(tau), ROBOT.effort[j]))
    assert ph["peak_torque_nm"] == pytest.approx(peak)
    assert ph["joint_limit_excess_rad"] == pytest.approx(0.05)
    assert ph["foot_penetration_m"] == pytest.approx(0.010)


# ----------------------------------------------------------------------------- bad input: as retarget, no Genesis


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_refine_refuses_what_retarget_refuses(name, tmp_path, capsys):
    source = CORPUS / name
    rc = main(["refine", str(source), "-o", str(tmp_path / "out.h5")])
    out, err = capsys.readouterr()
    assert rc == 2
    assert_one_error_line(err, source, EXPECTED[name])
    assert out == "" and leftovers(tmp_path) == []


def test_refine_refuses_a_bad_clip_and_a_missing_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    assert main(["refine", str(bad), "-o", str(tmp_path / "out.h5")]) == 2
    assert "not a readable HDF5 clip" in capsys.readouterr().err
    good = CORPUS / "good" / "stand.yaml"
    assert main(["refine", str(good), "-o", str(tmp_path / "out.h5"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "no refinement checkpoint to resume" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]


# ----------------------------------------------------------------------------- a real refinement (Genesis)

FAST = {"refine": {"knot_dt": 0.5, "window_knots": 20, "generations": 6, "sigma0": 0.1, "robust_copies": 1,
                   "retries": 0}}


@pytest.fixture(scope="module")
def refined(env, hop_clip_path, env_config_path, tmp_path_factory):
    from imitation.refine.run import refine_motion

    out = tmp_path_factory.mktemp("refine") / "hop_refined.h5"
    lines = []
    result = refine_motion(hop_clip_path, out, config=env_config_path, overrides=FAST, env=env,
                           json_path=out.with_suffix(".json"), allow_partial=True,
                           progress=lambda *a, **k: lines.append(" ".join(map(str, a))))
    return result, out, lines


@pytest.mark.genesis
def test_refinement_lowers_the_cost_and_writes_a_clip(refined, env):
    result, out, lines = refined
    before, after = result.report["cost_before"], result.report["cost_after"]
    assert sum(after.values()) < sum(before.values())
    assert result.report["candidates"] == env.num_envs * 6
    clip = read_clip(out, env.robot_desc)
    assert clip.pd_target is not None and clip.pd_target.shape == (clip.num_frames, 12)
    assert clip.num_frames == env.ref.num_frames and clip.fps == pytest.approx(1 / env.dt)
    assert clip.retarget_settings["refine"]["generations"] == 6 and "CMA-ES" in clip.retarget_settings["method"]
    assert clip.quality["refinement"]["cost_after"] == pytest.approx(after)
    assert json.loads(out.with_suffix(".json").read_text())["candidates"] == result.report["candidates"]
    assert any("gen 6/6" in line and "candidates/s" in line and "ETA" in line for line in lines)
    assert not out.with_name(out.name + ".refine-checkpoint").exists()


@pytest.mark.all_kernels
@pytest.mark.genesis
def test_candidates_over_two_processes_refine_exactly_as_one(refined, env, hop_clip_path, env_config_path, tmp_path):
    from imitation.refine.run import refine_motion

    result, out, _ = refined
    lines = []
    two = refine_motion(hop_clip_path, tmp_path / "two.h5", config=env_config_path, overrides=FAST, env=env, jobs=2,
                        allow_partial=True, progress=lambda *a, **k: lines.append(" ".join(map(str, a))))
    # Half the candidates of every generation ran in a helper process with its own scene: the same search.
    assert any("over 2 processes" in line for line in lines)
    assert two.report["candidates"] == result.report["candidates"]
    assert two.report["cost_after"] == pytest.approx(result.report["cost_after"], rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(read_clip(tmp_path / "two.h5", env.robot_desc).pd_target,
                               read_clip(out, env.robot_desc).pd_target, atol=1e-6)


@pytest.mark.genesis
def test_stored_pd_targets_replay_the_stored_trajectory(refined, env):
    _, out, _ = refined
    clip = read_clip(out, env.robot_desc)
    steps = clip.num_frames - 1
    n = env.num_envs
    pos = [env.root_pos.clone()]
    with env.playback(steps, dr_ranges={"friction": [1.0, 1.0], "added_base_mass": [0.0, 0.0],
                                        "kp_scale": [1.0, 1.0], "kd_scale": [1.0, 1.0],
                                        "action_latency_probability": 0.0},
                      latency=False, residual_base=torch.tensor(clip.pd_target), action_scale=1.0):
        env.reset_envs(torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.long))
        pos = [env.root_pos.clone()]
        for _ in range(steps):
            env.step(torch.zeros(n, 12))                          # open loop: the stored targets alone
            pos.append(env.root_pos.clone())
    sim = torch.stack(pos, 1).double().numpy()                    # (n, T, 3)
    err = np.linalg.norm(sim - clip.root_pos[None], axis=-1)
    assert err.max() < 0.01, f"replay drifts {err.max():.4f} m from the stored trajectory"


@pytest.mark.genesis
def test_report_matches_the_stored_arrays(refined, env):
    result, out, _ = refined
    clip = read_clip(out, env.robot_desc)
    r = result.report["result"]
    assert r["apex_m"] == pytest.approx(clip.root_pos[:, 2].max())
    assert r["min_height_m"] == pytest.approx(clip.root_pos[:, 2].min())
    # Net pitch from the simulator's own body rates (stored), integrated: agrees with the attitude-based turn.
    rate = Rotation.from_quat(clip.root_quat, scalar_first=True).inv().apply(clip.root_ang_vel)[:, 1]
    assert r["net_turn_deg"]["pitch"] == pytest.approx(math.degrees(np.trapezoid(rate, dx=env.dt)), abs=1.0)
    src = read_clip(env.cfg["clip"], env.robot_desc)
    assert result.report["end_error"]["horizontal_m"] == pytest.approx(
        np.hypot(*(clip.root_pos[-1, :2] - src.root_pos[-1, :2])), abs=1e-9)
    assert result.report["physics"]["foot_penetration_m"] == pytest.approx(
        max(0.0, env.robot_desc.foot_radius - clip.foot_pos[..., 2].min()))


@pytest.mark.genesis
def test_an_infeasible_refinement_writes_nothing(env, hop_clip_path, env_config_path, tmp_path):
    from imitation.refine.run import refine_motion
    from retarget.errors import InputError

    out = tmp_path / "short.h5"
    impossible = {"refine": {**FAST["refine"], "generations": 1, "retries": 1, "retry_generations": 2,
                             "tolerances": {"apex_ratio": 3.0}}}
    lines = []
    with pytest.raises(InputError, match=r"not feasible within the refinement budget: apex 0\.\d\d m of 0\.\d\d m.*"
                                         r"nothing written") as e:
        refine_motion(hop_clip_path, out, config=env_config_path, overrides=impossible, env=env,
                      progress=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert "\n" not in str(e.value)
    # It tried again before giving up: one retry over every window (the apex has no time), 2 generations each.
    retry = [line for line in lines if line.startswith("not feasible yet (apex")]
    assert len(retry) == 1 and "retry 1 of 1 over 1 windows x 2 generations" in retry[0]
    assert sum("retry window 1/1" in line for line in lines) == 2
    assert not out.exists()


def _rollouts(env, knot_dt: float, copies: int):
    """(Rollouts of `copies` robots per candidate on the session's scene, its knots, the playback it needs)."""
    from imitation.config import NOMINAL_DR, defaults
    from imitation.refine.cost import Cost
    from imitation.refine.knots import Knots
    from imitation.refine.search import Rollouts

    robot = env.robot_desc
    knots = Knots(env.ref.num_frames, env.dt, knot_dt, True, robot, env.device)
    cost = Cost(env.ref, defaults()["refine"]["costs"], 0.03, (robot.lower, robot.upper, robot.effort),
                env.num_envs, env.device)
    ranges = {**defaults()["domain_randomization"], "action_latency_probability": 0.5}
    mode = env.playback(env.ref.last, dr_ranges=NOMINAL_DR, latency=False, residual_base=env.ref.joints_ahead(1),
                        action_scale=1.0)
    return Rollouts(env, knots, cost, copies=copies, ranges=ranges if copies > 1 else None), knots, mode


@pytest.mark.genesis
def test_robust_copies_run_the_nominal_robot_and_randomized_ones(env):
    nominal, knots, mode = _rollouts(env, 0.5, 1)
    robust, _, _ = _rollouts(env, 0.5, 4)
    params = np.zeros((2, knots.size))
    with mode:
        _, total1 = nominal(params, env.ref.last)
        assert robust.num_envs == 2                                     # 8 envs = 2 candidates x 4 robots
        _, total4 = robust(params, env.ref.last, rng=np.random.RandomState(0))
        copies = robust.copy_totals
        _, again = robust(params, env.ref.last, rng=np.random.RandomState(0))
    # Copy 0 is the nominal robot: the same cost as the nominal-only rollout; the randomized copies differ from it,
    # are the same for both (identical) candidates, and the candidate's cost is their mean.
    np.testing.assert_allclose(copies[:, 0], total1, rtol=1e-5)
    np.testing.assert_allclose(copies[0], copies[1], rtol=1e-5)
    assert np.abs(copies[0, 1:] - copies[0, 0]).max() > 1e-3
    np.testing.assert_allclose(total4, copies.mean(1), rtol=1e-6)
    np.testing.assert_allclose(again, total4, rtol=1e-6)             # the same draws: the same costs


@pytest.mark.genesis
def test_candidates_continue_from_shared_start_states_as_from_t0(env):
    from imitation.refine.search import physics_draws

    robust, knots, mode = _rollouts(env, 0.2, 4)
    window = (2, knots.num_knots)
    first = knots.first_frame(window)
    assert first == int(round(knots.times[1] / env.dt)) + 1
    rng = np.random.default_rng(0)
    sl = knots.value_slice(window)
    params = np.tile(rng.normal(0.0, 0.1, knots.size), (2, 1))      # the incumbent, and a candidate that
    params[1, sl] += rng.normal(0.0, 0.2, sl.stop - sl.start)       # differs from it in the window's knots
    with mode:
        assert robust.pool_size == 2                                    # 8 envs: the nominal robot + 2 x 3 copies
        draws = physics_draws(robust, 7, 0, 1, 2)
        assert any(d[1].any() for d in draws) and not np.allclose(draws[0][0], draws[1][0])
        _, from_zero = robust(params, env.ref.last, physics=draws[1])
        copies_from_zero = robust.copy_totals
        robust.prepare(params[0], first, draws)
        _, continued = robust(params, env.ref.last, physics=draws[1], prefix=1)
    # The same costs, robot by robot, as the rollouts from t = 0 with the same physics: the candidates' shared
    # start is the state they all reach at `first`.
    np.testing.assert_allclose(robust.copy_totals, copies_from_zero, rtol=2e-3)
    np.testing.assert_allclose(continued, from_zero, rtol=2e-3)
    assert abs(from_zero[1] - from_zero[0]) > 1e-3                     # the two candidates differ


# ----------------------------------------------------------------------------- the repository's cached refinements


@pytest.mark.parametrize("motion", ["backflip", "jump", "hop_turn"])
def test_the_cached_refinements_are_current(motion):
    from imitation.config import load_config
    from imitation.refine.run import DEFAULT_CONFIG, cache_status
    from retarget.robot import PROJECT_ROOT

    cfg = load_config(PROJECT_ROOT / DEFAULT_CONFIG)
    source = PROJECT_ROOT / "motions" / f"{motion}.yaml"
    cache = PROJECT_ROOT / "motions" / "refined" / f"{motion}.h5"
    assert cache_status(source, cache, cfg) is None
    clip = read_clip(cache, ROBOT)
    assert clip.pd_target is not None and clip.quality["refinement"]["shortfalls"] == []


def test_a_stale_cache_is_told_apart(tmp_path):
    from imitation.config import load_config
    from imitation.refine.run import DEFAULT_CONFIG, cache_status
    from retarget.robot import PROJECT_ROOT

    cfg = load_config(PROJECT_ROOT / DEFAULT_CONFIG)
    cache = PROJECT_ROOT / "motions" / "refined" / "backflip.h5"
    edited = tmp_path / "backflip.yaml"
    edited.write_text((PROJECT_ROOT / "motions" / "backflip.yaml").read_text() + "# one more comment\n")
    assert "changed since" in cache_status(edited, cache, cfg)
    other = load_config(PROJECT_ROOT / DEFAULT_CONFIG, {"refine": {"generations": 3}})
    assert "other settings" in cache_status(PROJECT_ROOT / "motions" / "backflip.yaml", cache, other)
    assert "other settings" in cache_status(PROJECT_ROOT / "motions" / "backflip.yaml", cache, cfg, seed=2)
    assert cache_status(PROJECT_ROOT / "motions" / "backflip.yaml", tmp_path / "none.h5", cfg) == "no cached refinement"
    # Tolerances judge a result, they do not make it: a looser one keeps the cache, one it misses does not.
    looser = load_config(PROJECT_ROOT / DEFAULT_CONFIG, {"refine": {"tolerances": {"rotation_deg": 40.0}}})
    assert cache_status(PROJECT_ROOT / "motions" / "backflip.yaml", cache, looser) is None
    tighter = load_config(PROJECT_ROOT / DEFAULT_CONFIG, {"refine": {"tolerances": {"apex_ratio": 2.0}}})
    assert "misses the current tolerances (apex" in cache_status(PROJECT_ROOT / "motions" / "backflip.yaml", cache,
                                                                 tighter)


def test_a_partial_result_past_a_joint_limit_is_clamped_into_what_the_clip_check_accepts():
    """--allow-partial writes what train reads: simulated joints further past a URDF limit than the shared clip
    check's tolerance are clamped into it, the rest untouched; a clip within it is written as it is."""
    from dataclasses import replace

    from retarget.clip import LIMIT_TOLERANCE, check_robot, limit_excess
    from retarget.errors import InputError
    from retarget.robot import load_robot

    from imitation.refine.run import _within_limit_tolerance
    from synthetic_clip import hop_clip

    robot = load_robot()
    clip = hop_clip(robot)
    assert _within_limit_tolerance(clip, robot, print) is clip
    bad = clip.dof_pos.copy()
    j = robot.joint_names.index("FL_calf_joint")
    bad[10:13, j] = robot.lower[j] - 0.111
    past = replace(clip, dof_pos=bad)
    with pytest.raises(InputError, match="outside"):
        check_robot(past, robot, "refined.h5")
    said = []
    fixed = _within_limit_tolerance(past, robot, lambda msg, end="": said.append(msg))
    check_robot(fixed, robot, "refined.h5")                         # train and evaluation accept it
    assert LIMIT_TOLERANCE * 0.98 < limit_excess(fixed, robot)["excess_rad"] <= LIMIT_TOLERANCE
    changed = (fixed.dof_pos != past.dof_pos).any(1)
    assert changed.sum() == 3 and changed[10:13].all()
    assert "3 frames" in said[0] and "FL_calf_joint" in said[0]
