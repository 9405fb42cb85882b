"""Motion imitation for the Unitree Go2 in Genesis: stages 2-4 of the pipeline (stage 1, motion file -> clip, is
the `retarget` package).

    clip -> refine/ -> env/ -> rl/ -> evaluation/ -> analysis/ (report)
                                  `-> bundle.py -> sim2sim/ (the same policy judged in MuJoCo)

    cli.py        the `imitation` command; each subcommand imports its stage lazily
    config.py     experiment YAML: the schema, includes, defaults, config paths
    runs.py       the run folder and the shipped-policy folder: file names, checkpoints, progress, eval curves
    sim.py        Genesis started once per process; the CPU cores a process may use
    utils/        batched quaternions (torch), Genesis start-up noise kept off the terminal
    env/          the Genesis env and its parts: reference, rewards, success rule, start sampler, rollout loop
    refine/       kinematic clip -> physically exact clip (CMA-ES over PD targets, physics recording)
    rl/           PPO training, on one process or several ranks
    evaluation/   policies, deterministic evaluation, checkpoint sweeps, videos
    analysis/     episode metrics and the comparison report (numpy and matplotlib)
    bundle.py     the policy bundle: what a runner needs of a shipped policy, as JSON and ONNX metadata
    sim2sim/      a shipped policy run from its bundle and judged in MuJoCo (imports no genesis)
    tools/        commands that run the stages together: compare, ship, bench, scaling

A package imports only from those before it in this order (and `retarget`):

    utils -> config, runs, sim -> env -> analysis, bundle -> refine, rl, evaluation -> sim2sim -> tools -> cli

with one lookup against it: config checks reward term names and parameters in the env's registry
(imitation.env.rewards), importing it when a config is validated.
"""
