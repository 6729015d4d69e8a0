"""Deterministic fault injection: which fault, if any, attempt k of a prompt gets.

One uniform draw per attempt, ``u = hash(seed, prompt, k) / 2**64``, is laid
against the configured rates end to end (the legacy ``fault_rate`` first, then
:data:`FAULT_KINDS` in order): the interval it falls in names the fault, past
the last one there is none. So each kind fires with exactly its rate, an
attempt gets at most one fault, and the outcome depends only on the seed, the
prompt and how many times that prompt was tried before: not on thread
scheduling. A retry of the same prompt is a fresh draw.

What each kind means on the wire (the HTTP server) and in the in-process
LiteLLM provider is described in :mod:`dspy_mlflow.lm.offline` and done in
``offline_server.py`` and :mod:`.provider`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dspy_mlflow.lm.usage import content_text

if TYPE_CHECKING:
    from dspy_mlflow.lm.offline.options import OfflineOptions

FAULT_KINDS = (
    "rate_limit",  # 429 with Retry-After: retry_after_s
    "server_error",  # 500
    "bad_gateway",  # 502
    "unavailable",  # 503
    "hang",  # sleep hang_s, then answer
    "reset",  # connection reset, no response
    "no_usage",  # 200 without a usage block
    "garbled",  # 200 whose body is truncated JSON
)
LEGACY = "fault_rate"  # the old single knob: 429 (Retry-After: 0) or 500, by prompt


@dataclass(frozen=True)
class Fault:
    kind: str  # one of FAULT_KINDS
    retry_after_s: float | None = None  # rate_limit only


def prompt_key(seed: int, messages: list[Mapping]) -> str:
    return hashlib.sha256(
        json.dumps([seed, [[m.get("role"), content_text(m.get("content"))] for m in messages]]).encode()
    ).hexdigest()


def legacy_fault(messages: list[Mapping]) -> Fault:
    """``fault_rate``'s mix, as before: 429 with Retry-After 0 or 500, chosen by the prompt."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True, default=str).encode()).digest()
    return Fault("rate_limit", 0.0) if digest[0] % 2 else Fault("server_error")


class FaultInjector:
    """Counts attempts per prompt and draws each attempt's fault (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}

    def reset(self) -> None:
        with self._lock:
            self._attempts.clear()

    def draw(self, messages: list[Mapping], options: OfflineOptions) -> Fault | None:
        """This attempt's fault, or None. Counts the attempt (unless no fault is configured)."""
        rates = options.fault_rates()
        if not rates:
            return None
        key = prompt_key(options.seed, messages)
        with self._lock:
            k = self._attempts.get(key, 0)
            self._attempts[key] = k + 1
        h = hashlib.sha256(f"{options.seed}:{key}:{k}".encode()).digest()
        u = int.from_bytes(h[:8], "big") / 2**64
        edge = 0.0
        for kind, rate in rates:
            edge += rate
            if u < edge:
                if kind == LEGACY:
                    return legacy_fault(messages)
                return Fault(kind, options.retry_after_s if kind == "rate_limit" else None)
        return None

    def should_fail(self, messages: list[Mapping], options: OfflineOptions) -> bool:
        """Whether this attempt gets any fault (kept for callers of the single-knob API)."""
        return self.draw(messages, options) is not None
