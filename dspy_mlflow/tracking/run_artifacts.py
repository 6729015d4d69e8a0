"""Download a run's own artifact from its artifact location.

``MlflowClient.download_artifacts(run_id, path)`` goes through a ``runs:/`` URI, and MLflow 3's
runs artifact repository first searches the experiment's logged models for one named ``path``
(``RunsArtifactRepository._get_logged_model_artifact_repo``): a scan that grows with every job
logged. A job's ``config.yaml``, ``program/program.json`` and ``raw_outputs.jsonl`` are run
artifacts, so the run's artifact repository is asked directly.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient


def download(client: MlflowClient, run_id: str, path: str, dst: str) -> str:
    """The local path of run ``run_id``'s artifact ``path``, downloaded into ``dst``."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    run = client.get_run(run_id)
    repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=client.tracking_uri)
    with _no_progress_bar():
        return repo.download_artifacts(path, dst)


@contextlib.contextmanager
def _no_progress_bar():
    """MLflow draws a download bar on stderr per artifact; a one-line command must not."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    saved = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved
