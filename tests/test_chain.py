"""Chained clips: each segment starts where the last ended, loops run through their offset cycles, the seams blend
without a jump, and bad segments are refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from retarget.chain import STAND, Segment, chain, unrolled
from retarget.clip import cycle_delta, read_clip
from retarget.errors import InputError
from retarget.robot import load_robot

ROOT = Path(__file__).resolve().parent.parent
TROT = ROOT / "motions" / "retargeted" / "trot.h5"
JUMP = ROOT / "motions" / "refined" / "jump.h5"


@pytest.fixture(scope="module")
def robot():
    return load_robot()


def _heading(q):
    f = Rotation.from_quat(q, scalar_first=True).apply([1.0, 0.0, 0.0])
    return np.arctan2(f[..., 1], f[..., 0])


def test_a_loop_unrolls_through_its_offset_cycles():
    clip = read_clip(TROT).resample(50.0)
    assert clip.loop_mode == "wrap" and clip.cycle_offset_position
    delta, dyaw = cycle_delta(clip.root_pos, clip.root_quat)
    n = clip.num_frames - 1                                     # frames per cycle
    u = unrolled(clip, 2.5 * clip.duration, 50.0)
    assert len(u["root_pos"]) == int(round(2.5 * n)) + 1
    np.testing.assert_allclose(u["dof_pos"][n + 7], clip.dof_pos[7], atol=1e-6)   # the cycle repeats its joints
    turned = Rotation.from_euler("z", dyaw if clip.cycle_offset_rotation else 0.0)
    np.testing.assert_allclose(u["root_pos"][n + 7, :2],        # ... one displacement further on
                               (turned.apply(clip.root_pos[7] - clip.root_pos[0] * [1, 1, 0]) +
                                clip.root_pos[0] * [1, 1, 0] + delta)[:2], atol=1e-6)
    steps = np.linalg.norm(np.diff(u["root_pos"][:, :2], axis=0), axis=1)
    assert steps.max() < 3 * np.median(steps) + 1e-3           # no jump back at the cycle boundaries


def test_segments_continue_where_the_last_ended_and_blend_in(robot):
    trot, jump = read_clip(TROT), read_clip(JUMP)
    out = chain([Segment(STAND, 1.0), Segment(trot, 3.0), Segment(jump, None)], robot, fps=50.0, blend_s=0.3)
    stand_n, trot_n = 51, 151
    assert out.num_frames == stand_n + trot_n + read_clip(JUMP).resample(50.0).num_frames
    assert out.loop_mode == "none" and out.source_file.startswith("stand -> ")
    # the stand: default pose, feet on the ground
    np.testing.assert_allclose(out.dof_pos[:stand_n], np.tile(robot.default_pose, (stand_n, 1)), atol=1e-9)
    np.testing.assert_allclose(out.foot_pos[:stand_n, :, 2], robot.foot_radius, atol=1e-6)
    # the trot starts at the stand's end position and heading (the stand faces +x at the origin)
    np.testing.assert_allclose(out.root_pos[stand_n, :2], out.root_pos[stand_n - 1, :2], atol=1e-6)
    # the jump starts where the trot ended, turned to its heading: after the blend, its own motion relative to its start
    j = stand_n + trot_n
    src = read_clip(JUMP).resample(50.0)
    k = 30                                                      # past the 15-frame blend
    turn = Rotation.from_euler("z", _heading(out.root_quat[j - 1]) - _heading(src.root_quat[0]))
    np.testing.assert_allclose(out.root_pos[j + k, :2] - out.root_pos[j - 1, :2],
                               turn.apply(src.root_pos[k] - src.root_pos[0])[:2], atol=1e-6)
    np.testing.assert_allclose(out.dof_pos[j + k], src.dof_pos[k], atol=1e-6)
    # the seams: no joint step larger than the clips' own largest
    own = max(np.abs(np.diff(c.resample(50.0).dof_pos, axis=0)).max() for c in (trot, jump))
    for seam in (stand_n, j):
        assert np.abs(np.diff(out.dof_pos[seam - 2:seam + 16], axis=0)).max() <= own + 1e-9
        assert np.abs(np.diff(out.root_pos[seam - 2:seam + 16, 2])).max() < 0.02


@pytest.mark.parametrize("segments, match", [
    ([Segment(STAND, None)], r"'stand' with a positive number of seconds"),
    ([Segment("walk", 2.0)], r"segment 'walk'"),
    ([], r"no segments"),
])
def test_bad_segments_are_refused(robot, segments, match):
    with pytest.raises(InputError, match=match):
        chain(segments, robot)


def test_the_chain_command_writes_a_clip(tmp_path):
    out = tmp_path / "chain.h5"
    run = subprocess.run([sys.executable, "-m", "imitation.cli", "chain", "stand:0.5", f"{TROT}:2", str(JUMP), "-o",
                          str(out), "--blend", "0.2"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    clip = read_clip(out)
    assert clip.duration == pytest.approx(0.5 + 2.0 + read_clip(JUMP).duration + 2 / 50, abs=1e-6)
    bad = subprocess.run([sys.executable, "-m", "imitation.cli", "chain", "stand", "-o", str(tmp_path / "x.h5")],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "'stand' with a positive number of seconds" in bad.stderr
    assert not (tmp_path / "x.h5").exists()
