"""A job's config checked whole before anything runs: config/validate.py's checks, then each
section by the component that owns it (it names the key, the bad value and what is allowed)."""

from __future__ import annotations

from collections.abc import Mapping

from dspy_mlflow.config.schema import register_schemas
from dspy_mlflow.config.validate import validate
from dspy_mlflow.lm.model_section import check_section as check_model
from dspy_mlflow.project.strategy_section import check_section as check_strategy
from dspy_mlflow.search.schema import SCHEMAS as SEARCH_SCHEMAS
from dspy_mlflow.search.space import check_section as check_search
from dspy_mlflow.steps.optimizer_schema import SCHEMAS as OPTIMIZER_SCHEMAS
from dspy_mlflow.steps.optimizers import check_entry
from dspy_mlflow.tracking.cache_section import check_section as check_cache_section


def check_cache(cfg: Mapping) -> None:
    check_cache_section(cfg.get("cache") or {})


def check_optimizer(cfg: Mapping) -> None:
    check_entry(cfg["optimizer"])


# group -> its owner's checker, in the order they run (the search checks its space against the optimizer)
OWNERS = {"cache": check_cache, "model": check_model, "strategy": check_strategy,
          "optimizer": check_optimizer, "search": check_search}


def validate_job(conf: Mapping) -> None:
    """A ConfigError (one line) for the first mistake in ``conf``; nothing when it can run."""
    validate(conf, OWNERS)


# group -> entry name -> its typed schema (the groups whose keys depend on the entry)
ENTRY_SCHEMAS = {"optimizer": {name: schema for name, (schema, _) in OPTIMIZER_SCHEMAS.items()},
                 "search": SEARCH_SCHEMAS}


def register_config_schemas() -> None:
    """The root schema and every entry schema in Hydra's ConfigStore, where composing finds them."""
    register_schemas(ENTRY_SCHEMAS)
