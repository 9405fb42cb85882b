"""Physics refinement: a kinematic clip becomes a physically exact one with the open-loop PD targets that
produce it (`imitation refine`).

    knots.py   the search space: PD-target offsets on time knots, windows, left/right symmetry
    cost.py    the batched cost of a candidate's simulated rollout against the source
    search.py  CMA-ES (pycma) window by window, one candidate per env of one scene; checkpoints
    record.py  physics recording: a clip replayed in the env (zero or given actions) and stored as a clip
    report.py  the report and the feasibility verdict, from a clip's stored arrays
    run.py     the stage end to end: source -> search -> recorded replay -> report -> OUT.h5
"""
