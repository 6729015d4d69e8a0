"""Is this job already FINISHED? Asked of the store directly, before MLflow is imported
(:func:`lookup`), or through MLflow (:func:`find_finished`).

A skip should cost less than the imports of the job it skips. For a sqlite store the question
is one read-only query on MLflow's tables; for a tracking server, MLflow's REST API
(``runs/search``). Anything else, and any surprise (another schema, a server that wants auth
this does not send), answers None and the job asks through MLflow as before. So does a
stale RUNNING run in the experiment: the job's full path ends it KILLED before it skips.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dspy_mlflow.tracking.heartbeat import TAG as HEARTBEAT_TAG
from dspy_mlflow.tracking.heartbeat import stale_reason
from dspy_mlflow.tracking.identity import IDENTITY, hash_tag, identity_filter

# MLflow's own transport settings this module does not reproduce: with any of them, ask MLflow
_MLFLOW_TRANSPORT = ("MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
                     "MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLFLOW_TRACKING_AUTH", "MLFLOW_WORKSPACE",
                     "MLFLOW_ENABLE_WORKSPACES")


@dataclass
class Finished:
    run_id: str
    metrics: dict[str, float]
    optimizer: str | None


def find_finished(experiment_id: str, hashes: dict[str, str]):
    """The newest FINISHED run with this config hash, and which parts of its identity match (through MLflow)."""
    import mlflow

    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{hash_tag('config')}` = '{hashes['config']}' and attributes.status = 'FINISHED'",
        max_results=20, output_format="list", order_by=["attributes.start_time DESC"],
    )
    for run in runs:
        if all(run.data.tags.get(hash_tag(part)) == hashes[part] for part in IDENTITY):
            return run, []
    if not runs:
        return None, []
    latest = runs[0]
    return None, [part for part in IDENTITY if latest.data.tags.get(hash_tag(part)) != hashes[part]]


def lookup(uri: str, hashes: dict[str, str], *, experiment: str, experiment_id: str | None = None
           ) -> Finished | None:
    """The newest FINISHED, active run of this identity in the experiment, if the store can say cheaply."""
    if any(os.environ.get(k) for k in _MLFLOW_TRANSPORT):
        return None
    try:
        if uri.startswith("sqlite:///") and "?" not in uri:
            return _from_sqlite(Path(uri[len("sqlite:///"):]), hashes, experiment, experiment_id)
        if uri.startswith(("http://", "https://")):
            return _from_server(uri.rstrip("/"), hashes, experiment, experiment_id)
    except Exception:  # a shortcut only: whatever goes wrong, MLflow's own path decides
        return None
    return None


_SQL = f"""
SELECT r.run_uuid FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
{" ".join(f"JOIN tags t{i} ON t{i}.run_uuid = r.run_uuid AND t{i}.key = '{hash_tag(part)}' AND t{i}.value = ?"
          for i, part in enumerate(IDENTITY))}
WHERE {{experiment}} AND e.lifecycle_stage = 'active' AND r.status = 'FINISHED' AND r.lifecycle_stage = 'active'
ORDER BY r.start_time DESC LIMIT 1
"""


def _from_sqlite(path: Path, hashes, experiment: str, experiment_id: str | None) -> Finished | None:
    if not path.is_file():
        return None
    where, key = ("e.experiment_id = ?", int(experiment_id)) if experiment_id else ("e.name = ?", experiment)
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as db:
        row = db.execute(_SQL.format(experiment=where), [*(hashes[p] for p in IDENTITY), key]).fetchone()
        if row is None:
            return None
        run_id = row[0]
        beats = db.execute(
            "SELECT t.value FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
            "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = ? "
            f"WHERE {where} AND r.status = 'RUNNING' AND r.lifecycle_stage = 'active'", [HEARTBEAT_TAG, key])
        if any(stale_reason(value) for (value,) in beats):
            return None
        metrics = {k: (math.nan if is_nan else float(v)) for k, v, is_nan in db.execute(
            "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", [run_id])}
        param = db.execute("SELECT value FROM params WHERE run_uuid = ? AND key = 'optimizer.resolved'",
                           [run_id]).fetchone()
    return Finished(run_id, metrics, param[0] if param else None)


def _from_server(base: str, hashes, experiment: str, experiment_id: str | None) -> Finished | None:
    if experiment_id is None:
        query = urllib.parse.urlencode({"experiment_name": experiment})
        found = _call(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}")
        if found is None:
            return None
        experiment_id = found["experiment"]["experiment_id"]
    body = {"experiment_ids": [experiment_id],
            "filter": f"{identity_filter(hashes)} and attributes.status = 'FINISHED'",
            "max_results": 1, "order_by": ["attributes.start_time DESC"]}
    found = _call(f"{base}/api/2.0/mlflow/runs/search", body)
    if not found or not found.get("runs"):
        return None
    running = _call(f"{base}/api/2.0/mlflow/runs/search", {
        "experiment_ids": [experiment_id], "filter": "attributes.status = 'RUNNING'", "max_results": 500})
    if running is None or any(stale_reason(t["value"]) for r in running.get("runs", [])
                              for t in r["data"].get("tags", []) if t["key"] == HEARTBEAT_TAG):
        return None
    run = found["runs"][0]
    params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
    metrics = {m["key"]: float(m["value"]) for m in run["data"].get("metrics", [])}
    return Finished(run["info"]["run_id"], metrics, params.get("optimizer.resolved"))


def _call(url: str, body: dict | None = None) -> dict | None:
    headers = {"Content-Type": "application/json"}
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    elif os.environ.get("MLFLOW_TRACKING_USERNAME") or os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        return None  # basic auth: MLflow's client does it
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError:
        return None
