"""Runs of an experiment or sweep side by side, as a pandas DataFrame."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dspy_mlflow import names
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.registry import versions as C
from dspy_mlflow.tracking import store

if TYPE_CHECKING:
    import pandas

DEFAULT_EXPERIMENT = "dspy_mlflow"
PARAM_COLUMNS = ("model", "optimizer", "strategy", "project")
METRIC_COLUMNS = (
    "test/score",
    "test/score_ci_low",
    "test/score_ci_high",
    "dev/score",
    "dev/baseline_score",
    "eval/tokens_in",
    "eval/tokens_out",
    "compile/tokens_in",
    "compile/tokens_out",
    "cost/total_usd",
    "cost/list_usd",
    "eval/cache_hits",
    "compile/cache_hits",
    "lm/calls",
    "eval/errors",
    "eval/latency_p50_ms",
    "eval/latency_p95_ms",
)
# counts stay whole numbers (pandas' nullable Int64: a run that did not log one shows <NA>)
INT_COLUMNS = ("eval/tokens_in", "eval/tokens_out", "compile/tokens_in", "compile/tokens_out", "eval/cache_hits",
               "compile/cache_hits", "lm/calls", "eval/errors")
COLUMNS = ("run_id", "run_name", "status", *PARAM_COLUMNS, "sweep_id", "start_time", *METRIC_COLUMNS, "duration_s")
SWEEP_TAG = names.SWEEP_ID


def job_fields(run, metric_keys) -> dict:
    """A job run's model, optimizer (``auto`` resolved to its pick), strategy, project and metrics."""
    params, metrics = run.data.params, run.data.metrics
    return {
        **{k: params.get(k) for k in PARAM_COLUMNS},
        "optimizer": params.get("optimizer.resolved") or params.get("optimizer"),
        **{k: metrics.get(k) for k in metric_keys},
    }


def runs_frame(
    experiment: str = DEFAULT_EXPERIMENT, sweep_id: str | None = None, tracking_uri: str | None = None,
    limit: int | None = None,
) -> pandas.DataFrame:
    """One row per job run of ``experiment`` (optionally only sweep ``sweep_id``), best test/score first;
    with ``limit``, only the best ``limit`` (the store sorts and stops: the cost does not grow with it).

    Job runs are the runs with a ``model`` param: a sweep's parent run and the nested runs of
    autolog evaluations or Optuna trials without one are left out.
    """
    import pandas as pd

    c = store.client(tracking_uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        existing = sorted(e.name for e in c.search_experiments(max_results=50))
        raise ConfigError("experiment", experiment, "existing experiments: " + (", ".join(existing) or "none"))
    filter_string = "params.model LIKE '%'"  # job runs only, asked of the store
    if sweep_id:
        filter_string += f" and tags.`{SWEEP_TAG}` = '{C.quote(sweep_id)}'"
    runs, token = [], None
    while limit is None or len(runs) < limit:
        page = c.search_runs([exp.experiment_id], filter_string, max_results=min(1000, limit or 1000),
                             order_by=["metrics.`test/score` DESC", "attributes.start_time DESC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    runs = runs[:limit]
    if sweep_id:
        runs += _reused_by_sweep(c, exp.experiment_id, sweep_id, {r.info.run_id for r in runs})
    rows = []
    for run in runs:
        if "model" not in run.data.params:
            continue
        start, end = run.info.start_time, run.info.end_time
        rows.append({
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            **job_fields(run, METRIC_COLUMNS),
            "sweep_id": run.data.tags.get(SWEEP_TAG),
            "start_time": pd.Timestamp(start, unit="ms", tz="UTC") if start else pd.NaT,
            "duration_s": (end - start) / 1000.0 if start and end else None,
        })
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for k in (*METRIC_COLUMNS, "duration_s"):
        frame[k] = pd.to_numeric(frame[k], errors="coerce")
    for k in INT_COLUMNS:
        frame[k] = frame[k].round().astype("Int64")
    return frame.sort_values("test/score", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def _reused_by_sweep(c, experiment_id: str, sweep_id: str, have: set[str]) -> list:
    """Earlier runs the sweep's skipped jobs reused (listed on its parent run)."""
    parents = c.search_runs([experiment_id], f"tags.`{SWEEP_TAG}` = '{C.quote(sweep_id)}' and "
                                             f"tags.`dspy_mlflow.sweep_parent` = 'true'")
    ids = {i for p in parents for i in (p.data.tags.get(names.REUSED_RUNS) or "").split(",") if i and i not in have}
    return [c.get_run(i) for i in sorted(ids)]
