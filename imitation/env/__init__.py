"""The Genesis env and its parts.

    imitation_env.py   ImitationEnv: the batched Go2 scene with rsl-rl's VecEnv interface, and its playback mode
    rollout.py         the one rollout loop: episodes from a start frame with a policy or open-loop actions, and hooks
    reference.py       Reference: the clip on the env's clock (control-rate frames, loops and their cycle offsets)
    rewards.py         reward terms (small pure functions of State and RefFrame) and their weighted RewardSum
    terminations.py    early terminations, terms of the same kind switched on by the config's `termination` section
    start_sampler.py   RSI start frames, uniform or by recent failures
    success.py         the reference-derived success rule (Outcome, expected, judge), batched in torch
    online_success.py  that rule applied to the training episodes that start at t = 0
    stats.py           episode statistics for rsl-rl's logger, without host syncs

Only imitation_env.py imports genesis: the other modules need torch only, so the config, the analysis and the
tests can use them without starting the simulator.
"""
