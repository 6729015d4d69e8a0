"""DSPy traces through ``mlflow.dspy.autolog``: how they are exported, turned on, and flushed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any


def configure_export(tracking_uri: str) -> None:
    """Exporter settings for a job's traces; a user's own values win."""
    if str(tracking_uri).startswith("sqlite"):
        # one trace writer: concurrent exporters on one sqlite file fail with "database is locked"
        os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_WORKERS", "1")
    # spans written in batches of up to 256 (MLflow's default is 5): one log_spans per batch instead
    # of one per few spans; a span waits at most 5 s (MLFLOW_ASYNC_TRACE_LOGGING_MAX_INTERVAL_MILLIS)
    os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_SPAN_BATCH_SIZE", "256")


def _set_trace_sampling(ratio: float) -> None:
    """MLflow reads the ratio when its tracer starts: set it, then restart the tracer."""
    from mlflow.tracing.provider import reset

    if os.environ.get("MLFLOW_TRACE_SAMPLING_RATIO") != str(ratio):
        os.environ["MLFLOW_TRACE_SAMPLING_RATIO"] = str(ratio)
        reset()


def configure_autolog(enabled: bool) -> None:
    """Traces of evaluated examples only (the job picks which: steps/trace_sampling.py); MLflow keeps each."""
    import mlflow

    if enabled:
        _set_trace_sampling(1.0)
        mlflow.dspy.autolog(log_traces=True, log_traces_from_compile=False, log_traces_from_eval=True,
                            log_compiles=False, log_evals=False, silent=True)
    else:
        mlflow.dspy.autolog(disable=True, silent=True)


def flush_pending_traces(tracking: Mapping[str, Any]) -> None:
    """With ``tracking.autolog``, write the pending traces now: MLflow logs them asynchronously, and
    the last ones would otherwise stay IN_PROGRESS, unlinked from their run, until the queue moves.
    A trace that cannot be written fails nothing."""
    if tracking.get("autolog", True):
        import mlflow

        with contextlib.suppress(Exception):
            mlflow.flush_trace_async_logging()
