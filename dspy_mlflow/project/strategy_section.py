"""The ``strategy`` section, checked before anything runs (no DSPy import)."""

from __future__ import annotations

from collections.abc import Mapping

from dspy_mlflow.errors import ConfigError

STRATEGIES: tuple[str, ...] = ("predict", "chain_of_thought", "best_of_n")


def check_section(cfg: Mapping) -> None:
    """The ``strategy`` section names a known strategy (its numbers are checked with the config's)."""
    name = cfg["strategy"]["name"]
    if name not in STRATEGIES:
        raise ConfigError("strategy.name", name, f"one of {', '.join(STRATEGIES)}")
