"""The `imitation` command. Subcommands import their stage lazily, so `imitation retarget` never
loads genesis or torch and bad input fails in a fraction of a second."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from retarget.errors import InputError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cmd_retarget(args) -> int:
    from retarget.clip import write_clip
    from retarget.importer import load_motion
    from retarget.quality import format_report, quality_report
    from retarget.robot import load_robot

    robot = load_robot()
    clip = load_motion(args.source, robot, source_robot=args.source_robot, fps=args.fps)
    clip.quality = quality_report(clip, robot)
    write_clip(clip, args.output)
    print(format_report(clip.quality, title=f"{args.source} -> {args.output}"), end="")
    if args.plot or args.animate:
        from retarget.plot import animate_clip, plot_clip  # matplotlib only when asked for
    if args.plot:
        print(f"plot: {plot_clip(clip, robot, args.plot, title=Path(args.source).name)}")
    if args.animate:
        print(f"animation: {animate_clip(clip, robot, args.animate)}")
    return 0


def cmd_pipeline(args) -> int:
    """The main job on the bundled defaults."""
    out = Path(args.out)
    clip_path = out / "clips" / "backflip.h5"
    rc = cmd_retarget(argparse.Namespace(
        source=str(PROJECT_ROOT / "motions" / "backflip.yaml"), output=str(clip_path), fps=50.0,
        source_robot=None, plot=str(out / "clips" / "backflip.png"), animate=str(out / "clips" / "backflip.gif"),
    ))
    return rc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="imitation", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("retarget", help="motion file (keyframe YAML, motion_imitation JSON, CSV) -> Go2 clip (HDF5)")
    r.add_argument("source", help="motion file: .yaml keyframes, motion_imitation .txt/.json, or .csv")
    r.add_argument("-o", "--output", required=True, help="output clip (.h5)")
    r.add_argument("--fps", type=float, default=None, help="output frame rate (default: the source's, or 50)")
    r.add_argument("--source-robot", default=None, help="robot the source was made for (configs/mappings/NAME.yaml)")
    r.add_argument("--plot", default=None, help="write a PNG of base height, pitch, joints and contacts")
    r.add_argument("--animate", default=None, help="write a stick-figure animation (.gif or .mp4)")
    r.set_defaults(func=cmd_retarget)

    pl = sub.add_parser("pipeline", help="the main job on the bundled defaults")
    pl.add_argument("--out", default="out", help="output folder (default: out/)")
    pl.set_defaults(func=cmd_pipeline)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
