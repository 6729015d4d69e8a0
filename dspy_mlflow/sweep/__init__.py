"""Multirun sweeps: Hydra's callback (``callback.py``), the MLflow parent run (``parent.py``), the
jobs' records (``state.py``), a FAILED run for a job that failed early (``failed.py``), the leaderboard.
"""
