"""How the optimizer got there: what it proposed and how each candidate scored, as metrics.

GEPA reports through its own callback protocol (``gepa.core.callbacks``): each
proposal, and each proposal's minibatch score when accepted or rejected. The
job logs ``compile/candidates_proposed``, ``compile/candidates_accepted`` and the
series ``compile/candidate_score`` (step = proposal number).
"""

from __future__ import annotations

import threading
import time


class GepaProgress:
    """A GEPA callback that keeps the proposals and their minibatch scores."""

    def __init__(self) -> None:
        self.proposed = 0
        self.accepted = 0
        self.scores: list[float] = []
        self._lock = threading.Lock()

    def on_proposal_end(self, event) -> None:
        with self._lock:
            self.proposed += 1

    def on_candidate_accepted(self, event) -> None:
        with self._lock:
            self.accepted += 1
            self.scores.append(float(event["new_score"]))

    def on_candidate_rejected(self, event) -> None:
        with self._lock:
            self.scores.append(float(event["new_score"]))

    def metrics(self) -> dict[str, float]:
        return {"compile/candidates_proposed": float(self.proposed),
                "compile/candidates_accepted": float(self.accepted)}


def log_progress(progress: GepaProgress | None) -> dict[str, float]:
    """Log what ``progress`` saw on the active run; returns the summary metrics."""
    if progress is None:
        return {}
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric("compile/candidate_score", score, now, step) for step, score in enumerate(progress.scores)]
    summary = progress.metrics()
    metrics += [Metric(key, value, now, 0) for key, value in summary.items()]
    mlflow.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=metrics)
    return summary
