"""The LiteLLM custom providers shipped here (offline, mlx): which module sets each one up."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from dspy_mlflow.errors import ProviderError

# LiteLLM custom providers shipped here: model-string prefix -> module with setup(model_cfg)
CUSTOM_PROVIDERS = {
    "offline": ("dspy_mlflow.lm.offline", None),
    "mlx": ("dspy_mlflow.lm.mlx.provider", "pip install 'dspy-mlflow[mlx]'  (Linux: mlx[cpu])"),
}


def provider_of(model_cfg: Mapping) -> str:
    return str(model_cfg.get("litellm_model") or "").split("/", 1)[0]


def setup_custom(model_cfg: Mapping) -> dict[str, str]:
    prefix = provider_of(model_cfg)
    module_name, install = CUSTOM_PROVIDERS[prefix]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; install it with: {install}" if install else ""
        raise ProviderError(f"model provider '{prefix}' needs a missing package ({exc.name}){hint}") from exc
    return dict(module.setup(model_cfg) or {})
