"""The `imitation` command. Subcommands import their stage lazily, so `imitation retarget` never
loads genesis or torch and bad input fails in a fraction of a second."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from retarget.errors import InputError
from retarget.robot import PROJECT_ROOT


def _args_retarget(sub) -> None:
    r = sub.add_parser("retarget", help="motion file (keyframe YAML, motion_imitation JSON, CSV) -> Go2 clip (HDF5)")
    r.add_argument("source", help="motion file: .yaml keyframes, motion_imitation .txt/.json, or .csv")
    r.add_argument("-o", "--output", required=True, help="output clip (.h5)")
    r.add_argument("--fps", type=float, default=None, help="output frame rate (default: the source's, or 50)")
    r.add_argument("--source-robot", default=None, help="robot the source was made for (configs/mappings/NAME.yaml)")
    r.add_argument("--method", choices=("auto", "joints", "feet"), default="auto",
                   help="motion files of another robot: map its joint angles (default), or scale its foot positions "
                        "and solve the Go2's leg IK")
    r.add_argument("--plot", default=None, help="write a PNG of base height, pitch, joints and contacts")
    r.add_argument("--animate", default=None, help="write a stick-figure animation (.gif or .mp4)")
    r.set_defaults(func=cmd_retarget)


def cmd_retarget(args) -> int:
    from retarget.importer import retarget_file

    retarget_file(args.source, args.output, source_robot=args.source_robot, fps=args.fps,
                  method=getattr(args, "method", "auto"), plot=args.plot, animate=args.animate)
    return 0


def _train_argv(args) -> list[str]:
    """`imitation train` arguments of `args` without --ranks / --port: the command each launched rank runs."""
    argv = ["train"]
    for flag, value in (("--config", args.config), ("--clip", args.clip), ("--num-envs", args.num_envs),
                        ("--max-iterations", args.max_iterations), ("--seed", args.seed), ("--device", args.device),
                        ("--resume", args.resume), ("--name", args.name), ("--runs-dir", args.runs_dir),
                        ("--threads", args.threads), ("--timeout", args.timeout), ("--init-from", args.init_from)):
        if value is not None:
            argv += [flag, str(value)]
    if args.clips:
        argv += ["--clips", *args.clips]
    return argv


def _args_chain(sub) -> None:
    c = sub.add_parser("chain", help="clips in a row as one clip (e.g. stand -> trot -> backflip -> pace), blended at "
                                     "the seams: the reference of a policy's transitions")
    c.add_argument("segments", nargs="+", metavar="CLIP[:SECONDS]",
                   help="clips (.h5) in order, each optionally with its seconds (a loop runs that long through its "
                        "cycles, default one cycle; a clip that ends runs once); 'stand:SECONDS' stands still")
    c.add_argument("-o", "--output", required=True, help="output clip (.h5)")
    c.add_argument("--blend", type=float, default=0.3, help="seconds over which each segment blends in (default 0.3)")
    c.add_argument("--fps", type=float, default=50.0, help="frame rate of the chained clip (default 50)")
    c.set_defaults(func=cmd_chain)


def cmd_chain(args) -> int:
    from retarget.chain import STAND, Segment, chain
    from retarget.clip import read_clip, write_clip
    from retarget.robot import load_robot

    robot = load_robot()
    segments = []
    for text in args.segments:
        path, seconds = text, None
        head, sep, tail = text.rpartition(":")
        if sep:
            try:
                path, seconds = head, float(tail)
            except ValueError:
                pass
        clip = STAND if path == STAND else read_clip(path, robot)
        segments.append(Segment(clip, seconds, label=path))
    out = chain(segments, robot, fps=args.fps, blend_s=args.blend)
    write_clip(out, args.output)
    print(f"chained clip: {args.output} ({out.duration:.2f} s: {out.source_file})")
    return 0


def _args_train(sub) -> None:
    t = sub.add_parser("train", help="train a policy with PPO (rsl-rl-lib) in the Genesis env")
    t.add_argument("--config", default=str(PROJECT_ROOT / "configs" / "imitation.yaml"),
                   help="experiment YAML (default: configs/imitation.yaml, which imitates any --clip)")
    t.add_argument("--clip", default=None, help="reference clip (.h5), overrides the config's")
    t.add_argument("--clips", nargs="+", default=None, metavar="CLIP",
                   help="several clips, one policy (a motion library: the config's `clips`, replaced by these; its "
                        "observation needs reference frames ahead, e.g. --config configs/imitation_library.yaml)")
    t.add_argument("--num-envs", type=int, default=None,
                   help="envs in total: with several ranks each steps its equal share (default: the config's)")
    t.add_argument("--max-iterations", type=int, default=None, help="total iterations (also when resuming)")
    t.add_argument("--seed", type=int, default=None, help="training seed (rank r uses seed + r)")
    t.add_argument("--device", default="cpu", help="cpu or cuda (several ranks: all on the CPU, or one GPU each)")
    t.add_argument("--ranks", type=int, default=1,
                   help="processes training this one policy on this machine, each with its own scene (launches "
                        "torchrun --nproc_per_node=N; several machines: run torchrun yourself, see docs/training.md)")
    t.add_argument("--port", type=int, default=None,
                   help="with --ranks: rendezvous port (default: any free one; a busy one is an error)")
    t.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="several ranks: longest wait for the others in one exchange before giving up (default 600)")
    t.add_argument("--resume", default=None, help="run folder or checkpoint to continue")
    t.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start a new run from the weights of a checkpoint, run folder or shipped policy folder (a "
                        "fine-tune; same observation and networks; the action noise is this config's)")
    t.add_argument("--name", default=None, help="suffix of the run folder name")
    t.add_argument("--runs-dir", default="runs", help="where runs are written (default: runs/)")
    t.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads for the PPO update (default: all cores, shared out among the ranks on this "
                        "machine; give each of several trainings running side by side its share, e.g. 1 for two on "
                        "2 cores)")
    t.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from .rl import distributed

    if args.ranks < 1:
        raise InputError(f"--ranks must be at least 1, got {args.ranks}")
    if args.ranks > 1:
        if distributed.place().distributed:
            raise InputError("--ranks: this process is already one of several ranks (launched by torchrun)")
        # This process becomes torchrun: signals (Ctrl-C, SIGTERM) then reach it and it passes them to the ranks.
        cmd = distributed.torchrun_command(args.ranks, ["imitation.cli", *_train_argv(args)], port=args.port)
        sys.stdout.flush()
        os.execvpe(cmd[0], cmd, distributed.launch_env())
    from .rl.train import train

    run_dir = train(
        args.config, clip=args.clip, clips=args.clips, init_from=args.init_from, num_envs=args.num_envs, max_iterations=args.max_iterations,
        seed=args.seed, device=args.device, resume=args.resume, run_name=args.name, runs_dir=args.runs_dir,
        update_threads=args.threads, timeout_s=args.timeout,
    )
    if distributed.place().rank == 0:
        print(f"run: {run_dir}")
    return 0


def _args_eval(sub) -> None:
    e = sub.add_parser("eval", help="score a policy: deterministic episodes from t = 0, nominal or randomized")
    e.add_argument("policy", help="run folder, checkpoint model_N.pt, exported/policy.pt, or an external TorchScript "
                                  "policy on the Genesis backflip 60-value observation (e.g. the official single.pt)")
    e.add_argument("--clip", default=None, help="reference clip (default: the run's; an external policy: the refined "
                                                 "backflip of the Genesis example's config); a motion file is "
                                                 "retargeted first")
    e.add_argument("--config", default=None, help="experiment YAML whose settings to run with (default: the run's; "
                                                   "external policies: the Genesis backflip example's)")
    e.add_argument("--episodes", type=int, default=16)
    e.add_argument("--randomize", action="store_true",
                   help="domain randomization: friction, added base mass, kp/kd scale, action latency")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--sim", choices=("genesis", "mujoco"), default="genesis",
                   help="engine: genesis (the training env), or mujoco: a shipped policy folder run from its bundle "
                        "and policy.onnx alone (--randomize adds actuator, contact and physics-rate draws)")
    e.add_argument("--actuators", default="nominal", help="mujoco: nominal (the robot config's actuator model) or "
                                                          "realistic (MuJoCo Menagerie's Go2 joint figures)")
    e.add_argument("--physics-hz", type=float, default=None, help="mujoco: physics rate (default 500)")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="mujoco: fix one physics figure in every episode, e.g. armature=0.1 (every joint), "
                        "friction_loss=0.2, damping=0.1, solref_time=0.01, physics_hz=1000, friction=0.5, "
                        "added_base_mass=2, kp_scale=0.8, latency=1")
    e.add_argument("--json", default=None, help="write per-episode metrics, summary and settings here")
    e.add_argument("--device", default="cpu", help="cpu or cuda")
    e.set_defaults(func=cmd_eval)


def _clip_or_retargeted(clip, tmp: Path):
    """`clip` itself if it is a clip (.h5), else the motion file retargeted into `tmp` (a held-out motion run through
    a policy without a separate retarget step)."""
    from retarget.formats import MOTION_SUFFIXES

    if clip is None or Path(clip).suffix.lower() not in MOTION_SUFFIXES:
        return clip
    from retarget.importer import retarget_file

    out = tmp / (Path(clip).stem + ".h5")
    retarget_file(clip, out)
    return out


def cmd_eval(args) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="imitation_eval_") as tmp:
        args.clip = _clip_or_retargeted(args.clip, Path(tmp))
        return _eval(args)


def _eval(args) -> int:
    from .evaluation.evaluate import evaluate, report, write_json
    from .runs import policy_label

    if args.sim == "mujoco":
        from .sim2sim.evaluate import evaluate_mujoco

        if args.config is not None:
            raise InputError("--config: a MuJoCo evaluation runs the policy's bundle as shipped")
        from .sim2sim.evaluate import parse_overrides

        result = evaluate_mujoco(args.policy, clip=args.clip, episodes=args.episodes, randomize=args.randomize,
                                 variant=args.actuators, seed=args.seed, physics_hz=args.physics_hz,
                                 overrides=parse_overrides(args.set))
    else:
        if args.actuators != "nominal" or args.physics_hz is not None or args.set:
            raise InputError("--actuators, --physics-hz and --set are settings of --sim mujoco")
        result = evaluate(args.policy, clip=args.clip, config=args.config, episodes=args.episodes,
                          randomize=args.randomize, device=args.device, seed=args.seed)
    print(report(result, policy_label(args.policy)))
    if args.json:
        print(f"json: {write_json(result, args.json)}")
    return 0


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 640x360, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"resolution too small: {text}")
    return w, h


def _args_play(sub) -> None:
    v = sub.add_parser("play", help="render a deterministic rollout beside the reference (a translucent ghost) to a video")
    v.add_argument("checkpoint", help="run folder, checkpoint model_N.pt or exported TorchScript policy")
    v.add_argument("-o", "--output", required=True, help="video file (.mp4 or .gif), written atomically")
    v.add_argument("--clip", default=None, help="reference clip (default: the run's)")
    v.add_argument("--config", default=None, help="experiment YAML to run the policy with (default: the run's)")
    v.add_argument("--seconds", type=float, default=None, help="rollout length (default: one episode); "
                                                                "no early termination")
    v.add_argument("--res", type=_resolution, default=(640, 360), help="WIDTHxHEIGHT (default 640x360)")
    v.add_argument("--speed", type=float, default=1.0, help="playback speed, e.g. 0.5 for slow motion")
    v.add_argument("--frame", default=None, help="also save one frame as a PNG: the one at the reference's apex")
    v.add_argument("--device", default="cpu", help="cpu or cuda")
    v.set_defaults(func=cmd_play)


def cmd_play(args) -> int:
    from .evaluation.render import play

    info = play(args.checkpoint, args.output, clip=args.clip, config=args.config, seconds=args.seconds,
                device=args.device, res=args.res, speed=args.speed, frame_png=args.frame)
    print(f"video: {info.path} ({info.frames} frames, {info.seconds:.1f} s; rendered at {info.render_fps:.1f} frames/s, "
          f"total {info.extras.get('total_s', 0):.0f} s)")
    if args.frame:
        print(f"frame: {args.frame}")
    return 0


def _args_compare(sub) -> None:
    c = sub.add_parser("compare", help="train (or take) an imitation and a reward-only policy, evaluate both, "
                                       "write a report with tables, verdicts, curves and a video")
    c.add_argument("--runs", nargs="+", default=None, metavar="RUN",
                   help="existing runs instead of training (grouped by the experiment of their config.yaml: "
                        "exactly two experiments)")
    c.add_argument("--budget", type=int, default=None, metavar="ENV_STEPS",
                   help="env steps per policy and seed (rounded up to whole iterations)")
    c.add_argument("--iterations", type=int, default=None, help="PPO iterations per policy and seed")
    c.add_argument("--clip", default=None, help="reference clip for training and evaluation (default: the configs')")
    c.add_argument("--num-envs", type=int, default=None, help="training envs (default: the configs')")
    c.add_argument("--seeds", type=int, nargs="+", default=[1], help="training seeds, the same for both (default: 1)")
    c.add_argument("--episodes", type=int, default=16, help="evaluation episodes per run and condition")
    c.add_argument("--out", default="out/compare", help="report folder (default: out/compare)")
    c.add_argument("--sweep", type=int, default=0, metavar="EPISODES",
                   help="also evaluate every checkpoint with this many randomized episodes (learning speed of the "
                        "deterministic policy; runs with an eval_curve.json are read, not re-evaluated)")
    c.add_argument("--sweep-every", type=int, default=None, help="one checkpoint per this many iterations")
    c.add_argument("--no-video", action="store_true", help="skip the video")
    c.add_argument("--jobs", type=int, default=1, help="trainings run at the same time (default 1)")
    c.add_argument("--ranks", type=int, default=1,
                   help="processes per training, each with its own scene and its share of --num-envs "
                        "(imitation train --ranks; default 1)")
    c.add_argument("--external", nargs="+", default=None, metavar="POLICY",
                   help="policy files from elsewhere (TorchScript, e.g. the official Genesis single.pt), evaluated "
                        "the same way: one more column each")
    c.add_argument("--device", default="cpu", help="cpu or cuda")
    c.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    from .tools.compare import compare

    if args.budget is not None and args.iterations is not None:
        raise SystemExit("imitation compare: give --budget or --iterations, not both")
    compare(args.out, runs=args.runs, budget=args.budget, iterations=args.iterations, num_envs=args.num_envs,
            seeds=args.seeds, episodes=args.episodes, video=not args.no_video, device=args.device, jobs=args.jobs,
            clip=args.clip, sweep=args.sweep, sweep_every=args.sweep_every, ranks=args.ranks,
            external=args.external or ())
    return 0


def _jobs(args) -> int:
    """--jobs of sweep and refine: processes with a scene each; by default one per core on the CPU (one on a GPU,
    whose one scene steps all the envs at once)."""
    if args.jobs is None:
        from .sim import cpu_cores

        return cpu_cores() if args.device == "cpu" else 1
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    return args.jobs


def _args_sweep(sub) -> None:
    sw = sub.add_parser("sweep", help="success against training env steps: evaluate every checkpoint of runs "
                                      "(writes eval_curve.json into each run)")
    sw.add_argument("runs", nargs="+", metavar="RUN", help="run folders (one env serves runs of the same settings)")
    sw.add_argument("--episodes", type=int, default=100, help="episodes per checkpoint (default 100)")
    sw.add_argument("--nominal", action="store_true", help="no domain randomization (default: randomized)")
    sw.add_argument("--every", type=int, default=None, help="one checkpoint per this many iterations (default: all)")
    sw.add_argument("--target", type=float, default=0.9, help="success rate whose first checkpoint is reported")
    sw.add_argument("--clip", default=None, help="reference clip (default: the run's)")
    sw.add_argument("--seed", type=int, default=0, help="evaluation seed, the same for every checkpoint")
    sw.add_argument("--device", default="cpu", help="cpu or cuda")
    sw.add_argument("--jobs", type=int, default=None,
                    help="processes sharing out the checkpoints, each with its own scene on one core (default: one "
                         "per core on the CPU, at most one per checkpoint)")
    sw.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    from . import runs
    from .analysis.report import milestones
    from .evaluation.sweep import sweep_runs

    for run in args.runs:
        if not (Path(run) / runs.CONFIG).is_file():
            raise InputError(f"{run}: not a run folder (no {runs.CONFIG})")
    jobs = _jobs(args)
    try:
        curves = sweep_runs(args.runs, episodes=args.episodes, randomize=not args.nominal, every=args.every,
                            device=args.device, seed=args.seed, clip=args.clip, jobs=jobs)
    except KeyboardInterrupt:
        print("interrupted: the checkpoints evaluated so far are in the runs' eval curves; the same command "
              "evaluates the rest", file=sys.stderr)
        return 130
    for run, rows in curves.items():
        m = milestones(rows, args.target)
        steps = lambda v: "never" if v is None else f"{v:,}"  # noqa: E731
        print(f"{run}: first success at {steps(m['first_success_env_steps'])} env steps, "
              f"{args.target:.0%} success at {steps(m['target_env_steps'])}, "
              f"{100 * m['final_success_rate']:.0f}% at the last checkpoint ({m['final_env_steps']:,} env steps)")
    return 0


def _args_ship(sub) -> None:
    sh = sub.add_parser("ship", help="package a finished run as a small policy folder (exports, config, thinned "
                                     "training log, checkpoint evaluations), e.g. into policies/")
    sh.add_argument("run", help="run folder")
    sh.add_argument("dest", nargs="?", default=None, help="new policy folder")
    sh.add_argument("--bundle-only", action="store_true",
                    help="write the bundle (bundle.json, ONNX metadata) into the already shipped folder RUN")
    sh.add_argument("--progress-every", type=int, default=5, help="keep every n-th progress record (default 5)")
    sh.set_defaults(func=cmd_ship)


def cmd_ship(args) -> int:
    from .tools.ship import ship_run

    if args.bundle_only:
        from .bundle import bundle_of_folder, write_bundle

        if args.dest is not None:
            raise InputError("--bundle-only takes one shipped policy folder, no DEST")
        print(f"bundle: {write_bundle(args.run, bundle_of_folder(args.run))}")
        return 0
    if args.dest is None:
        raise InputError("ship: give the run folder and a new policy folder DEST")
    dest = ship_run(args.run, args.dest, every=args.progress_every)
    print(f"shipped: {dest} ({sum(p.stat().st_size for p in dest.iterdir()) / 1e6:.2f} MB)")
    return 0


def _args_record(sub) -> None:
    rc = sub.add_parser("record", help="replay a clip in Genesis with zero policy action and write the simulated "
                                       "motion as a new, physically exact clip")
    rc.add_argument("clip", help="reference clip (.h5) to replay")
    rc.add_argument("-o", "--output", required=True, help="output clip (.h5), written atomically")
    rc.add_argument("--config", default=str(PROJECT_ROOT / "configs" / "imitation_backflip_dynamic.yaml"),
                    help="experiment YAML whose PD settings replay the clip (action mode, residual lead, velocity "
                         "gain, kp/kd, torque limits; default: configs/imitation_backflip_dynamic.yaml)")
    rc.add_argument("--seconds", type=float, default=None, help="recording length (default: the clip's duration)")
    rc.add_argument("--allow-fall", action="store_true", help="write the recording even if the body touches the ground")
    rc.add_argument("--device", default="cpu", help="cpu or cuda")
    rc.set_defaults(func=cmd_record)


def cmd_record(args) -> int:
    from retarget.quality import format_report

    from .refine.record import record_clip

    rec = record_clip(args.clip, args.output, config=args.config, seconds=args.seconds,
                      allow_fall=args.allow_fall, device=args.device)
    print(format_report(rec.clip.quality, title=f"{args.clip} -> {args.output} (physics recording)"), end="")
    if rec.body_contact_time is not None:
        print(f"warning: body contact at t = {rec.body_contact_time:.2f} s (recorded with --allow-fall)")
    return 0


def _args_refine(sub) -> None:
    rf = sub.add_parser("refine", help="physics refinement: make a kinematic motion physically exact (CMA-ES over "
                                       "PD-target offsets in a batched Genesis scene); writes the clip and its PD targets")
    rf.add_argument("source", help="motion file (keyframe .yaml, motion_imitation .txt/.json, .csv) or clip (.h5)")
    rf.add_argument("-o", "--output", required=True, help="refined clip (.h5), written atomically")
    rf.add_argument("--seed", type=int, default=1, help="search seed (the result is deterministic for a seed)")
    rf.add_argument("--config", default=None, help="experiment YAML: physics, gains and its `refine` section "
                                                   "(default: configs/imitation.yaml)")
    rf.add_argument("--resume", action="store_true", help="continue a stopped refinement of the same output")
    rf.add_argument("--json", default=None, help="write the report here")
    rf.add_argument("--allow-partial", action="store_true", help="write the clip even if it falls short of the source")
    rf.add_argument("--source-robot", default=None, help="robot the source was made for (configs/mappings/NAME.yaml)")
    rf.add_argument("--device", default="cpu", help="cpu or cuda")
    rf.add_argument("--jobs", type=int, default=None,
                    help="processes simulating each generation's candidates, each with its own scene on one core "
                         "(the result does not depend on it; default: one per core on the CPU)")
    rf.set_defaults(func=cmd_refine)


def cmd_refine(args) -> int:
    from .refine.run import refine_motion

    jobs = _jobs(args)
    out = refine_motion(args.source, args.output, config=args.config, seed=args.seed, resume=args.resume,
                        json_path=args.json, allow_partial=args.allow_partial, device=args.device,
                        source_robot=args.source_robot, jobs=jobs)
    print(f"refined clip: {args.output}" + (" (short of the source: written with --allow-partial)"
                                            if out.report["shortfalls"] else ""))
    if args.json:
        print(f"json: {args.json}")
    return 0


def _args_pipeline(sub) -> None:
    pl = sub.add_parser("pipeline", help="the main job on the bundled defaults")
    pl.add_argument("--out", default="out", help="output folder (default: out/)")
    pl.add_argument("--train", action="store_true",
                    help="train both policies here (same seeds and budget) instead of evaluating the shipped ones")
    pl.add_argument("--iterations", type=int, default=1600,
                    help="with --train: PPO iterations per policy and seed (default 1600 = 9.8M env steps at 256 envs, "
                         "about 30 min per run on one CPU core)")
    pl.add_argument("--num-envs", type=int, default=256, help="with --train: training envs (default 256)")
    pl.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="with --train: seeds (default 1 2 3)")
    pl.add_argument("--skills", nargs="+", default=None, metavar="SKILL",
                    help="shipped skills to evaluate (default: all of policies/)")
    pl.add_argument("--library", action="store_true",
                    help="also the rows of policies of several clips (policies/all_skills_s*: one row per clip, "
                         "about 3 more minutes on 2 cores)")
    pl.add_argument("--jobs", type=int, default=2,
                    help="skills evaluated at the same time, or with --train trainings at the same time (default 2)")
    pl.add_argument("--no-index", action="store_true", help=argparse.SUPPRESS)  # one skill of a parallel run
    pl.add_argument("--ranks", type=int, default=1,
                    help="with --train: processes per training, sharing its --num-envs (default 1; jobs x ranks "
                         "processes share the cores)")
    pl.add_argument("--sweep", type=int, default=100, metavar="EPISODES",
                    help="with --train: randomized episodes per evaluated checkpoint (0: none; default 100)")
    pl.add_argument("--sweep-every", type=int, default=50, help="with --train: one checkpoint per this many iterations")
    pl.add_argument("--episodes", type=int, default=100, help="evaluation episodes per policy, seed and condition")
    pl.add_argument("--no-video", action="store_true")
    pl.add_argument("--device", default="cpu", help="cpu or cuda")
    pl.set_defaults(func=cmd_pipeline)


def cmd_pipeline(args) -> int:
    """The main job on the bundled defaults: every shipped skill's motion file retargeted (and refined where its
    policies were trained on a refined clip: from the repository's cache when it matches), its shipped policies
    evaluated against it, nominal and randomized, and its report written (imitation.tools.pipeline); the backflip's
    is the comparison of imitation against reward-only. With --train: train the backflip's two policies for the
    same seeds and env-step budget (and evaluate their checkpoints) and compare them instead.
    """
    from .tools.pipeline import pipeline

    out = Path(args.out)
    if not args.train:
        pipeline(out, skills=args.skills, jobs=args.jobs, episodes=args.episodes, video=not args.no_video,
                 device=args.device, index=not args.no_index, library=args.library)
        return 0

    from .refine.run import cached_refinement
    from .tools.compare import compare

    clips = out / "clips"
    source = PROJECT_ROOT / "motions" / "backflip.yaml"
    cmd_retarget(argparse.Namespace(source=str(source), output=str(clips / "backflip.h5"), fps=50.0, source_robot=None,
                                    plot=str(clips / "backflip.png"), animate=str(clips / "backflip.gif")))
    refined = cached_refinement(source, PROJECT_ROOT / "motions" / "refined" / "backflip.h5",
                                clips / "backflip_refined.h5", device=args.device)
    report = compare(out / "backflip", iterations=args.iterations, num_envs=args.num_envs, seeds=tuple(args.seeds),
                     jobs=args.jobs, sweep=args.sweep, sweep_every=args.sweep_every, ranks=args.ranks,
                     episodes=args.episodes, video=not args.no_video, device=args.device, clip=refined,
                     title="backflip")
    print(f"report: {report}")
    return 0


def _args_learn(sub) -> None:
    ln = sub.add_parser("learn", help="one command from a motion file to a shipped skill: retarget, refine, train "
                                      "with checkpoint evaluations and an early stop, ship, report")
    ln.add_argument("motion", help="motion file (keyframe .yaml, motion_imitation .txt/.json, .csv)")
    ln.add_argument("--name", default=None, help="skill name (default: the file's stem); policies NAME_s<seed>")
    ln.add_argument("--seeds", type=int, nargs="+", default=[1], help="training seeds (default: 1)")
    ln.add_argument("--env-steps", type=int, default=3_000_000, help="training budget per seed (default 3M)")
    ln.add_argument("--ship-to", default=str(PROJECT_ROOT / "policies"),
                    help="where the policy folders go (default: the project's policies/, which also adds the skill "
                         "to the main job and its row to docs/results/skills.md)")
    ln.add_argument("--config", default=None, help="experiment YAML (default: configs/imitation.yaml, or "
                                                   "configs/imitation_loop.yaml for a looping clip)")
    ln.add_argument("--refine", choices=("auto", "always", "never"), default="auto",
                    help="physics refinement: auto = motions that end, not loops (default)")
    ln.add_argument("--source-robot", default=None, help="robot the source was made for (configs/mappings/NAME.yaml)")
    ln.add_argument("--fps", type=float, default=None, help="retargeting frame rate (default: the source's)")
    ln.add_argument("--method", choices=("auto", "joints", "feet"), default="auto",
                    help="retargeting method (auto: joints, or feet where the joints leave the feet floating)")
    ln.add_argument("--num-envs", type=int, default=256, help="training envs (default 256)")
    ln.add_argument("--episodes", type=int, default=100, help="randomized episodes per checkpoint evaluation")
    ln.add_argument("--eval-every", type=int, default=50, help="iterations between evaluated checkpoints")
    ln.add_argument("--stop-rate", type=float, default=0.95, help="success rate the evaluations must hold to stop")
    ln.add_argument("--stop-span", type=int, default=500_000, metavar="ENV_STEPS",
                    help="env steps over which they must hold it (default 0.5M)")
    ln.add_argument("--work", default=None, help="work folder (default: runs/learn/NAME)")
    ln.add_argument("--no-report", action="store_true", help="skip the report (evaluations, MuJoCo, video)")
    ln.add_argument("--refine-jobs", type=int, default=None,
                    help="refinement processes (default: one per core on the CPU)")
    ln.add_argument("--init-from", default=None, metavar="POLICY",
                    help="fine-tune from a shipped policy folder, run folder or checkpoint (e.g. a policy of several "
                         "skills); its observation and network replace the config's")
    ln.add_argument("--device", default="cpu", help="cpu or cuda")
    ln.set_defaults(func=cmd_learn)


def cmd_learn(args) -> int:
    from .tools.learn import Plan, learn

    if args.env_steps < 1 or args.num_envs < 1 or args.episodes < 1 or args.eval_every < 1:
        raise InputError("--env-steps, --num-envs, --episodes and --eval-every must be positive")
    if not 0.0 < args.stop_rate <= 1.0:
        raise InputError(f"--stop-rate must be in (0, 1], got {args.stop_rate}")
    source = Path(args.motion)
    name = args.name or source.stem
    plan = Plan(source=source, name=name, work=Path(args.work or Path("runs") / "learn" / name), seeds=args.seeds,
                env_steps=args.env_steps, ship_to=Path(args.ship_to), config=Path(args.config) if args.config else None,
                refine=args.refine, source_robot=args.source_robot, fps=args.fps, method=args.method,
                num_envs=args.num_envs, episodes=args.episodes, eval_every=args.eval_every, stop_rate=args.stop_rate,
                stop_span=args.stop_span, report=not args.no_report, refine_jobs=args.refine_jobs, device=args.device,
                init_from=Path(args.init_from) if args.init_from else None)
    try:
        shipped = learn(plan)
    except KeyboardInterrupt:
        print(f"interrupted: what is done is kept in {plan.work}; the same command continues", file=sys.stderr)
        return 130
    for dest in shipped:
        print(f"shipped: {dest}")
    return 0


def _args_bench(sub) -> None:
    b = sub.add_parser("bench", help="throughput: env step vs bare Genesis stepping of the same scene, "
                                     "reward-only env, PPO collection vs update (CPU)")
    b.add_argument("--num-envs", default="64,256,1024", help="comma-separated env counts (default 64,256,1024)")
    b.add_argument("--steps", type=int, default=100, help="timed steps per measurement (default 100)")
    b.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (default 3)")
    b.add_argument("--clip", default=None, help="reference clip of both envs (default: the configs'; if missing, "
                                                "the bundled keyframe backflip retargeted to a temporary file)")
    b.add_argument("--no-ppo", action="store_true", help="skip the PPO iteration")
    b.add_argument("--json", default=None, help="write the results here")
    b.add_argument("--parts", action="store_true",
                   help="also show where each env's step() time goes (physics, Genesis calls, our tensor code)")
    b.add_argument("--ranks", default=None, metavar="N,M",
                   help="also time PPO iterations as one training over each of these rank counts (e.g. 1,2) at each "
                        "--num-envs in total, side by side; the JSON's \"scaling\" section has their speedup")
    b.add_argument("--scaling-only", action="store_true",
                   help="with --ranks: only that (no env-step or in-process PPO measurement)")
    b.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from .tools.bench import run

    try:
        num_envs = [int(v) for v in args.num_envs.split(",") if v.strip()]
        ranks = [int(v) for v in args.ranks.split(",") if v.strip()] if args.ranks else []
    except ValueError:
        raise SystemExit(f"imitation bench: --num-envs and --ranks take comma-separated integers, "
                         f"got {args.num_envs!r} and {args.ranks!r}")
    if not num_envs or min(num_envs) < 1 or args.steps < 1 or args.repeats < 1 or min(ranks, default=1) < 1:
        raise SystemExit("imitation bench: --num-envs, --ranks, --steps and --repeats must be positive")
    uneven = [(n, k) for n in num_envs for k in ranks if n % k]
    if uneven:
        raise SystemExit(f"imitation bench: {uneven[0][0]} envs do not split evenly over {uneven[0][1]} ranks")
    if args.scaling_only and not ranks:
        raise SystemExit("imitation bench: --scaling-only needs --ranks")
    run(num_envs, steps=args.steps, repeats=args.repeats, ppo=not args.no_ppo, json_path=args.json, clip=args.clip,
        parts=args.parts, ranks=ranks, scaling_only=args.scaling_only)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="imitation", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_args_retarget, _args_chain, _args_train, _args_eval, _args_play, _args_compare, _args_sweep, _args_ship, _args_record, _args_refine, _args_pipeline, _args_learn, _args_bench):
        add(sub)
    return p


def main(argv=None) -> int:
    # Genesis' kernel compiler buffers kernel prints whenever sys.stdout is not the console (our logs redirect it)
    # and says so on the terminal; no kernel of ours prints.
    os.environ.setdefault("QD_ENABLE_PYBUF", "0")
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
