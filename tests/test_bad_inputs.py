"""The bad-input corpus (tests/bad_inputs/): every file must stop `imitation retarget` with exit code 2
and ONE stderr line `error: <file>: ...` naming the field, frame or keyframe at fault, no traceback,
and nothing written. Bad HDF5 clips (the input of the later stages) are made here from a good clip
and must make retarget.clip.read_clip raise an InputError of the same kind.

The corpus runs in-process through imitation.cli.main (milliseconds a case); a few cases run the real
console entry point in a subprocess (about 1 s each: Python, numpy, scipy, h5py and matplotlib start).
tests/bad_inputs/README.md says what is wrong with each file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from imitation.cli import main
from retarget.clip import read_clip, write_clip
from retarget.errors import InputError
from retarget.importer import load_motion
from retarget.robot import load_robot

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
GOOD = CORPUS / "good"
ROBOT = load_robot()

# file -> regex the error line must match after "error: <path>: ". It names the field (and the frame or
# keyframe where there is one), so a message that only says "bad file" fails.
EXPECTED = {
    # keyframe YAML (retarget/keyframes.py)
    "kf_empty.yaml": r"empty file: expected a mapping with format: go2-keyframes/1 and keyframes",
    "kf_truncated.yaml": r"not valid YAML: .* at line 10, column \d+",
    "kf_binary.yaml": r"not a text file",
    "kf_typo_key.yaml": r"keyframe 1 \(t=0\.2\): contacts: unknown key \(did you mean 'contact'\?\)",
    "kf_unknown_pose.yaml": r"keyframe 0 \(t=0\): pose: unknown pose 'standing': did you mean 'stand'\?",
    "kf_times_not_increasing.yaml": r"keyframe 2 \(t=0\.1\): t: must be at least one frame .* after the previous "
                                    r"keyframe \(t=0\.2\)",
    "kf_nan.yaml": r"keyframe 1 \(t=0\.2\): base\.pos\[2\]: nan is not a finite number",
    "kf_string_time.yaml": r"keyframe 1: t: expected a number, got the string '2e-1'",
    "kf_joint_past_limit.yaml": r"keyframe 0 \(t=0\): joints\.FR_calf_joint: -200 degrees is past the joint range",
    "kf_unknown_joint.yaml": r"keyframe 0 \(t=0\): joints\.FR_knee_joint: unknown key",
    "kf_unreachable_foot.yaml": r"keyframe 1 \(t=0\.2\): feet\.FR: target \[0\.19, -0\.14, -0\.9\] \(body frame\) "
                                r"is out of the leg's reach",
    "kf_base_out_of_reach.yaml": r"keyframe 1 \(t=0\.2\): base: FR is planted at .* out of the leg's reach",
    "kf_height_cm.yaml": r"keyframe 0 \(t=0\): contact: FR touches down here but its foot is 31\.\d+ m above the ground",
    "kf_unknown_leg.yaml": r"keyframe 1 \(t=0\.2\): contact: unknown leg 'LR'",
    "kf_wrong_version.yaml": r"format: is 'go2-keyframes/2', this reader reads 'go2-keyframes/1'",
    "kf_duplicate_key.yaml": r"not valid YAML: duplicate key 'pose' at line 8",
    "kf_rpy_two_numbers.yaml": r"keyframe 0 \(t=0\): base\.rpy: expected a list of 3 numbers",
    # motion_imitation JSON (retarget/formats/motion_imitation.py)
    "mi_empty.txt": r"file is empty",
    "mi_truncated.txt": r"malformed JSON at line \d+ column \d+",
    "mi_binary.txt": r"binary content \(NUL byte at offset 8\)",
    "mi_deep_nesting.txt": r"malformed JSON: lists or objects nested too deeply",
    "mi_top_level_list.txt": r"top level is a JSON list, expected an object with 'Frames'",
    "mi_typo_key.txt": r"unknown key 'LoopMod'; known keys: LoopMode",
    "mi_missing_frames.txt": r"key 'Frames' missing",
    "mi_one_frame.txt": r"field 'Frames' has 1 frame\(s\), a motion needs at least 2",
    "mi_frame_duration_string.txt": r"field 'FrameDuration' is '0\.02', expected a positive number",
    "mi_frame_width_18.txt": r"frame 2: field 'Frames' has 18 numbers, expected 19 \(motion_imitation\) or 61",
    "mi_nan.txt": r"frame 3: field 'Frames' column 8 \(FR thigh\) is NaN, not a finite number",
    "mi_inf.txt": r"frame 4: field 'Frames' column 1 \(root y\) is -Infinity, not a finite number",
    "mi_string_value.txt": r"frame 1: field 'Frames' column 10 \(FL hip\) is '0\.2', not a number",
    "mi_bool_value.txt": r"frame 6: field 'Frames' column 12 \(FL calf\) is True, not a number",
    "mi_big_integer.txt": r"frame 0: field 'Frames' column 2 \(root z\) is an integer too large for a float",
    "mi_zero_quat.txt": r"frame 5: field 'Frames' root quaternion has zero length",
    "mi_height_cm.txt": r"frame 0: field 'root_pos' z is 39\.22, but source robot 'laikago' stands at 0\.44 m",
    "mi_joints_degrees.txt": r"frame 0: joint 'FR_upper_leg_2_hip_motor_joint' = 12\.47 gives FR_thigh_joint .* "
                             r"angles in degrees",
    "mi_knee_reversed.txt": r"frame 0: joint 'FR_lower_leg_2_upper_leg_joint' = 1\.021 gives FR_calf_joint = 0\.509 rad, "
                            r"1\.35 rad outside \[-2\.723, -0\.838\], more than the 1 rad that is clamped",
    # CSV (retarget/formats/csv_table.py, retarget/mapping.py)
    "csv_empty.csv": r"file is empty",
    "csv_header_only.csv": r"field 'rows' has 0 frame\(s\)",
    "csv_truncated.csv": r"frame 7 \(line 9\): row has 11 columns, the header has 20",
    "csv_binary.csv": r"binary content \(byte 0x\w\w at offset \d+ is not UTF-8\)",
    "csv_time_not_increasing.csv": r"frame 4: column 'time' is 0\.06, not after the previous frame's 0\.06",
    "csv_unknown_joint.csv": r"header column 'FR_knee_joint' is not a joint of source robot 'go2'",
    "csv_nan.csv": r"frame 2: field 'row' column 10 \(FR_calf_joint\) is nan, not a finite number",
    "csv_text_cell.csv": r"frame 6 \(line 8\): column 3 is '0\.3o', not a number",
    "csv_zero_quat.csv": r"frame 1: field 'row' root quaternion has zero length",
    "csv_height_cm.csv": r"frame 0: field 'root_pos' z is 32\.87, but source robot 'go2' stands at 0\.3 m",
    "csv_joints_degrees.csv": r"frame 0: joint 'FR_thigh_joint' = 46\.79 gives FR_thigh_joint = 46\.789 rad.* "
                              r"angles in degrees",
    "csv_headerless_18.csv": r"frame 0: 11 joint columns, source robot 'go2' has 12 joints",
    "csv_headerless_wxyz.csv": r"frame 0: field 'root_quat' is 180 deg from upright.* quaternion order",
    "csv_semicolons.csv": r"header has no column for x, y, z, qx, qy, qz, qw",
}


# Bad clips: name -> (how to spoil a good clip file, regex after "<path>: ").
def _set_attr(key, value):
    return lambda f: f.attrs.__setitem__(key, value)


def _replace(name, value):
    def spoil(f):
        del f[name]
        f[name] = value
    return spoil


def _edit(name, index, value):
    def spoil(f):
        a = f[name][()]
        a[index] = value
        del f[name]
        f[name] = a
    return spoil


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


H5_CASES = {
    "h5_schema_v2.h5": (_set_attr("format_version", 2), r"attribute 'format_version' is 2, this reader reads 1"),
    "h5_version_text.h5": (_set_attr("format_version", "one"), r"attribute 'format_version' is 'one', expected an integer"),
    "h5_no_version.h5": (lambda f: f.attrs.__delitem__("format_version"), r"attribute 'format_version' missing"),
    "h5_missing_fps.h5": (lambda f: f.attrs.__delitem__("fps"), r"attribute 'fps' missing"),
    "h5_fps_text.h5": (_set_attr("fps", "fifty"), r"attribute 'fps' is 'fifty', expected a number"),
    "h5_missing_dof_vel.h5": (lambda f: f.__delitem__("dof_vel"), r"dataset 'dof_vel' missing"),
    "h5_group_not_dataset.h5": (lambda f: (f.__delitem__("foot_pos"), f.create_group("foot_pos")),
                                r"dataset 'foot_pos' is not numeric"),
    "h5_scalar_time.h5": (_replace("time", 0.5), r"dataset 'time' is a single number"),
    "h5_dof_pos_11_columns.h5": (lambda f: _replace("dof_pos", f["dof_pos"][:, :11])(f),
                                 r"dataset 'dof_pos' has shape \(11, 11\), expected \(11, 12\)"),
    "h5_nan.h5": (_edit("dof_pos", (5, 4), np.nan), r"dataset 'dof_pos' has a non-finite value at frame 5"),
    "h5_zero_quat.h5": (_edit("root_quat", 3, 0.0), r"dataset 'root_quat' is not unit length at frame 3 \(norm 0\.0000\)"),
    "h5_time_reversed.h5": (lambda f: _replace("time", f["time"][()][::-1])(f), r"dataset 'time' does not match attribute 'fps'"),
    "h5_contact_not_binary.h5": (_edit("foot_contact", (2, 1), 7), r"dataset 'foot_contact' is not 0 or 1 at frame 2"),
    "h5_joints_degrees.h5": (lambda f: _replace("dof_pos", np.degrees(f["dof_pos"][()]))(f),
                             r"dataset 'dof_pos' at frame \d+: \w\w_(hip|thigh|calf)_joint = -?\d+\.\d+ rad is \d+\.\d+ rad outside "
                             r"\[.*\] \(tolerance 0\.1 rad\); made from .*angles in degrees"),
    "h5_joint_names_reordered.h5": (lambda f: f.attrs.__setitem__("joint_names", list(ROBOT.joint_names[::-1])),
                                    r"attribute 'joint_names' .* differs from the robot's"),
    "h5_other_robot.h5": (_set_attr("robot", "a1"), r"attribute 'robot' is 'a1', expected 'go2'"),
    "h5_quality_not_json.h5": (_set_attr("quality", "{oops"), r"attribute 'quality' is not valid JSON"),
    "h5_truncated.h5": (_truncate, r"not a readable HDF5 clip \(.*truncated file"),
    "h5_text.h5": (lambda p: p.write_text("time,x,y,z\n0,0,0,0.3\n"), r"not a readable HDF5 clip \(.*signature"),
    "h5_empty.h5": (lambda p: p.write_bytes(b""), r"not a readable HDF5 clip"),
}
FILE_SPOILERS = {"h5_truncated.h5", "h5_text.h5", "h5_empty.h5"}  # act on the path, not on the open file


def run_cli(capsys, source: Path, output: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["retarget", str(source), "-o", str(output), *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_error_line(err: str, path: Path, pattern: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, f"stderr is not one line:\n{err}"
    assert "Traceback" not in err
    line = lines[0]
    assert line.startswith("error: "), line
    assert path.name in line, f"the message does not name the file: {line}"
    assert re.search(re.escape(f"{path}: ") + pattern, line), f"\n  message: {line}\n  expected: {pattern}"


def leftovers(folder: Path, keep=()) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ----------------------------------------------------------------------------- the corpus itself


def test_every_corpus_file_has_an_expectation_and_a_readme_line():
    files = {p.name for p in CORPUS.iterdir() if p.is_file() and p.name != "README.md"}
    assert files == set(EXPECTED), (f"untested: {sorted(files - set(EXPECTED))}, "
                                    f"missing: {sorted(set(EXPECTED) - files)}")
    assert len(files) + len(H5_CASES) >= 24
    readme = (CORPUS / "README.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))
    assert listed == files | set(H5_CASES) | {f"good/{p.name}" for p in GOOD.iterdir()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_fails_cleanly(name, tmp_path, capsys):
    source = CORPUS / name
    out = tmp_path / "out.h5"
    rc, stdout, err = run_cli(capsys, source, out)
    assert rc == 2
    assert_one_error_line(err, source, EXPECTED[name])
    assert stdout == ""
    assert leftovers(tmp_path) == [], "an output or temporary file was left behind"


# A few cases through the real entry point: exit status, stderr and no traceback from a fresh process.
SUBPROCESS_CASES = ["kf_typo_key.yaml", "mi_frame_width_18.txt", "mi_deep_nesting.txt", "csv_joints_degrees.csv"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_file_subprocess(name, tmp_path):
    source = CORPUS / name
    out = tmp_path / "out.h5"
    work = tmp_path / "cwd"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "imitation.cli", "retarget", str(source), "-o", str(out)],
                          capture_output=True, text=True, cwd=work, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc.stderr, source, EXPECTED[name])
    assert proc.stdout == ""
    assert leftovers(tmp_path) == ["cwd"] and leftovers(work) == []


# ----------------------------------------------------------------------------- good inputs, atomic output


@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.iterdir()))
def test_good_file_writes_a_clip(name, tmp_path, capsys):
    out = tmp_path / "out.h5"
    rc, stdout, err = run_cli(capsys, GOOD / name, out)
    assert rc == 0, err
    assert err == ""
    assert "total pitch rotation" in stdout
    clip = read_clip(out, ROBOT)
    assert clip.num_frames >= 11 and clip.source_file == name
    assert leftovers(tmp_path) == ["out.h5"]


def test_joint_past_limit_is_clamped_and_reported(tmp_path, capsys):
    """A knee 0.26 rad straighter than the Go2's limit (less than the 1 rad refused as a wrong file):
    clamped, and the report says where and by how much."""
    out = tmp_path / "out.h5"
    rc, stdout, err = run_cli(capsys, GOOD / "stand_laikago_knee_past_limit.txt", out)
    assert rc == 0 and err == ""
    assert "3 of 11 source frames" in stdout and "0.256 rad (14.7 deg), FL_calf_joint, frame 5" in stdout
    clip = read_clip(out, ROBOT)
    assert clip.quality["clamping"]["clamped_frames_per_joint"] == {"FL_calf_joint": 3}
    assert clip.dof_pos[5, ROBOT.joint_names.index("FL_calf_joint")] == ROBOT.upper[2]


def test_good_file_subprocess(tmp_path):
    out = tmp_path / "clip.h5"
    proc = subprocess.run([sys.executable, "-m", "imitation.cli", "retarget", str(GOOD / "stand_laikago.txt"),
                           "-o", str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert read_clip(out, ROBOT).num_frames == 11
    assert leftovers(tmp_path) == ["clip.h5"]


@pytest.mark.parametrize("bad", ["kf_unreachable_foot.yaml", "mi_nan.txt", "csv_truncated.csv"])
def test_failed_run_leaves_existing_output_untouched(bad, tmp_path, capsys):
    out = tmp_path / "clip.h5"
    assert run_cli(capsys, GOOD / "stand_go2.csv", out)[0] == 0
    before, stat = out.read_bytes(), out.stat()
    rc, _, err = run_cli(capsys, CORPUS / bad, out)
    assert rc == 2 and err.startswith("error: ")
    assert out.read_bytes() == before and out.stat().st_mtime_ns == stat.st_mtime_ns
    assert leftovers(tmp_path) == ["clip.h5"]


def test_crash_while_writing_leaves_existing_output_untouched(tmp_path, capsys, monkeypatch):
    """A failure half-way through writing the HDF5 (disk full, killed) never replaces the old clip."""
    out = tmp_path / "clip.h5"
    assert run_cli(capsys, GOOD / "stand.yaml", out)[0] == 0
    before = out.read_bytes()
    real = h5py.Group.create_dataset
    calls = []

    def failing(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="No space left"):
        run_cli(capsys, GOOD / "stand_go2.csv", out)
    assert len(calls) == 3
    assert out.read_bytes() == before
    assert leftovers(tmp_path) == ["clip.h5"]


# ----------------------------------------------------------------------------- bad clips (HDF5)


@pytest.fixture(scope="module")
def good_clip_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "good.h5"
    write_clip(load_motion(GOOD / "stand_go2.csv", ROBOT), path)
    read_clip(path, ROBOT)
    return path


@pytest.mark.parametrize("name", sorted(H5_CASES))
def test_bad_clip_is_refused(name, good_clip_file, tmp_path):
    spoil, pattern = H5_CASES[name]
    path = tmp_path / name
    path.write_bytes(good_clip_file.read_bytes())
    if name in FILE_SPOILERS:
        spoil(path)
    else:
        with h5py.File(path, "a") as f:
            spoil(f)
    with pytest.raises(InputError) as e:
        read_clip(path, ROBOT)
    message = str(e.value)
    assert "\n" not in message and "Traceback" not in message
    assert re.search(re.escape(f"{path}: ") + pattern, message), f"\n  message: {message}\n  expected: {pattern}"
    assert leftovers(tmp_path) == [name]


def test_damaged_hdf5_internals_are_input_errors(good_clip_file, tmp_path):
    """Bytes overwritten inside the file (past the superblock): always an InputError naming the file."""
    data = good_clip_file.read_bytes()
    rng = np.random.default_rng(0)
    for offset in range(1024, len(data) - 256, 1024):
        spoiled = bytearray(data)
        spoiled[offset:offset + 256] = rng.integers(0, 256, 256, dtype=np.uint8).tobytes()
        path = tmp_path / f"damaged_{offset}.h5"
        path.write_bytes(bytes(spoiled))
        try:
            read_clip(path, ROBOT)
        except InputError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
        os.remove(path)
