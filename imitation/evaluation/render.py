"""Videos of policies beside their reference motion, rendered headless with a Genesis camera (EGL).

Rendering never touches the physics env. A rollout is recorded first (base pose and joint angles of
one env per control step), then replayed in a separate, purely visual scene: one Go2 per track, all
of Genesis' `Kinematic` material (forward kinematics only: no physics, no collisions, so the robots
cannot interact), lined up along the world x axis and filmed from the side (-y), where a backflip's
pitch rotation shows best. The reference is one more track: a translucent "ghost" Go2 whose pose is
the clip's at the same time. Labels and the clock are drawn on the frames (Pillow), and the video is
written atomically (a temporary file beside the target, renamed when complete).

    imitation play runs/imitation_backflip/<run> -o rollout.mp4          # policy + reference ghost
    render_tracks([...tracks...], "both.mp4", dt)                        # any number of robots

On a CPU (Mesa llvmpipe through EGL) the robot's triangles dominate the render time, nearly independent of
resolution and shadows, so videos show the robot with decimated visual meshes (imitation/evaluation/meshes.py);
the first render in a process compiles shaders (see docs/evaluation.md, Videos).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retarget.errors import InputError
from retarget.files import atomic_path

from .. import runs
from ..sim import build_scene
from .meshes import light_urdf

# RGBA of the robots, in track order, unless a track names its own; None keeps the Go2's own look.
POLICY_COLORS: tuple = (None, (1.0, 0.55, 0.15, 1.0), (0.35, 0.8, 0.35, 1.0), (0.8, 0.3, 0.8, 1.0))
GHOST_COLOR = (0.45, 0.75, 1.0, 0.5)
# A tenth of the Go2's visual triangles renders four times faster and looks the same at a video's scale.
LIGHT_MESH_FRACTION = 0.1


@dataclass
class Track:
    """One robot of a video: T poses at the video's time step.

    root_pos (T,3) m world; root_quat (T,4) w x y z; dof_pos (T,J) rad with columns named by
    `joint_names`. A ghost is drawn translucent. `color` RGBA overrides the default of its slot.
    """

    label: str
    root_pos: np.ndarray
    root_quat: np.ndarray
    dof_pos: np.ndarray
    joint_names: tuple[str, ...]
    ghost: bool = False
    color: tuple | None = None

    def __post_init__(self):
        self.root_pos = np.asarray(self.root_pos, float).reshape(-1, 3)
        self.root_quat = np.asarray(self.root_quat, float).reshape(-1, 4)
        self.dof_pos = np.asarray(self.dof_pos, float).reshape(len(self.root_pos), -1)
        self.joint_names = tuple(self.joint_names)
        if not (len(self.root_pos) == len(self.root_quat) == len(self.dof_pos)) or len(self.root_pos) == 0:
            raise ValueError(f"track {self.label!r}: root_pos, root_quat and dof_pos need the same, non-zero length")
        if self.dof_pos.shape[1] != len(self.joint_names):
            raise ValueError(f"track {self.label!r}: {self.dof_pos.shape[1]} joint columns, {len(self.joint_names)} names")

    def __len__(self) -> int:
        return len(self.root_pos)

    def at(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pose of sample k; past the end the last pose is held."""
        k = min(k, len(self) - 1)
        return self.root_pos[k], self.root_quat[k], self.dof_pos[k]


def track_from_trajectory(traj, episode: int = 0, label: str = "policy", joint_names=None, **kw) -> Track:
    """The valid samples of one episode of an imitation.analysis.metrics.Trajectory."""
    n = int(traj.length[episode])
    names = traj.joint_names or joint_names
    if names is None:
        raise ValueError("the trajectory does not name its joints: pass joint_names")
    return Track(label, traj.root_pos[episode, :n], traj.root_quat[episode, :n], traj.dof_pos[episode, :n], names, **kw)


def track_from_clip(clip, times: np.ndarray, label: str = "reference", ghost: bool = True, **kw) -> Track:
    """A retarget.clip.Clip sampled at `times` (held at its last frame past its end). A looping clip is
    sampled as the env's reference plays it, at the control frames nearest to `times`: cycle after cycle,
    each placed by the clip's cycle offsets."""
    times = np.asarray(times, float)
    if clip.loop_mode != "wrap" or len(times) < 2:
        s = clip.sample(times)
        return Track(label, s["root_pos"], s["root_quat"], s["dof_pos"], clip.joint_names, ghost=ghost, **kw)
    import torch

    from ..env.reference import Reference

    dt = float(times[1] - times[0])
    ref = Reference(clip, None, dt, "cpu")
    f = ref.frame(torch.as_tensor(np.rint(times / dt), dtype=torch.long))
    return Track(label, f.root_pos.numpy().astype(float), f.root_quat.numpy().astype(float),
                 f.dof_pos.numpy().astype(float), clip.joint_names, ghost=ghost, **kw)


# ---------------------------------------------------------------------------- layout and camera


@dataclass
class Layout:
    offsets: np.ndarray          # (K, 3) added to each track's root position
    lanes_x: np.ndarray          # (K,) x of each track's label
    cam_pos: tuple
    cam_lookat: tuple
    fov: float


def layout(tracks: list[Track], res: tuple[int, int], fov: float = 35.0, gap: float = 0.25,
           elevation_deg: float = 8.0) -> Layout:
    """Lanes along x, each as wide as its track's own x travel plus the robot's length (so robots never
    overlap on screen), `gap` m apart, and a fixed side camera that frames every robot over the whole video.
    All tracks keep their motion relative to the first track's start."""
    origin = tracks[0].root_pos[0].copy()
    origin[2] = 0.0
    body = 0.45   # half the Go2's length plus a margin (m)
    travel = 2.5  # x travel shown per track; a robot running farther leaves its lane rather than shrink the view
    spans = []
    for t in tracks:
        x = t.root_pos[:, 0] - origin[0]
        lo, hi = float(x.min()), float(x.max())
        if hi - lo > travel:  # keep the part around the start
            lo, hi = max(lo, x[0] - travel / 2), min(hi, x[0] + travel / 2)
        spans.append((lo, hi))
    widths = np.array([hi - lo + 2 * body for lo, hi in spans])
    left = np.concatenate([[0.0], np.cumsum(widths + gap)[:-1]])
    left -= (left[-1] + widths[-1]) / 2   # centre the row at x = 0
    k = len(tracks)
    offsets = np.zeros((k, 3))
    offsets[:, 0] = [left[i] + body - lo - origin[0] for i, (lo, _) in enumerate(spans)]
    offsets[:, 1] = -origin[1]
    lanes_x = left + widths / 2
    zmax = min(max(float(t.root_pos[:, 2].max()) for t in tracks), 2.0) + 0.3
    x0, x1 = float(left[0]), float(left[-1] + widths[-1])
    z0, z1 = 0.0, max(zmax, 0.6)
    cx, cz = (x0 + x1) / 2, (z0 + z1) / 2
    aspect = res[0] / res[1]
    tv = math.tan(math.radians(fov) / 2)
    dist = 1.08 * max((z1 - z0) / 2 / tv, (x1 - x0) / 2 / (tv * aspect))
    el = math.radians(elevation_deg)
    cam_pos = (cx, -dist * math.cos(el), cz + dist * math.sin(el))
    return Layout(offsets, lanes_x, cam_pos, (cx, 0.0, cz), fov)


def _project_x(x: float, lay: Layout, width: int, height: int) -> float:
    """Pixel column of world point (x, 0, z_lookat): the camera looks along +y (tilted about x only)."""
    d = math.dist(lay.cam_pos, lay.cam_lookat)
    tv = math.tan(math.radians(lay.fov) / 2)
    return width / 2 + (x - lay.cam_lookat[0]) / (d * tv * width / height) * width / 2


# ---------------------------------------------------------------------------- the replay scene


@dataclass
class RenderInfo:
    path: Path
    frames: int
    seconds: float                 # video duration
    render_fps: float              # frames rendered per wall-clock second (after the first)
    first_frame_s: float           # the first render (shader compilation on a cold process)
    build_s: float
    extras: dict = field(default_factory=dict)


def render_tracks(
    tracks: list[Track],
    output: str | Path,
    dt: float,
    *,
    res: tuple[int, int] = (640, 360),
    speed: float = 1.0,
    title: str | None = None,
    frame_png: str | Path | None = None,
    frame_png_time: float | None = None,
    max_frames: int | None = None,
    verbose: bool = True,
    mesh_fraction: float = LIGHT_MESH_FRACTION,
    fps: float | None = None,
) -> RenderInfo:
    """Replay `tracks` (same time step `dt`) side by side and write a video (.mp4 or .gif) atomically.

    `speed` < 1 gives slow motion. `fps`: the video's frame rate, every k-th sample rendered for it (default, and
    at most: speed / dt, every sample). `max_frames`: samples shown at most. `frame_png` also saves one frame
    (at `frame_png_time` seconds, default: the highest point of the first track) as a PNG.
    `mesh_fraction`: the share of the visual meshes' triangles kept (1: the URDF's own meshes).
    Genesis must be initialized (gs.init).
    """
    import imageio.v2 as imageio
    import torch

    output = Path(output)
    if output.suffix.lower() not in (".mp4", ".gif"):
        raise InputError(f"{output}: the video must be .mp4 or .gif")
    w, h = int(res[0]) // 2 * 2, int(res[1]) // 2 * 2  # even sizes for yuv420p
    n_samples = max(len(t) for t in tracks)
    if max_frames is not None:
        n_samples = min(n_samples, max_frames)
    stride = max(1, int(round(speed / (dt * fps)))) if fps else 1
    n_frames = -(-n_samples // stride)
    lay = layout(tracks, (w, h))

    t0 = time.time()
    scene, entities, cam = _replay_scene(tracks, lay, (w, h), mesh_fraction)
    build_s = time.time() - t0

    # Genesis q index of every column of every track (tracks may order joints differently).
    q_cols = []
    for e, t in zip(entities, tracks):
        q_cols.append(torch.tensor([e.get_joint(n).qs_idx_local[0] for n in t.joint_names], dtype=torch.long))
    qpos = [e.get_qpos().detach().clone().reshape(-1) for e in entities]

    fps = speed / (dt * stride)
    font = _font(max(12, h // 24))
    first_s, t_render = 0.0, 0.0
    png_k = None
    if frame_png is not None:
        png_k = (int(np.argmax(tracks[0].root_pos[:, 2])) if frame_png_time is None
                 else int(round(frame_png_time / dt)))
        png_k = min(max(int(round(png_k / stride)), 0), n_frames - 1)
    try:
        with atomic_path(output) as tmp:
            if output.suffix.lower() == ".gif":
                writer = imageio.get_writer(tmp, mode="I", duration=1.0 / fps, loop=0)
            else:
                writer = imageio.get_writer(tmp, fps=fps, codec="libx264", quality=7, macro_block_size=2,
                                            ffmpeg_log_level="error")
            with writer:
                for k in range(n_frames):
                    for i, (e, t) in enumerate(zip(entities, tracks)):
                        pos, quat, dof = t.at(k * stride)
                        q = qpos[i]
                        q[0:3] = torch.as_tensor(pos + lay.offsets[i], dtype=q.dtype)
                        q[3:7] = torch.as_tensor(quat, dtype=q.dtype)
                        q[q_cols[i]] = torch.as_tensor(dof, dtype=q.dtype)
                        e.set_qpos(q)
                    t1 = time.time()
                    rgb = cam.render(rgb=True, force_render=True)[0]  # no sim step: force the pose update
                    dtr = time.time() - t1
                    if k == 0:
                        first_s = dtr
                    else:
                        t_render += dtr
                    frame = _annotate(np.asarray(rgb).reshape(h, w, 3), tracks, lay, k * stride * dt, title, font)
                    writer.append_data(frame)
                    if k == png_k:
                        _write_png(frame, Path(frame_png))
                    if verbose and (k + 1) % 50 == 0:
                        print(f"  rendered {k + 1}/{n_frames} frames", flush=True)
    finally:
        try:
            scene.destroy()
        except Exception:  # older Genesis versions: the scene is freed with the process
            pass
    rate = (n_frames - 1) / t_render if n_frames > 1 and t_render > 0 else float("nan")
    return RenderInfo(output, n_frames, n_frames / fps, rate, first_s, build_s)



def _replay_scene(tracks: list[Track], lay: Layout, res: tuple[int, int], mesh_fraction: float):
    """The purely visual scene of a video, built: a plane, one Kinematic Go2 per track (its colour, a ghost
    translucent) and the side camera. Returns (scene, entities, camera)."""
    import genesis as gs

    from retarget.robot import load_robot

    w, h = res
    urdf = light_urdf(load_robot().urdf_path, mesh_fraction) if mesh_fraction < 1.0 else load_robot().urdf_path
    scene = gs.Scene(
        show_viewer=False,
        vis_options=gs.options.VisOptions(show_world_frame=False, shadow=True, rendered_envs_idx=[0]),
    )
    scene.add_entity(gs.morphs.Plane(), material=gs.materials.Kinematic())
    entities = []
    n_policy = 0
    for t in tracks:
        color = t.color
        if color is None and t.ghost:
            color = GHOST_COLOR
        elif color is None:  # robots in the order of the policies: the Go2's own look, then orange, ...
            color = POLICY_COLORS[n_policy % len(POLICY_COLORS)]
        n_policy += not t.ghost
        surface = None
        if color is not None:
            surface = gs.surfaces.Default(color=tuple(color[:3]), opacity=float(color[3]) if len(color) > 3 else None)
        kw = {"surface": surface} if surface is not None else {}
        entities.append(scene.add_entity(gs.morphs.URDF(file=str(urdf)), material=gs.materials.Kinematic(), **kw))
    cam = scene.add_camera(res=(w, h), pos=lay.cam_pos, lookat=lay.cam_lookat, fov=lay.fov)
    build_scene(scene)
    return scene, entities, cam


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _annotate(rgb: np.ndarray, tracks, lay: Layout, t: float, title: str | None, font) -> np.ndarray:
    from PIL import Image, ImageDraw

    h, w = rgb.shape[:2]
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    d = ImageDraw.Draw(img)
    pad = max(4, h // 60)
    for tr, x in zip(tracks, lay.lanes_x):
        px = _project_x(float(x), lay, w, h)
        text = tr.label + (" (ghost)" if tr.ghost and "ghost" not in tr.label else "")
        box = d.textbbox((0, 0), text, font=font)
        tw = box[2] - box[0]
        px = min(max(px - tw / 2, pad), w - tw - pad)
        d.text((px, pad), text, font=font, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    clock = f"t = {t:5.2f} s"
    if title:
        clock = f"{title}   {clock}"
    box = d.textbbox((0, 0), clock, font=font)
    d.text((pad, h - pad - (box[3] - box[1]) - 2), clock, font=font, fill=(255, 255, 255), stroke_width=2,
           stroke_fill=(0, 0, 0))
    return np.asarray(img)


def _write_png(frame: np.ndarray, path: Path) -> None:
    import imageio.v2 as imageio

    with atomic_path(path) as tmp:
        imageio.imwrite(tmp, frame)


# ---------------------------------------------------------------------------- policies and rollouts


@dataclass
class Rollout:
    robot: Track
    reference: Track
    trajectory: object            # imitation.analysis.metrics.Trajectory of the one episode
    metrics: dict


def rollout(policy, env, seconds: float, label: str = "policy", env_idx: int = 0) -> Rollout:
    """Deterministic rollout from the clip's t = 0 for `seconds`, recording env `env_idx`.

    `policy(obs: TensorDict) -> actions`, as imitation.evaluation.policy.load_policy returns it.
    The env's early terminations and time-out are switched off for the rollout (and restored after it),
    so the whole span is simulated (a fall stays visible). The phase observation keeps running past the episode length if
    `seconds` is longer. The reference track is the clip at the same clip frame.
    """
    import torch

    from ..analysis.metrics import episode_metrics
    from ..env.rollout import rollout as run
    from .evaluate import TrajectoryRecorder

    steps = max(1, int(round(seconds / env.dt)))
    recorder = TrajectoryRecorder(env)
    with env.playback(steps):
        run(env, steps, policy, recorder)
    episode = slice(env_idx, env_idx + 1)
    traj = recorder.trajectory(episode, cut_at_faults=False)
    names = traj.joint_names
    ref = env.ref
    at = ref.frame(torch.as_tensor(recorder.frames(episode)[0], dtype=torch.long, device=ref.root_pos.device))
    reference = Track("reference", at.root_pos.cpu().numpy(), at.root_quat.cpu().numpy(), at.dof_pos.cpu().numpy(),
                      names, ghost=True)
    robot = Track(label, traj.root_pos[0], traj.root_quat[0], traj.dof_pos[0], names)
    metrics = {k: v[0].item() for k, v in episode_metrics(traj, tolerances=env.success_tolerances, reference=ref).items()}
    return Rollout(robot, reference, traj, metrics)


# ---------------------------------------------------------------------------- imitation play


def play(
    checkpoint: str | Path,
    output: str | Path,
    *,
    clip: str | Path | None = None,
    config: str | Path | None = None,
    seconds: float | None = None,
    device: str = "cpu",
    res: tuple[int, int] = (640, 360),
    speed: float = 1.0,
    frame_png: str | Path | None = None,
    num_envs: int = 1,
) -> RenderInfo:
    """Roll the policy out deterministically from t = 0 and render it beside the reference ghost.

    `checkpoint`: a run folder, a model_<n>.pt or a TorchScript export (imitation.evaluation.policy);
    it runs with the settings imitation.evaluation.evaluate would use (its run's config, or `config`; `clip`
    overrides the reference), without early termination, for `seconds` (default: one episode).
    """
    import torch

    from .evaluate import eval_config, make_env
    from .policy import load_policy

    if Path(output).suffix.lower() not in (".mp4", ".gif"):
        raise InputError(f"{output}: the video must be .mp4 or .gif")
    if seconds is not None and not seconds > 0:
        raise InputError(f"--seconds must be positive, got {seconds}")
    if not speed > 0:
        raise InputError(f"--speed must be positive, got {speed}")
    t_start = time.time()
    torch.manual_seed(0)
    policy, info = load_policy(checkpoint, device)
    cfg = eval_config(info, clip=clip, config=config, episodes=num_envs, randomize=False)
    t0 = time.time()
    env = make_env(cfg, device)
    env_build_s = time.time() - t0
    seconds = float(seconds) if seconds is not None else env.episode_length_s
    ro = rollout(policy, env, seconds, label=f"policy: {cfg['experiment']}")
    m = ro.metrics
    print(f"rollout {seconds:.2f} s: pitch rotation {m['pitch_rotation_deg']:.0f} deg, apex {m['apex_height']:.2f} m, "
          f"final tilt {m['final_tilt_deg']:.0f} deg, final height {m['final_height']:.2f} m, "
          f"body contact {'yes' if m['body_contact'] else 'no'}, success {'yes' if m['success'] else 'no'}", flush=True)
    apex_t = float(np.argmax(ro.reference.root_pos[:, 2])) * env.dt  # still frame: the reference's apex
    render = render_tracks([ro.robot, ro.reference], output, env.dt, res=res, speed=speed, frame_png=frame_png,
                           frame_png_time=apex_t, title=runs.policy_label(checkpoint))
    render.extras.update(env_build_s=env_build_s, total_s=time.time() - t_start, metrics=m)
    return render
