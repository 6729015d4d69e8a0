"""How the optimizer got there: how each candidate it evaluated scored, as the metric series
``compile/candidate_score`` (one step per candidate, in the order they were tried).

* GEPA reports through its own callback protocol (``gepa.core.callbacks``): each candidate it
  scored on the dev set (step = candidate, 0 = the seed program), its instructions in the artifact
  ``compile/candidates.json``; each proposal's minibatch score as ``compile/minibatch_score``;
  also ``compile/candidates_proposed`` and ``compile/candidates_accepted``.
* BootstrapFewShotWithRandomSearch leaves ``candidate_programs`` (score and seed) on its
  result: step = the order of the seeds it tried.
* MIPROv2 leaves ``trial_logs`` on its result: step = trial number, value = the trial's
  full-evaluation score (its minibatch score when it had none).
"""

from __future__ import annotations

import threading
import time


class GepaProgress:
    """A GEPA callback that keeps the candidates (dev score, instructions) and the proposals'
    minibatch scores."""

    def __init__(self) -> None:
        self.proposed = 0
        self.accepted = 0
        self.scores: list[float] = []  # minibatch score per proposal
        self.candidates: list[dict] = []
        self._lock = threading.Lock()

    def on_valset_evaluated(self, event) -> None:
        with self._lock:
            self.candidates.append({
                "candidate": int(event["candidate_idx"]), "iteration": int(event["iteration"]),
                "dev_score": float(event["average_score"]), "parents": [p for p in event["parent_ids"] if p is not None],
                "instructions": dict(event["candidate"]),
            })

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


def candidate_series(compiled) -> list[tuple[int, float]]:
    """(step, score) of the candidates an optimizer recorded on its result, in the order tried,
    on the job's 0..1 scale (``dspy.Evaluate`` reports percentages)."""
    return [(step, score / 100.0) for step, score in _recorded(compiled)]


def _recorded(compiled) -> list[tuple[int, float]]:
    candidates = getattr(compiled, "candidate_programs", None)
    trials = getattr(compiled, "trial_logs", None)
    if isinstance(trials, dict) and trials:
        series = []
        for step, log in sorted(trials.items()):
            score = log.get("full_eval_score", log.get("mb_score")) if isinstance(log, dict) else None
            if score is not None:
                series.append((int(step), float(score)))
        return series
    if isinstance(candidates, list) and candidates and all(isinstance(c, dict) for c in candidates):
        ordered = sorted(candidates, key=lambda c: c.get("seed", 0))
        return [(i, float(c["score"])) for i, c in enumerate(ordered) if c.get("score") is not None]
    return []


def log_progress(progress: GepaProgress | None, compiled=None) -> dict[str, float]:
    """Log the candidates' scores on the active run; returns the summary metrics."""
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    minibatch: list[tuple[int, float]] = []
    if progress is not None:
        series = [(c["candidate"], c["dev_score"]) for c in progress.candidates]
        minibatch = list(enumerate(progress.scores))
        summary = progress.metrics()
        if progress.candidates:
            mlflow.log_dict(progress.candidates, "compile/candidates.json")
    else:
        series = candidate_series(compiled)
        summary = {"compile/candidates": float(len(series))} if series else {}
    metrics = [Metric("compile/candidate_score", score, now, step) for step, score in series]
    metrics += [Metric("compile/minibatch_score", score, now, step) for step, score in minibatch]
    metrics += [Metric(key, value, now, 0) for key, value in summary.items()]
    if metrics:
        mlflow.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=metrics)
    return summary
