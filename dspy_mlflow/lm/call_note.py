"""What happened inside one public LM call, noted by the layers below the tracked LM.

:class:`~dspy_mlflow.lm.tracked.TrackedLM` opens a note per call; the job's cache
notes a hit (with the usage the stored response carried) and DSPy's retry loop
notes each failed attempt it retries. The note travels in a context variable,
so it reaches the worker threads DSPy hands the call's context to.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class CallNote:
    cache_hit: bool = False
    stored_usage: dict = field(default_factory=dict)
    retries: int = 0


_note: contextvars.ContextVar[CallNote | None] = contextvars.ContextVar("dspy_mlflow_call", default=None)


@contextmanager
def opened():
    note = CallNote()
    token = _note.set(note)
    try:
        yield note
    finally:
        _note.reset(token)


def current() -> CallNote | None:
    return _note.get()


def cache_hit(stored_usage: dict) -> None:
    note = _note.get()
    if note is not None:
        note.cache_hit, note.stored_usage = True, stored_usage


def _count_retries() -> None:
    """DSPy owns retries (``dspy.clients.execution.execute``): after each failed attempt it asks
    ``_retryable`` whether to try again. Wrap that question once to count the yeses (and to say
    yes to an unreadable answer too)."""
    from dspy.clients import execution

    asked = execution._retryable
    if getattr(asked, "_dspy_mlflow_counts", False):
        return

    def retryable(state, exc, attempt, retries):
        verdict = asked(state, exc, attempt, retries) or (
            not state.completed and not state.emitted and attempt < retries and _unreadable(exc))
        note = _note.get()
        if verdict and note is not None:
            note.retries += 1
        return verdict

    retryable._dspy_mlflow_counts = True  # type: ignore[attr-defined]
    execution._retryable = retryable


def _unreadable(exc: BaseException) -> bool:
    """A 200 whose body is not JSON (truncated, garbled): DSPy's native engine does not retry it,
    but it is as transient as a 502."""
    return getattr(exc, "status", None) == 200 and "is not JSON" in str(exc)


_count_retries()
