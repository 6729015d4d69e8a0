"""Threaded evaluation that streams one JSON line per example as it finishes.

Nothing is lost silently: an example whose LM call still failed after DSPy's
retries is tried once more at the end of its split (its line is written then),
and every row says what went wrong (``error``, ``error_kind``): ``provider`` (the
LM call failed), ``parse`` (the model answered, not in the expected format: a
score of 0, not a loss) or ``program`` (the program or metric raised, e.g. on a
bad example). Rows answered by an earlier, killed run can be reused unsent.

With ``repeats`` N > 1 each example is answered N times, sample r by the LM copied with DSPy's
``rollout_id=r`` (sample 0 by the LM itself, so it shares the cache with N = 1): the cache keeps N
answers, and an identical rerun sends nothing. Rows carry their ``repeat``.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dspy_mlflow.errors import BudgetExceeded, one_line
from dspy_mlflow.lm.custom import CUSTOM_PROVIDERS, provider_of
from dspy_mlflow.lm.ledger import Ledger
from dspy_mlflow.project.metric import with_feedback
from dspy_mlflow.steps.trace_sampling import traced_indices, tracing


@dataclass
class EvalResult:
    split: str
    scores: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0  # rows with any error
    lost: int = 0  # rows with a provider or program error: not answered
    parse_errors: int = 0
    retried: int = 0  # examples tried again at the end of the split
    reused: int = 0  # rows taken from an earlier run, not sent again
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


def error_kind(exc: BaseException) -> str:
    """provider: the LM call failed; parse: the answer was unreadable; budget: not started, the budget
    was spent; program: anything else."""
    from dspy.utils.exceptions import AdapterParseError, LMError

    if isinstance(exc, AdapterParseError):
        return "parse"
    if isinstance(exc, BudgetExceeded):
        return "budget"
    if isinstance(exc, LMError) or type(exc).__module__.split(".")[0] in ("litellm", "openai", "httpx"):
        return "provider"
    return "program"


def json_line(record: Mapping[str, Any]) -> str:
    """One JSONL row; text no UTF-8 file can hold (a lone surrogate) is written escaped."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record)
    return line + "\n"


def same_example(row: Mapping[str, Any], example) -> bool:
    return json.dumps(row.get("inputs"), sort_keys=True) == json.dumps(_plain(example.inputs()), sort_keys=True)


def rollout_lms(repeats: int) -> list[Any]:
    """Per repeat, the LM its samples use: None (the current LM) for sample 0, for sample r a copy
    with ``rollout_id=r`` (and ``seed=r`` for this package's own providers, which sample by it)."""
    import dspy

    lm = dspy.settings.lm
    if repeats > 1 and not lm.kwargs.get("temperature"):
        print(f"eval.repeats={repeats} at temperature 0: the samples of an example will mostly agree "
              "(set model.temperature above 0 for distinct samples)")
    seeded = repeats > 1 and provider_of({"litellm_model": lm.model}) in CUSTOM_PROVIDERS
    return [None, *(lm.copy(rollout_id=r, **({"seed": r} if seeded else {})) for r in range(1, repeats))]


def _lm_of(lm: Any):
    import dspy

    return dspy.context(lm=lm) if lm is not None else contextlib.nullcontext()


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
    max_traced: int | None = None,
    reuse: Mapping[tuple[int, int], dict[str, Any]] | None = None,
    on_row: Callable[[int, int], None] | None = None,
    repeats: int = 1,
) -> EvalResult:
    """Run ``program`` on every example; score with ``metric``; stop when the budget is spent.

    ``trace_sampling``, ``max_traced``: the share of examples MLflow's DSPy autolog traces, and at most
    how many (None: no cap); the same examples on every run (see trace_sampling.py).
    ``reuse``: rows by (example index, repeat), answered before: written again (``resumed: true``), not sent.
    ``on_row(done, total)``: called on the caller's thread after each row is written.
    ``repeats``: samples per example (see the module's docstring).
    """
    from tqdm.auto import tqdm

    result = EvalResult(split=split)
    sink = open(raw_path, "a", encoding="utf-8") if raw_path else None  # noqa: SIM115
    start = time.perf_counter()
    reuse = {key: row for key, row in (reuse or {}).items()
             if key[0] < len(examples) and key[1] < repeats and same_example(row, examples[key[0]])}
    traced = traced_indices(examples, trace_sampling, max_traced)
    lms = rollout_lms(repeats)
    judge = with_feedback(metric)
    samples = [(i, r) for i in range(len(examples)) for r in range(repeats)]

    def one(index: int, example, attempt: int = 1, repeat: int = 0) -> dict[str, Any]:
        prediction, error, kind, score, feedback = None, None, None, 0.0, None
        with ledger.example() as usage, tracing(index in traced and repeat == 0), _lm_of(lms[repeat]):
            t0 = time.perf_counter()
            try:
                prediction = program(**example.inputs())
                score, feedback = judge(example, prediction)
            except Exception as exc:  # one bad example must not stop the others
                error, kind = one_line(exc), error_kind(exc)
            latency_ms = (time.perf_counter() - t0) * 1000
        return {
            "split": split,
            "index": index,
            "repeat": repeat,
            "inputs": _plain(example.inputs()),
            "gold": _plain(example.labels()),
            "prediction": _plain(prediction) if prediction is not None else None,
            "score": score,
            "feedback": feedback,
            "latency_ms": round(latency_ms, 3),
            "tokens_in": usage.tokens_in,
            "tokens_out": usage.tokens_out,
            "cost_usd": usage.cost_usd,
            "list_tokens_in": usage.list_tokens_in,
            "list_tokens_out": usage.list_tokens_out,
            "list_cost_usd": usage.list_cost_usd,
            "cache_hits": usage.cache_hits,
            "retries": usage.retries,
            "attempts": attempt,
            "error": error,
            "error_kind": kind,
        }

    retry_later: list[dict[str, Any]] = []

    def collect(record: dict[str, Any], *, final: bool = False) -> None:
        if record["error_kind"] == "provider" and not final:
            retry_later.append(record)  # its line is written after the retry at the end of the split
            return
        result.scores.append(record["score"])
        result.latencies_ms.append(record["latency_ms"])
        result.errors += record["error"] is not None
        result.lost += record["error_kind"] in ("provider", "program")
        result.parse_errors += record["error_kind"] == "parse"
        if keep_records:
            result.records.append(record)
        if sink:  # collect() runs on the caller's thread only: no lock needed
            sink.write(json_line(record))
            sink.flush()
        bar.update(1)
        bar.set_postfix(score=f"{result.score:.3f}")
        if on_row is not None:
            on_row(len(result.scores), len(samples))

    bar = tqdm(total=len(samples), desc=f"eval {split}", disable=None if progress else True, leave=False)
    pending = iter((i, r) for i, r in samples if (i, r) not in reuse)
    running: set = set()

    def submit(pool, count: int) -> None:
        """Start up to ``count`` more examples, each in a copy of the caller's context
        (so dspy.context(...) overrides reach the workers)."""
        for index, repeat in itertools.islice(pending, count):
            running.add(pool.submit(contextvars.copy_context().run, one, index, examples[index], 1, repeat))

    try:
        for row in reuse.values():
            result.reused += 1
            collect({**row, "resumed": True}, final=True)
        with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
            submit(pool, max(1, num_threads))
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                running.difference_update(done)
                for future in done:
                    collect(future.result())
                if ledger.exceeded:  # finish what is running, start nothing new
                    for future in running:
                        collect(future.result(), final=True)
                    raise BudgetExceeded(ledger.total.cost_usd, ledger.max_cost_usd)
                submit(pool, len(done))
            # the examples the provider failed on get one more try, now the burst is over
            again = [pool.submit(contextvars.copy_context().run, one, r["index"], examples[r["index"]], 2, r["repeat"])
                     for r in sorted(retry_later, key=lambda r: (r["index"], r["repeat"]))]
            result.retried = len(again)
            retry_later.clear()
            for future in again:
                collect(future.result(), final=True)
    finally:
        for record in retry_later:  # stopped before their retry: still written, as failed
            collect(record, final=True)
        bar.close()
        if sink:
            sink.close()
        result.duration_s = time.perf_counter() - start
    return result
