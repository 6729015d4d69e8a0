"""Forecasts before spending: tokens, dollars and time per job, from history, a probe or a dry run."""
