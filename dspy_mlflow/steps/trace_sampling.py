"""Trace a few chosen examples of each evaluated split, and run the others without MLflow's DSPy callback.

MLflow's own sampling (MLFLOW_TRACE_SAMPLING_RATIO) drops a trace only after its callback has run
on every module, adapter and LM call of the example. Choosing the examples up front and leaving
the callback out of the others makes an unsampled example cost nothing. The choice depends on the
example's inputs only: each example gets a fixed draw in [0, 1) from a hash of its inputs; those
below ``ratio`` are sampled, and of those the ``cap`` lowest draws are traced. So the same examples
are traced before and after compiling, in every run and whatever the split's order: their traces
can be compared side by side. The cap bounds what tracing costs however large the split (a kept
trace costs about 25 ms CPU on a sqlite store: README, "Traces").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any


def draw(example: Any) -> float:
    """The example's fixed draw in [0, 1), from its inputs."""
    inputs = example.inputs().toDict() if hasattr(example, "inputs") else example
    key = json.dumps(inputs, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64


def traced_indices(examples: Sequence, ratio: float, cap: int | None) -> set[int]:
    """The positions of the examples to trace: sampled at ``ratio``, at most ``cap`` (None: all)."""
    if ratio <= 0.0 or cap == 0:
        return set()
    if ratio >= 1.0 and cap is None:
        return set(range(len(examples)))
    draws = sorted((d, i) for i, ex in enumerate(examples) if (d := draw(ex)) < ratio or ratio >= 1.0)
    return {i for _, i in (draws if cap is None else draws[:cap])}


@contextlib.contextmanager
def tracing(traced: bool) -> Iterator[None]:
    """Within: the example runs with MLflow's callback if it is traced, without it otherwise."""
    if traced:
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
