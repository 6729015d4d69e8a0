"""A sweep job that failed before its run existed still gets a FAILED run."""

from __future__ import annotations

from collections.abc import Mapping

from dspy_mlflow import names
from dspy_mlflow.project.loader import project_name


def record_failed_run(cfg: Mapping, *, sweep_id: str, parent_run_id: str | None, error: str) -> str | None:
    from mlflow import MlflowClient

    tracking = cfg.get("tracking") or {}
    client = MlflowClient(str(tracking.get("uri")))
    experiment = client.get_experiment_by_name(str(tracking.get("experiment")))
    if experiment is None:
        return None
    params = {g: str((cfg.get(g) or {}).get("name")) for g in ("model", "optimizer", "strategy", "project")}
    if cfg.get("project"):  # named after its module when not named, as the job would be
        params["project"] = project_name(cfg["project"])
    tags = {names.SWEEP_ID: sweep_id, names.ERROR: error[:5000]}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(experiment.experiment_id, run_name=names.run_name(cfg), tags=tags)
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, "FAILED")
    return run.info.run_id
