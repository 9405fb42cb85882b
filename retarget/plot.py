"""Figures of a clip: a time-series PNG and an animated side-view stick figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless machines, no display
import matplotlib.pyplot as plt
import numpy as np

from .clip import Clip
from .files import atomic_path
from .kinematics import body_to_world, leg_link_positions
from .quality import body_pitch_angle
from .robot import Robot


def plot_clip(clip: Clip, robot: Robot, path: str | Path, title: str = "") -> Path:
    """Base height, pitch, joint angles and contacts over time, in one PNG."""
    t = clip.time
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True,
                             gridspec_kw={"height_ratios": [1, 1, 2, 0.7]})
    axes[0].plot(t, clip.root_pos[:, 2], color="k")
    axes[0].axhline(robot.foot_radius, color="0.7", lw=0.8)
    axes[0].set_ylabel("base z (m)")
    axes[1].plot(t, np.degrees(body_pitch_angle(clip)), color="tab:purple")
    axes[1].set_ylabel("pitch (deg)")
    colors = {"hip": "tab:green", "thigh": "tab:blue", "calf": "tab:red"}
    styles = {robot.legs[0]: "-", robot.legs[1]: "--", robot.legs[2]: ":", robot.legs[3]: "-."}
    for j, name in enumerate(robot.joint_names):
        leg, part = name.split("_")[:2]
        axes[2].plot(t, np.degrees(clip.dof_pos[:, j]), color=colors[part], ls=styles[leg], lw=1, label=name)
    axes[2].set_ylabel("joint angle (deg)")
    axes[2].legend(ncol=4, fontsize=7, loc="upper right")
    for i, foot in enumerate(robot.foot_names):
        on = clip.foot_contact[:, i].astype(bool)
        axes[3].fill_between(t, i - 0.4, i + 0.4, where=on, step="mid", color="tab:brown")
    axes[3].set_yticks(range(len(robot.foot_names)), robot.legs)
    axes[3].set_ylabel("contact")
    axes[3].set_xlabel("time (s)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title or clip.source_file)
    fig.tight_layout()
    return _save(fig, path)


def animate_clip(clip: Clip, robot: Robot, path: str | Path, fps: float = 25.0) -> Path:
    """Side view (x-z) stick figure of the trunk and legs, as GIF or MP4 by extension."""
    import imageio.v2 as imageio

    step = max(1, int(round(clip.fps / fps)))
    frames_idx = np.arange(0, clip.num_frames, step)
    links = leg_link_positions(robot, clip.dof_pos[frames_idx])  # (F, 4, 4, 3) body frame
    n = len(frames_idx)
    pts = body_to_world(links.reshape(n, -1, 3), clip.root_pos[frames_idx], clip.root_quat[frames_idx])
    pts = pts.reshape(n, 4, 4, 3)
    lo = pts[..., [0, 2]].reshape(-1, 2).min(axis=0) - 0.15
    hi = pts[..., [0, 2]].reshape(-1, 2).max(axis=0) + 0.15
    fig, ax = plt.subplots(figsize=(5, 4), dpi=80)
    images = []
    for k in range(n):
        ax.clear()
        ax.axhline(0, color="0.5")
        hips = pts[k, :, 0]
        ax.plot(hips[[0, 2], 0], hips[[0, 2], 2], color="k", lw=4)  # trunk, front to rear hips
        for leg in range(4):
            c = "tab:blue" if leg % 2 == 0 else "tab:orange"
            ax.plot(pts[k, leg, :, 0], pts[k, leg, :, 2], "-o", color=c, ms=2, lw=1.5)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(min(lo[1], -0.05), hi[1])
        ax.set_aspect("equal")
        ax.set_title(f"t = {clip.time[frames_idx[k]]:.2f} s")
        fig.canvas.draw()
        images.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            imageio.mimsave(tmp, images, duration=1.0 / fps, loop=0)
        else:
            imageio.mimsave(tmp, images, fps=fps)
    return path


def _save(fig, path) -> Path:
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path
