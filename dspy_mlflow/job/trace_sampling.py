"""Trace a share of the evaluated examples, and run the others without MLflow's DSPy callback.

MLflow's own sampling (MLFLOW_TRACE_SAMPLING_RATIO) drops a trace only after its callback has run
on every module, adapter and LM call of the example. Choosing the examples up front and leaving
the callback out of the others makes an unsampled example cost nothing. The choice depends on the
example's inputs only, so the same examples are traced before and after compiling, and in every
run: their traces can be compared side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any


def is_sampled(example: Any, ratio: float) -> bool:
    if ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    inputs = example.inputs().toDict() if hasattr(example, "inputs") else example
    key = json.dumps(inputs, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < ratio


@contextlib.contextmanager
def tracing(example: Any, ratio: float) -> Iterator[None]:
    """Within: the example runs with MLflow's callback if it is sampled, without it otherwise."""
    if is_sampled(example, ratio):
        yield
        return
    import dspy
    from mlflow.dspy.callback import MlflowCallback

    callbacks = dspy.settings.get("callbacks") or []
    kept = [c for c in callbacks if not isinstance(c, MlflowCallback)]
    if len(kept) == len(callbacks):
        yield
        return
    with dspy.context(callbacks=kept):
        yield
