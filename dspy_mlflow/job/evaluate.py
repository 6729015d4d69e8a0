"""Threaded evaluation that streams one JSON line per example as it finishes."""

from __future__ import annotations

import contextvars
import itertools
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dspy_mlflow.errors import BudgetExceeded, one_line
from dspy_mlflow.lm.ledger import Ledger


@dataclass
class EvalResult:
    split: str
    scores: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    duration_s: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        k = (len(ordered) - 1) * q
        lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _plain(value: Any) -> Any:
    if hasattr(value, "toDict"):
        value = value.toDict()
    try:
        json.dumps(value)
        return value
    except TypeError:
        return {k: _plain(v) for k, v in value.items()} if isinstance(value, dict) else str(value)


def evaluate(
    program,
    examples: Sequence,
    metric: Callable,
    *,
    ledger: Ledger,
    split: str,
    num_threads: int = 1,
    raw_path: Path | None = None,
    keep_records: bool = False,
    progress: bool = True,
    trace_sampling: float = 1.0,
) -> EvalResult:
    """Run ``program`` on every example; score with ``metric``; stop when the budget is spent.

    ``trace_sampling``: the share of examples MLflow's DSPy autolog traces (see trace_sampling.py).
    """
    from tqdm.auto import tqdm

    from dspy_mlflow.job.trace_sampling import tracing

    result = EvalResult(split=split)
    sink = open(raw_path, "a", encoding="utf-8") if raw_path else None  # noqa: SIM115
    start = time.perf_counter()

    def one(index: int, example) -> dict[str, Any]:
        prediction, error, score = None, None, 0.0
        with ledger.example() as usage, tracing(example, trace_sampling):
            t0 = time.perf_counter()
            try:
                prediction = program(**example.inputs())
                score = float(metric(example, prediction))
            except Exception as exc:  # one bad example must not stop the others
                error = one_line(exc)
            latency_ms = (time.perf_counter() - t0) * 1000
        return {
            "split": split,
            "index": index,
            "inputs": _plain(example.inputs()),
            "gold": _plain(example.labels()),
            "prediction": _plain(prediction) if prediction is not None else None,
            "score": score,
            "latency_ms": round(latency_ms, 3),
            "tokens_in": usage.tokens_in,
            "tokens_out": usage.tokens_out,
            "cost_usd": usage.cost_usd,
            "list_cost_usd": usage.list_cost_usd,
            "cache_hits": usage.cache_hits,
            "error": error,
        }

    def collect(record: dict[str, Any]) -> None:
        result.scores.append(record["score"])
        result.latencies_ms.append(record["latency_ms"])
        result.errors += record["error"] is not None
        if keep_records:
            result.records.append(record)
        if sink:  # collect() runs on the caller's thread only: no lock needed
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()

    bar = tqdm(total=len(examples), desc=f"eval {split}", disable=None if progress else True, leave=False)
    pending = iter(enumerate(examples))
    running: set = set()

    def submit(pool, count: int) -> None:
        """Start up to ``count`` more examples, each in a copy of the caller's context
        (so dspy.context(...) overrides reach the workers)."""
        for index, example in itertools.islice(pending, count):
            running.add(pool.submit(contextvars.copy_context().run, one, index, example))

    try:
        with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
            submit(pool, max(1, num_threads))
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                running.difference_update(done)
                for future in done:
                    collect(future.result())
                    bar.update(1)
                    bar.set_postfix(score=f"{result.score:.3f}")
                if ledger.exceeded:  # finish what is running, start nothing new
                    for future in running:
                        collect(future.result())
                    raise BudgetExceeded(ledger.total.cost_usd, ledger.max_cost_usd)
                submit(pool, len(done))
    finally:
        bar.close()
        if sink:
            sink.close()
        result.duration_s = time.perf_counter() - start
    return result
