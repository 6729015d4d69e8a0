"""The typed schema of each search entry (``search=NAME``): its keys, their types and defaults.

Registered in Hydra's ConfigStore as ``schema/search/NAME``; :func:`dspy_mlflow.search.space.check_section`
checks a config's ``search`` section against it (unknown keys, types), then the values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class NoSearch:
    """``search=none``: the optimizer runs once with its configured values."""

    name: str = "none"


@dataclass
class OptunaSearch:
    """``search=optuna``: an Optuna study over the optimizer's ``search_space`` (conf/search/optuna.yaml)."""

    name: str = "optuna"
    n_trials: int = 10
    timeout_s: Optional[float] = None
    sampler: str = "tpe"
    seed: Optional[int] = 0
    objectives: list[str] = field(default_factory=lambda: ["dev_score"])
    select: str = "best_score_under_budget"
    storage: Optional[str] = None
    study_name: Optional[str] = None
    space: dict[str, Any] = field(default_factory=dict)
    heartbeat_s: Optional[int] = 10
    grace_s: Optional[int] = 60


SCHEMAS: dict[str, type] = {"none": NoSearch, "optuna": OptunaSearch}
