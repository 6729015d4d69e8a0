"""A job's data in its run: the splits as MLflow dataset inputs, the raw outputs as a file and a table."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any


def log_splits(project_name: str, splits: dict[str, list]) -> None:
    """The train/dev/test splits as MLflow dataset inputs."""
    import mlflow
    import pandas as pd

    datasets = []
    for context, examples in splits.items():
        rows = [{k: _encodable(v) for k, v in {**ex.inputs().toDict(),
                                               **{f"gold.{k}": v for k, v in ex.labels().toDict().items()}}.items()}
                for ex in examples]
        datasets.append(mlflow.data.from_pandas(pd.DataFrame(rows), name=f"{project_name}-{context}"))
    _log_inputs_retrying(datasets, list(splits))


def _encodable(value: Any) -> Any:
    """Text a table can hold: a lone surrogate (no UTF-8 for it) is shown escaped, e.g. \\ud83d."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


_DUPLICATE_ROW = re.compile(r"UNIQUE constraint|duplicate key|Duplicate entry", re.IGNORECASE)


def _log_inputs_retrying(datasets: list, contexts: list[str], attempts: int = 5) -> None:
    """``mlflow.log_inputs`` that survives parallel jobs logging the same dataset.

    MLflow's SQL store checks for an existing (experiment, name, digest) row and then inserts,
    so two jobs starting together can both insert and one fails on the unique constraint.
    The failed transaction wrote nothing; on retry it finds the other job's row and reuses it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            mlflow.log_inputs(datasets=datasets, contexts=contexts, tags_list=[None] * len(datasets))
            return
        except MlflowException as err:
            if attempt == attempts - 1 or not _DUPLICATE_ROW.search(str(err)):
                raise
            time.sleep(random.uniform(0.01, 0.1) * (attempt + 1))


def log_raw_outputs(raw_path: Path) -> None:
    """raw_outputs.jsonl as it is, and an MLflow table of the same for the UI.

    The table reads left to right as a person checks an example: index, each input field, gold,
    prediction, score, error, then the measurements; rows in example order.
    """
    import mlflow
    import pandas as pd

    if not raw_path.exists():
        return
    mlflow.log_artifact(str(raw_path))
    rows = [json.loads(line) for line in raw_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if rows:
        rows.sort(key=lambda row: (row.get("split", ""), row.get("index", 0), row.get("repeat", 0)))
        table = pd.DataFrame([_table_row(row) for row in rows])
        mlflow.log_table(table, artifact_file="raw_outputs_table.json")


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    """One example: input fields as columns (``inputs.NAME`` where NAME is taken), gold and
    prediction as the bare value of a one-field answer, else as JSON text."""
    out: dict[str, Any] = {"index": row.get("index")}
    for name, value in (row.get("inputs") or {}).items():
        column = f"inputs.{name}" if name in row or name in out else name
        out[column] = _cell(value)
    for key in ("gold", "prediction"):
        out[key] = _cell(_single_value(row.get(key)))
    out.update(score=row.get("score"), error=_encodable(row.get("error")))
    out.update({k: _encodable(v) for k, v in row.items() if k not in out and k != "inputs"})
    return out


def _single_value(value: Any) -> Any:
    return next(iter(value.values())) if isinstance(value, dict) and len(value) == 1 else value


def _cell(value: Any) -> Any:
    """A scalar as it is; a list or object as JSON text a table cell shows whole."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    return _encodable(value)
