"""Trace a share of the evaluated examples, and run the others without MLflow's DSPy callback.

MLflow's own sampling (MLFLOW_TRACE_SAMPLING_RATIO) drops a trace only after its callback has run
on every module, adapter and LM call of the example (~1.5 ms a call). Choosing the examples up
front and leaving the callback out of the others makes an unsampled example cost nothing.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator


def is_sampled(split: str, index: int, ratio: float) -> bool:
    """Deterministic per (split, example): the same examples are traced on a re-run."""
    return ratio >= 1.0 or (ratio > 0.0 and random.Random(f"{split}:{index}").random() < ratio)


@contextlib.contextmanager
def tracing(split: str, index: int, ratio: float) -> Iterator[None]:
    """Within: the example runs with MLflow's callback if it is sampled, without it otherwise."""
    if is_sampled(split, index, ratio):
        yield
        return
    import dspy

    callbacks = dspy.settings.get("callbacks") or []
    kept = [c for c in callbacks if type(c).__name__ != "MlflowCallback"]
    if len(kept) == len(callbacks):
        yield
        return
    with dspy.context(callbacks=kept):
        yield
