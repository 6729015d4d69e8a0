"""A job whose experiment another process creates at the same moment still runs in that experiment.

MLflow's set_experiment, when its create_experiment loses that race (RESOURCE_ALREADY_EXISTS),
returns the experiment without making it active, and the run lands in experiment 0. Seen in the
3-worker Optuna test on a fresh tracking server. The window between MLflow's name lookup and its
create cannot be hit on purpose, so this test widens it: the first lookup by name answers "not
there" (the one patched call), while the experiment is really created by another client.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.tracking._tracking_service.client import TrackingServiceClient

from dspy_mlflow.tracking.experiment import activate_experiment


def test_an_experiment_created_meanwhile_by_another_process_is_the_active_one(tmp_path, monkeypatch):
    import mlflow

    store = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(store)
    name = "created-meanwhile"
    real_lookup = TrackingServiceClient.get_experiment_by_name
    calls = []

    def lost_race(self, experiment_name):
        calls.append(experiment_name)
        if len(calls) == 1:  # the other process creates it right after this lookup
            MlflowClient(store).create_experiment(experiment_name)
            return None
        return real_lookup(self, experiment_name)

    monkeypatch.setattr(TrackingServiceClient, "get_experiment_by_name", lost_race)
    experiment = activate_experiment(name)
    assert experiment.name == name and calls, "the lookup lost the race"
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == experiment.experiment_id != "0"
