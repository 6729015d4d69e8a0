"""Write the traces MLflow still holds in its async queue."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any


def flush_pending_traces(tracking: Mapping[str, Any]) -> None:
    """With ``tracking.autolog``, write the pending traces now: MLflow logs them asynchronously, and
    the last ones would otherwise stay IN_PROGRESS, unlinked from their run, until the queue moves.
    A trace that cannot be written fails nothing."""
    if tracking.get("autolog", True):
        import mlflow

        with contextlib.suppress(Exception):
            mlflow.flush_trace_async_logging()
