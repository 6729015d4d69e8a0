"""Model entries -> ready ``TrackedLM``: provider registration, preflight, keys."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dspy_mlflow.errors import ProviderError
from dspy_mlflow.lm import offline
from dspy_mlflow.lm.custom import CUSTOM_PROVIDERS, provider_of, setup_custom
from dspy_mlflow.lm.tracked import TrackedLM


def check_provider(model_cfg: Mapping) -> bool:
    """What preflight checks; True when the provider is left to register on the LM's first call
    (``build_lm(..., register_on_first_call=True)``): the offline model, whose options check
    without importing LiteLLM. Any other provider is set up here, by preflight."""
    if provider_of(model_cfg) == "offline":
        offline.check(model_cfg)
        return True
    preflight(model_cfg)
    return False


def preflight(model_cfg: Mapping) -> dict[str, str]:
    """Register the provider and check it can run; returns extra run tags."""
    if provider_of(model_cfg) in CUSTOM_PROVIDERS:
        return setup_custom(model_cfg)
    env = model_cfg.get("api_key_env")
    if env and not os.environ.get(env):
        raise ProviderError(
            f"model={model_cfg.get('name')} needs an API key: environment variable {env} is not set "
            f"(export {env}=... or choose model=offline)"
        )
    return {}


def build_lm(model_cfg: Mapping, *, register_on_first_call: bool = False):
    """The entry's TrackedLM; with ``register_on_first_call``, its custom provider is set up when
    the LM is first called, not before (see check_provider)."""
    kwargs = {}
    if model_cfg.get("api_base"):
        kwargs["api_base"] = model_cfg["api_base"]
        if not model_cfg.get("api_key_env") and provider_of(model_cfg) not in CUSTOM_PROVIDERS:
            kwargs["api_key"] = "not-needed"  # a keyless local server (vLLM, Ollama, mlx_lm.server)
    engine = "litellm" if provider_of(model_cfg) in CUSTOM_PROVIDERS else "auto"
    return TrackedLM(
        str(model_cfg["litellm_model"]),
        api_key_env=model_cfg.get("api_key_env"),
        temperature=float(model_cfg.get("temperature", 0.0)),
        max_tokens=int(model_cfg.get("max_tokens", 1024)),
        num_retries=int(model_cfg.get("num_retries", 2)),
        timeout=float(model_cfg.get("timeout_s") or 120.0),
        cache=bool(model_cfg.get("cache", True)),
        engine=engine,
        provider_cfg=dict(model_cfg) if register_on_first_call else None,
        **kwargs,
    )
