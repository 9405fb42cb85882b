"""Evaluation of trained policies in the env.

    policy.py    load a run folder, checkpoint, export or external TorchScript policy as a deterministic callable
    evaluate.py  deterministic episodes from t = 0, nominal or randomized, scored against the reference
    sweep.py     every checkpoint of a run evaluated the same way: success against training env steps
    render.py    videos of rollouts beside the reference ghost (a separate, visual-only Genesis scene)
"""
