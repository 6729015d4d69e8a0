"""Parallel jobs (joblib launcher, several machines) log the same splits into one sqlite store at once.

MLflow's SQL store checks for an existing dataset row and then inserts, so jobs that start together
race on the (experiment, name, digest) unique constraint. Real processes, a real sqlite store.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SPLITS = ("train", "dev", "test")


def _log_same_splits(uri: str, run_id: str, go: str) -> str:
    import dspy
    import mlflow

    from dspy_mlflow.tracking.run_logging import log_splits

    mlflow.set_tracking_uri(uri)
    splits = {name: [dspy.Example(text=f"{name} {i}", label="x").with_inputs("text") for i in range(5)]
              for name in SPLITS}
    while not Path(go).exists():  # start together
        time.sleep(0.001)
    with mlflow.start_run(run_id=run_id):
        try:
            log_splits("demo", splits)
        except Exception as exc:  # reported, so the assertion shows it
            return f"{type(exc).__name__}: {exc}"[:300]
    return "ok"


def test_jobs_starting_together_all_log_their_splits_once_each(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    workers, rounds = 4, 3
    with mp.get_context("spawn").Pool(workers) as pool:
        for k in range(rounds):
            exp = client.create_experiment(f"race-{k}")
            runs = [client.create_run(exp).info.run_id for _ in range(workers)]
            go = tmp_path / f"go-{k}"
            pending = pool.starmap_async(_log_same_splits, [(uri, r, str(go)) for r in runs])
            time.sleep(0.5 if k else 5)  # the first round waits for the workers to import mlflow
            go.touch()
            assert pending.get(timeout=300) == ["ok"] * workers
            for run_id in runs:
                inputs = client.get_run(run_id).inputs.dataset_inputs
                assert sorted(i.dataset.name for i in inputs) == [f"demo-{s}" for s in sorted(SPLITS)]
                contexts = {i.dataset.name: {t.key: t.value for t in i.tags}["mlflow.data.context"] for i in inputs}
                assert contexts == {f"demo-{s}": s for s in SPLITS}
            # one dataset row per split, shared by all runs of the experiment
            datasets = {(i.dataset.name, i.dataset.digest) for r in runs for i in client.get_run(r).inputs.dataset_inputs}
            assert len(datasets) == len(SPLITS)


def test_only_a_duplicate_row_is_retried(monkeypatch):
    """The retry rule on its own: MLflow's log_inputs is replaced by a stand-in that fails as told
    (the real race is exercised above, but cannot be made to happen on demand)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from dspy_mlflow.tracking import run_logging as job_logging

    calls = []

    def failing(message, times):
        def log_inputs(**kwargs):
            calls.append(kwargs)
            if len(calls) <= times:
                raise MlflowException(message)
        return log_inputs

    monkeypatch.setattr(job_logging.time, "sleep", lambda s: None)
    monkeypatch.setattr(mlflow, "log_inputs", failing("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets", 2))
    job_logging._log_inputs_retrying(["d"], ["train"])
    assert len(calls) == 3

    calls.clear()
    monkeypatch.setattr(mlflow, "log_inputs", failing("(sqlite3.IntegrityError) NOT NULL constraint failed", 1))
    with pytest.raises(MlflowException, match="NOT NULL"):
        job_logging._log_inputs_retrying(["d"], ["train"])
    assert len(calls) == 1
