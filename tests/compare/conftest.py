"""Fixtures for the compare tests: a sqlite store and registered versions whose source runs hold a
raw_outputs.jsonl with known per-example scores (written here, so no LM is called)."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def store_uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('compare_store')}/mlflow.db"


@pytest.fixture
def store(store_uri):
    """The sqlite store as the process's tracking and registry URI for one test."""
    import mlflow

    mlflow.set_tracking_uri(store_uri)
    mlflow.set_registry_uri(store_uri)
    yield store_uri


@pytest.fixture
def name() -> str:
    return f"sentiment_{uuid.uuid4().hex[:8]}"


def rows_of(scores, *, split="test", inputs=None, seed=0) -> list[dict]:
    """raw_outputs.jsonl rows, one per score, in a shuffled (completion) order."""
    rows = [{"split": split, "index": i, "inputs": (inputs or (lambda i: {"text": f"review {i}"}))(i),
             "gold": {"label": "positive"}, "prediction": {"label": "positive" if s else "negative"},
             "score": float(s), "latency_ms": 1.0, "tokens_in": 10, "tokens_out": 2, "cost_usd": 0.0,
             "error": None} for i, s in enumerate(scores)]
    random.Random(seed).shuffle(rows)
    return rows


def log_run(rows: list[dict] | None, *, metrics: dict | None = None, experiment: str = "compare_tests") -> str:
    """A FINISHED job-like run with ``rows`` as its raw_outputs.jsonl (none when ``rows`` is None)."""
    import tempfile

    import mlflow

    uri = mlflow.get_tracking_uri()
    if mlflow.get_experiment_by_name(experiment) is None:  # artifacts next to the database
        root = Path(uri[len("sqlite:///"):]).parent / "artifacts" / experiment
        mlflow.create_experiment(experiment, artifact_location=root.as_uri())
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        mlflow.log_params({"model": "offline", "optimizer": "none", "strategy": "predict", "project": "sentiment"})
        if rows:
            mlflow.log_metric("test/score", sum(r["score"] for r in rows) / len(rows))
        if metrics:
            mlflow.log_metrics(metrics)
        if rows is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "raw_outputs.jsonl"
                path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
                mlflow.log_artifact(str(path))
    return run.info.run_id


def register(name: str, rows: list[dict] | None, *, production: bool = False):
    """A new version of ``name`` whose source run holds ``rows``; promoted when ``production``."""
    import mlflow

    from dspy_mlflow.registry.promotion import promote
    from dspy_mlflow.registry.register import register_program

    run_id = log_run(rows)
    mlflow.clear_active_model()
    logged = mlflow.initialize_logged_model(name="program", source_run_id=run_id)
    mlflow.finalize_logged_model(logged.model_id, "READY")
    cfg = {"model": {"name": "offline"}, "optimizer": {"name": "none"}, "strategy": {"name": "predict"},
           "project": {"name": "sentiment"}}
    mv = register_program(run_id=run_id, model_uri=f"models:/{logged.model_id}", name=name, cfg=cfg,
                          metrics={}, signature_hash="sig", parent=None)
    if production:
        promote(name, mv.version)
    return mv
