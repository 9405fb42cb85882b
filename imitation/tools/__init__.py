"""Commands that orchestrate the stages.

    compare.py   imitation against reward-only: train (or take runs), evaluate, report, video
    ship.py      a finished run as a small self-contained policy folder (policies/)
    bench.py     throughput of the env step against bare Genesis stepping, and of a PPO iteration
    scaling.py   PPO iterations of one process against several ranks (bench --ranks)
"""
