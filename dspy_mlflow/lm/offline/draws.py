"""How many times a request was sampled before: the offline model's answers at a temperature > 0
differ from one identical call to the next, as a sampling model's do.

The first call of a request draws what a pure function of the request gives (:func:`.learner.answer`
with ``draw=0``); the n-th identical call draws with ``draw=n``. A request with an explicit ``seed``
(``eval.repeats`` sets one per sample) or at temperature 0 is not counted: it always answers the same.
So DSPy's rollouts (SIMBA's candidates, ``best_of_n``), whose requests differ only by a
``rollout_id`` DSPy keeps to its cache, get distinct samples. The counter lives in the provider or
the HTTP server that answers, one per process.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from dspy_mlflow.lm.faults import prompt_key


class Draws:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}

    def next(self, messages: list[Mapping], temperature: float | None, seed: int | None) -> int:
        """This call's draw number: 0, 1, 2, ... per identical sampled request; 0 otherwise."""
        if not temperature or temperature <= 0 or seed is not None:
            return 0
        key = prompt_key(0, messages) + f":{temperature}"
        with self._lock:
            n = self._seen.get(key, 0)
            self._seen[key] = n + 1
        return n
