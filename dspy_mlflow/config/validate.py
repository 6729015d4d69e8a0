"""Checks the schemas cannot express: allowed names, ranges, optimizer params."""

from __future__ import annotations

from collections.abc import Mapping

from dspy_mlflow.errors import ConfigError

SEARCHES = ("none", "optuna")


def _number(cfg: Mapping, key: str, lo: float, hi: float | None = None, *, allow_none=False) -> None:
    node: object = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is None and allow_none:
        return
    bounds = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
    if not isinstance(node, (int, float)) or isinstance(node, bool) or node < lo or (hi is not None and node > hi):
        raise ConfigError(key, node, f"a number in {bounds}" + (" or null" if allow_none else ""))


def validate(cfg: Mapping) -> None:
    from dspy_mlflow.config.secrets import check_config
    from dspy_mlflow.job.optimizers import check_entry
    from dspy_mlflow.strategies import STRATEGIES

    check_config(cfg)  # first: a secret is refused as a secret (and masked), not as an unknown key
    model = cfg["model"]
    if "/" not in str(model.get("litellm_model", "")):
        raise ConfigError("model.litellm_model", model.get("litellm_model"),
                          "a LiteLLM model string '<provider>/<model>', e.g. openai/gpt-4o-mini")
    _number(cfg, "model.temperature", 0.0, 2.0)
    _number(cfg, "model.max_tokens", 1)
    _number(cfg, "model.num_retries", 0, 20)
    _number(cfg, "model.pricing.input_per_1m", 0.0, allow_none=True)
    _number(cfg, "model.pricing.output_per_1m", 0.0, allow_none=True)
    _number(cfg, "eval.num_threads", 1, 256)
    _number(cfg, "tracking.trace_sampling", 0.0, 1.0)
    _number(cfg, "budget.max_cost_usd", 0.0, allow_none=True)
    if cfg["strategy"]["name"] not in STRATEGIES:
        raise ConfigError("strategy.name", cfg["strategy"]["name"], f"one of {', '.join(STRATEGIES)}")
    _number(cfg, "strategy.n", 1, 64)
    check_entry(cfg["optimizer"])
    search = cfg.get("search") or {"name": "none"}
    if search.get("name") not in SEARCHES:
        raise ConfigError("search.name", search.get("name"), f"one of {', '.join(SEARCHES)}")
    if search.get("name") == "optuna":
        from dspy_mlflow.search.space import check_search

        check_search(cfg)
