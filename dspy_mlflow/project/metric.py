"""A project's metric as the job calls it: a score for everyone, the feedback for whoever reads it.

A project's ``metric(example, prediction, trace=None)`` returns a number (bool ok) or an object
with ``score`` and ``feedback`` (DSPy's ``dspy.Prediction(score=..., feedback=...)``, as GEPA
takes). :func:`wrap_metric` makes both shapes one callable that returns the score as a float;
its ``with_feedback`` attribute returns ``(score, feedback or None)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def score_of(result: Any) -> float:
    """The score of what a metric returned: a number, or the ``score`` of a Prediction or mapping."""
    if isinstance(result, dict):
        return float(result["score"])
    score = getattr(result, "score", None)
    return float(result if score is None else score)


def feedback_of(result: Any) -> str | None:
    """The feedback text of what a metric returned, None for a bare number."""
    value = result.get("feedback") if isinstance(result, dict) else getattr(result, "feedback", None)
    return None if value is None else str(value)


def _accepts(func: Callable, n: int) -> bool:
    try:
        inspect.signature(func).bind(*([None] * n))
        return True
    except TypeError:
        return False
    except ValueError:
        return True


def wrap_metric(func: Callable) -> Callable[..., float]:
    """Call the project's metric with as many of (example, prediction, trace, pred_name, pred_trace)
    as it accepts; return its score as a float. No functools.wraps: GEPA inspects the wrapper's own
    signature."""
    n = next((k for k in (5, 4, 3, 2) if _accepts(func, k)), 2)

    def judged(example, prediction, trace=None, pred_name=None, pred_trace=None) -> tuple[float, str | None]:
        result = func(*(example, prediction, trace, pred_name, pred_trace)[:n])
        return score_of(result), feedback_of(result)

    def metric(example, prediction, trace=None, pred_name=None, pred_trace=None) -> float:
        return judged(example, prediction, trace, pred_name, pred_trace)[0]

    metric.__name__ = getattr(func, "__name__", "metric")
    metric.__qualname__ = metric.__name__
    metric.__doc__ = getattr(func, "__doc__", None)
    metric.__module__ = getattr(func, "__module__", __name__)
    metric.with_feedback = judged
    return metric


def with_feedback(metric: Callable) -> Callable[..., tuple[float, str | None]]:
    """``metric``'s (score, feedback) form; a plain metric gives no feedback."""
    judged = getattr(metric, "with_feedback", None)
    if judged is not None:
        return judged
    return lambda example, prediction, trace=None, *rest: (score_of(metric(example, prediction, trace)), None)
