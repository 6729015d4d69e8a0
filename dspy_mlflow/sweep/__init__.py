"""Multirun sweeps: one MLflow parent run, a child per job, a leaderboard at the end."""
