"""The experiment a job's run goes to."""

from __future__ import annotations

import os

import mlflow


def activate_experiment(name: str, experiment_id: str | None = None):
    """The sweep's experiment (``experiment_id``); else the one of the run `mlflow run` created; else
    ``name``. Made active by id: when another process created it a moment before, set_experiment
    returns it without making it active (mlflow/tracking/fluent.py, RESOURCE_ALREADY_EXISTS) and the
    run would go to experiment 0."""
    if experiment_id:
        return mlflow.set_experiment(experiment_id=experiment_id)
    if os.environ.get("MLFLOW_RUN_ID"):
        run = mlflow.MlflowClient().get_run(os.environ["MLFLOW_RUN_ID"])
        return mlflow.set_experiment(experiment_id=run.info.experiment_id)
    experiment = mlflow.set_experiment(name)
    return mlflow.set_experiment(experiment_id=experiment.experiment_id)
