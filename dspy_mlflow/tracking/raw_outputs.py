"""A run's raw_outputs.jsonl (one row per test example: split, index, inputs, gold, prediction, score, ...)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.exceptions import MlflowException

from dspy_mlflow.errors import CompareError
from dspy_mlflow.tracking.run_artifacts import download

if TYPE_CHECKING:
    from mlflow import MlflowClient

ARTIFACT = "raw_outputs.jsonl"


def load_raw_outputs(client: MlflowClient, run_id: str) -> list[dict[str, Any]]:
    """The rows of run ``run_id``'s raw_outputs.jsonl; CompareError when the run has none or they are unreadable."""
    try:
        names = {a.path for a in client.list_artifacts(run_id)}
    except MlflowException as exc:
        raise CompareError(f"cannot list the artifacts of run {run_id}: {str(exc).strip().splitlines()[0]}") from None
    if ARTIFACT not in names:
        raise CompareError(f"run {run_id} has no {ARTIFACT} artifact (a job logs it after evaluating the test split)")
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(download(client, run_id, ARTIFACT, tmp)).read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise CompareError(f"run {run_id}: {ARTIFACT} line {number} is not JSON") from None
        if not isinstance(row, dict):
            raise CompareError(f"run {run_id}: {ARTIFACT} line {number} is not a JSON object")
        rows.append(row)
    return rows


