"""Numbers and reports from recorded episodes and training logs, without torch or genesis at import time:
episode metrics of a Trajectory and their tables (metrics.py), the comparison report with its verdicts and figures
(report.py)."""
