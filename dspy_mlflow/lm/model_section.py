"""The ``model`` section's provider parts, checked before anything runs (no DSPy, no LiteLLM)."""

from __future__ import annotations

from collections.abc import Mapping

from dspy_mlflow.errors import ConfigError
from dspy_mlflow.lm import offline
from dspy_mlflow.lm.custom import provider_of

API_BASE_SCHEMES = ("http://", "https://")


def check_section(cfg: Mapping) -> None:
    """``api_base`` an HTTP(S) URL; the offline model's options."""
    model = cfg["model"]
    api_base = model.get("api_base")
    if api_base is not None and not str(api_base).startswith(API_BASE_SCHEMES):
        raise ConfigError("model.api_base", api_base, "an http:// or https:// URL of an OpenAI-compatible "
                          "server (e.g. http://127.0.0.1:8000/v1), or null")
    if provider_of(model) == "offline":
        offline.check_options(model.get("provider_options") or {})
