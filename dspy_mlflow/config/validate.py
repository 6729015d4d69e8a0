"""Checks the schemas cannot express: unknown keys, secrets, ranges; then each section's owner.

config/ imports nothing above it: the sections owned by a component (the model's provider
options, the cache, the strategy, the optimizer, the search) are checked by the checkers the
caller passes, by group name (job/validation.py names them). Cheap checks come first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dspy_mlflow.config.schema import RootConfig
from dspy_mlflow.config.secrets import check_config
from dspy_mlflow.errors import ConfigError


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


def _check_compare(cfg: Mapping) -> None:
    to = (cfg.get("compare") or {}).get("to")
    if to not in (None, "production"):
        raise ConfigError("compare.to", to, "production (pair the test rows with NAME@production's), or null")


def validate(cfg: Mapping, owners: Mapping[str, Callable[[Mapping], None]] | None = None) -> None:
    """The checks of the whole config, then each section's owner's, in ``owners``' order: a group name
    -> its checker, which takes the whole config (a search checks its space against the optimizer)."""
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
    _number(cfg, "tracking.evaluation_max_examples", 0, allow_none=True)
    _number(cfg, "budget.max_cost_usd", 0.0, allow_none=True)
    _number(cfg, "budget.sweep_max_cost_usd", 0.0, allow_none=True)
    _number(cfg, "eval.max_error_rate", 0.0, 1.0)
    _number(cfg, "tracking.heartbeat_s", 0.1, 3600)
    _number(cfg, "strategy.n", 1, 64)
    repeats = _get(cfg, "eval.repeats")
    if repeats is not None and (not isinstance(repeats, int) or isinstance(repeats, bool) or not 1 <= repeats <= 100):
        raise ConfigError("eval.repeats", repeats, "a whole number of samples per test example in [1, 100]")
    _check_split(cfg)
    _check_compare(cfg)
    for check in (owners or {}).values():
        check(cfg)
