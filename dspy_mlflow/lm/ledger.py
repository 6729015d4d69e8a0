"""Token, cost, latency and cache accounting for every LM call of a job.

The job opens a *phase* ("compile" or "eval"); evaluation opens an *example
scope* per example. Each LM call adds to the current phase and, if any, the
current example. A budget check runs before each call.

Two figures per call: what it *spent* (a cache hit spends nothing) and what the
same work costs at *list* price with no cache (a hit is priced from the usage
its response originally carried), so runs on a warm and a cold cache compare.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

from dspy_mlflow.errors import BudgetExceeded
from dspy_mlflow.lm.pricing import Price


@dataclass
class Usage:
    calls: int = 0  # calls answered by the provider (not the cache)
    cache_hits: int = 0
    errors: int = 0  # calls that failed after their retries
    retries: int = 0  # failed attempts that were retried
    estimated: int = 0  # paid calls whose response had no usage: tokens counted with LiteLLM
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    list_tokens_in: int = 0  # the same work without any cache
    list_tokens_out: int = 0
    list_cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True)
class Call:
    """What one LM call did, as its tracked LM saw it."""

    tokens_in: int = 0
    tokens_out: int = 0
    cache_hit: bool = False
    error: bool = False
    estimated: bool = False
    retries: int = 0


_example: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("dspy_mlflow_example", default=None)


@dataclass
class Ledger:
    price: Price
    max_cost_usd: float | None = None
    phases: dict[str, Usage] = field(default_factory=dict)
    phase: str = "eval"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total(self) -> Usage:
        out = Usage()
        for usage in self.phases.values():
            out.add(usage)
        return out

    @property
    def exceeded(self) -> bool:
        return self.max_cost_usd is not None and self.total.cost_usd > self.max_cost_usd

    @contextmanager
    def in_phase(self, name: str):
        previous, self.phase = self.phase, name
        self.phases.setdefault(name, Usage())
        try:
            yield self.phases[name]
        finally:
            self.phase = previous

    @contextmanager
    def example(self):
        """Collect the usage of the LM calls made inside the block (this context: a thread, or the
        worker threads it hands its context to)."""
        usage = Usage()
        token = _example.set(usage)
        try:
            yield usage
        finally:
            _example.reset(token)

    def check_budget(self) -> None:
        if self.exceeded:
            raise BudgetExceeded(self.total.cost_usd, self.max_cost_usd)

    def add_list_only(self, tokens_in: int, tokens_out: int) -> None:
        """Work done by an earlier run and reused here: it counts at list price, spends nothing."""
        one = Usage(list_tokens_in=tokens_in, list_tokens_out=tokens_out,
                    list_cost_usd=self.price.cost(tokens_in, tokens_out))
        with self._lock:
            self.phases.setdefault(self.phase, Usage()).add(one)

    def record(self, call: Call) -> None:
        one = Usage(retries=call.retries)
        if call.error:
            one.errors = 1
        else:
            one.list_tokens_in, one.list_tokens_out = call.tokens_in, call.tokens_out
            one.list_cost_usd = self.price.cost(call.tokens_in, call.tokens_out)
            if call.cache_hit:
                one.cache_hits = 1
            else:
                one.calls, one.estimated = 1, int(call.estimated)
                one.tokens_in, one.tokens_out, one.cost_usd = call.tokens_in, call.tokens_out, one.list_cost_usd
        with self._lock:
            self.phases.setdefault(self.phase, Usage()).add(one)
            example = _example.get()
            if example is not None:
                example.add(one)


_current: Ledger | None = None


def activate(ledger: Ledger | None) -> None:
    global _current
    _current = ledger


def current() -> Ledger | None:
    return _current
