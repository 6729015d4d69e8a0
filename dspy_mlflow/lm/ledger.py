"""Token, cost, latency and cache accounting for every LM call of a job.

The job opens a *phase* ("compile" or "eval"); evaluation opens an *example
scope* per example in its worker thread. Each LM call adds to the current
phase and, if any, the current example. A budget check runs before each call.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from dspy_mlflow.errors import BudgetExceeded
from dspy_mlflow.lm.pricing import Price


@dataclass
class Usage:
    calls: int = 0  # calls that reached the provider
    cache_hits: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.cache_hits += other.cache_hits
        self.errors += other.errors
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cost_usd += other.cost_usd


@dataclass
class Ledger:
    price: Price
    max_cost_usd: float | None = None
    phases: dict[str, Usage] = field(default_factory=dict)
    phase: str = "eval"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)

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
        """Collect the usage of the LM calls this thread makes inside the block."""
        usage = Usage()
        previous = getattr(self._local, "example", None)
        self._local.example = usage
        try:
            yield usage
        finally:
            self._local.example = previous

    def check_budget(self) -> None:
        if self.exceeded:
            raise BudgetExceeded(self.total.cost_usd, self.max_cost_usd)

    def record(self, usage: dict | None, *, cache_hit: bool, error: bool = False) -> None:
        one = Usage()
        if error:
            one.errors = 1
        elif cache_hit:
            one.cache_hits = 1
        else:
            one.calls = 1
            one.tokens_in = int((usage or {}).get("prompt_tokens") or 0)
            one.tokens_out = int((usage or {}).get("completion_tokens") or 0)
            one.cost_usd = self.price.cost(one.tokens_in, one.tokens_out)
        with self._lock:
            self.phases.setdefault(self.phase, Usage()).add(one)
        example = getattr(self._local, "example", None)
        if example is not None:
            example.add(one)


_current: Ledger | None = None


def activate(ledger: Ledger | None) -> None:
    global _current
    _current = ledger


def current() -> Ledger | None:
    return _current
