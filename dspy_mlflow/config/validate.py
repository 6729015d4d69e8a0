"""Checks the schemas cannot express: unknown keys, secrets, allowed names, ranges, optimizer params.

Cheap checks come first, so most mistakes are reported before DSPy is imported (the optimizer
and strategy checks need it).
"""

from __future__ import annotations

from collections.abc import Mapping

from dspy_mlflow.errors import ConfigError

SEARCHES = ("none", "optuna")


def _get(cfg: Mapping, key: str) -> object:
    node: object = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _number(cfg: Mapping, key: str, lo: float, hi: float | None = None, *, allow_none=False) -> None:
    node = _get(cfg, key)
    if node is None and allow_none:
        return
    bounds = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
    if not isinstance(node, (int, float)) or isinstance(node, bool) or node < lo or (hi is not None and node > hi):
        raise ConfigError(key, node, f"a number in {bounds}" + (" or null" if allow_none else ""))


def check_keys(cfg: Mapping) -> None:
    """Every key is in the schema (Hydra's ``+key=value`` adds keys even to a typed config).

    OmegaConf does the work: merging onto the structured schema rejects unknown keys and wrong
    types. ``optimizer``, ``search`` and ``provider_options`` are free-form there; their owners
    check them."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    from dspy_mlflow.config.schema import RootConfig

    try:
        OmegaConf.merge(OmegaConf.structured(RootConfig), {k: v for k, v in cfg.items() if k != "hydra"})
    except ConfigKeyError as exc:
        parent = exc.full_key.rpartition(".")[0] or "the config"
        known = ", ".join(exc.parent_node.keys()) if exc.parent_node is not None else ""
        raise ConfigError(exc.full_key, _get(cfg, exc.full_key),
                          f"{parent} has no key {exc.key!r}; its keys are {known}") from None
    except ValidationError as exc:
        key = exc.full_key or "config"
        raise ConfigError(key, _get(cfg, key), str(exc.msg).splitlines()[0]) from None


def _check_split(cfg: Mapping) -> None:
    train, dev = _get(cfg, "project.split.train"), _get(cfg, "project.split.dev")
    for key, value in (("project.split.train", train), ("project.split.dev", dev)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
            raise ConfigError(key, value, "a fraction in (0, 1); test gets 1 - train - dev")
    if train + dev >= 1:  # type: ignore[operator]
        raise ConfigError("project.split.dev", dev, f"a fraction with train + dev < 1 (train is {train}; "
                                                    "test gets the rest)")
    limit = _get(cfg, "project.split.limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 3):
        raise ConfigError("project.split.limit", limit, "an integer >= 3, or null for all examples")


def _by_owner(cfg: Mapping) -> None:
    """Sections whose owners check them: the LM cache, the offline provider's options."""
    from dspy_mlflow.tracking.cache_section import check_section

    check_section(cfg.get("cache") or {})
    to = (cfg.get("compare") or {}).get("to")
    if to not in (None, "production"):
        raise ConfigError("compare.to", to, "production (pair the test rows with NAME@production's), or null")
    model = cfg["model"]
    if str(model.get("litellm_model", "")).startswith("offline/"):
        from dspy_mlflow.lm.offline import check_options

        check_options(model.get("provider_options") or {})


def validate(cfg: Mapping) -> None:
    from dspy_mlflow.config.secrets import check_config

    check_config(cfg)  # first: a secret is refused as a secret (and masked), not as an unknown key
    check_keys(cfg)
    model = cfg["model"]
    if "/" not in str(model.get("litellm_model", "")):
        raise ConfigError("model.litellm_model", model.get("litellm_model"),
                          "a LiteLLM model string '<provider>/<model>', e.g. openai/gpt-4o-mini")
    _number(cfg, "model.temperature", 0.0, 2.0)
    _number(cfg, "model.max_tokens", 1)
    _number(cfg, "model.num_retries", 0, 20)
    _number(cfg, "model.timeout_s", 0.1, 3600)
    _number(cfg, "model.pricing.input_per_1m", 0.0, allow_none=True)
    _number(cfg, "model.pricing.output_per_1m", 0.0, allow_none=True)
    _number(cfg, "eval.num_threads", 1, 256)
    _number(cfg, "tracking.trace_sampling", 0.0, 1.0)
    _number(cfg, "tracking.max_traces_per_split", 0, allow_none=True)
    _number(cfg, "tracking.sweep_evaluation_views", 0, allow_none=True)
    _number(cfg, "budget.max_cost_usd", 0.0, allow_none=True)
    _number(cfg, "budget.sweep_max_cost_usd", 0.0, allow_none=True)
    _number(cfg, "eval.max_error_rate", 0.0, 1.0)
    _number(cfg, "tracking.heartbeat_s", 0.1, 3600)
    _number(cfg, "strategy.n", 1, 64)
    _check_split(cfg)
    _by_owner(cfg)
    search = cfg.get("search") or {"name": "none"}
    if search.get("name") not in SEARCHES:
        raise ConfigError("search.name", search.get("name"), f"one of {', '.join(SEARCHES)}")
    if search.get("name") == "none" and set(search) - {"name"}:
        key = sorted(set(search) - {"name"})[0]
        raise ConfigError(f"search.{key}", search[key], "search=none takes no parameters (search=optuna does)")

    from dspy_mlflow.job.optimizers import check_entry
    from dspy_mlflow.strategies import STRATEGIES

    if cfg["strategy"]["name"] not in STRATEGIES:
        raise ConfigError("strategy.name", cfg["strategy"]["name"], f"one of {', '.join(STRATEGIES)}")
    check_entry(cfg["optimizer"])
    if search.get("name") == "optuna":
        from dspy_mlflow.search.space import check_search

        check_search(cfg)
