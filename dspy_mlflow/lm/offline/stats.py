"""What the offline HTTP server did, counted for tests that recount from the client side.

Thread-safe; read the attributes, or take :meth:`ServerStats.snapshot` (also
served as ``GET /stats``):

    requests            chat-completion requests received (well-formed ones)
    rejected            requests answered 400 (not a chat completion, or stream=true)
    answered            200 answers whose body carries a usage block
    answered_no_usage   200 answers without one (the no_usage fault)
    faults              {kind: count} for every kind in FAULT_KINDS
    answers             one record per 200 the server produced (including garbled and
                        hang ones): the usage it computed, even when the body left it out
    usage               those records summed: the true spend
"""

from __future__ import annotations

import threading
from typing import Any

from dspy_mlflow.lm.faults import FAULT_KINDS

_TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


class ServerStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.rejected = 0
            self.answered = 0
            self.answered_no_usage = 0
            self.faults: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
            self.answers: list[dict[str, Any]] = []

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def count_rejected(self) -> None:
        with self._lock:
            self.rejected += 1

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def count_answer(self, usage: dict[str, int], *, usage_in_body: bool, fault: str | None) -> None:
        """A 200 the server produced; ``usage`` is what it computed, sent or not."""
        record = {k: int(usage[k]) for k in _TOKEN_KEYS}
        record.update(usage_in_body=usage_in_body, fault=fault)
        with self._lock:
            self.answers.append(record)
            if usage_in_body:
                self.answered += 1
            elif fault == "no_usage":
                self.answered_no_usage += 1

    @property
    def usage(self) -> dict[str, int]:
        with self._lock:
            return {k: sum(a[k] for a in self.answers) for k in _TOKEN_KEYS}

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of every counter (the ``GET /stats`` body)."""
        with self._lock:
            return {
                "requests": self.requests,
                "rejected": self.rejected,
                "answered": self.answered,
                "answered_no_usage": self.answered_no_usage,
                "faults": dict(self.faults),
                "usage": {k: sum(a[k] for a in self.answers) for k in _TOKEN_KEYS},
                "answers": [dict(a) for a in self.answers],
            }
