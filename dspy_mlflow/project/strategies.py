"""Inference strategies: how a project's signature becomes a runnable ``dspy.Module``.

    predict           dspy.Predict(signature)
    chain_of_thought  dspy.ChainOfThought(signature)   (adds a ``reasoning`` output)
    best_of_n         dspy.BestOfN(dspy.Predict(signature), N=n, reward_fn, threshold)

Every program returned here saves and loads its DSPy state as JSON
(``program.save("p.json")`` / ``program.load("p.json")``) and can be pickled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dspy

from dspy_mlflow.errors import ConfigError
from dspy_mlflow.project.strategy_section import STRATEGIES

Reward = Callable[[dict, Any], float]


def outputs_present(signature: type[dspy.Signature]) -> Reward:
    """The default best_of_n reward: 1.0 if every output field is non-empty, else 0.0."""
    names = tuple(signature.output_fields)
    return OutputsPresent(names)


class OutputsPresent:
    """Picklable callable (no closure) so programs survive cloudpickle and deepcopy."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names

    def __call__(self, inputs: dict, prediction: Any) -> float:
        for name in self.names:
            value = getattr(prediction, name, None) if prediction is not None else None
            if value is None or (isinstance(value, str) and not value.strip()):
                return 0.0
        return 1.0

    def __repr__(self) -> str:
        return f"outputs_present{self.names}"


def _get(strategy: Mapping, key: str, default: Any = None) -> Any:
    try:
        value = strategy.get(key, default)
    except AttributeError:
        value = getattr(strategy, key, default)
    return default if value is None else value


def build_program(
    signature: type[dspy.Signature], strategy: Mapping, reward: Reward | None = None
) -> dspy.Module:
    """Build the program for ``strategy`` (a mapping with ``name``; best_of_n also ``n``, ``threshold``).

    ``reward(inputs: dict, prediction) -> float`` is used by best_of_n only; without it the
    reward is 1.0 when every output field is non-empty.
    """
    name = _get(strategy, "name")
    if name == "predict":
        return dspy.Predict(signature)
    if name == "chain_of_thought":
        return dspy.ChainOfThought(signature)
    if name == "best_of_n":
        n = _get(strategy, "n", 3)
        threshold = _get(strategy, "threshold", 1.0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError("strategy.n", n, "an integer >= 1")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError("strategy.threshold", threshold, "a number (reward at which to stop early)")
        if reward is not None and not callable(reward):
            raise ConfigError(
                "project.reward", reward, "a callable reward(inputs: dict, prediction) -> float"
            )
        return dspy.BestOfN(
            module=dspy.Predict(signature),
            N=n,
            reward_fn=reward if reward is not None else outputs_present(signature),
            threshold=float(threshold),
        )
    raise ConfigError("strategy.name", name, "one of: " + ", ".join(STRATEGIES))
