"""The model's preflight: its provider registered and checked; the fallback entry if it cannot run."""

from __future__ import annotations

import mlflow

from dspy_mlflow import names
from dspy_mlflow.config.entries import load_model_entry
from dspy_mlflow.errors import ProviderError
from dspy_mlflow.lm.providers import preflight
from dspy_mlflow.steps.context import JobContext


def preflight_model(ctx: JobContext) -> dict:
    """The model entry the job runs on (``model.fallback``'s when the configured one is unavailable)."""
    model_cfg = ctx.conf["model"]
    try:
        tags = preflight(model_cfg)
    except ProviderError as exc:
        fallback = model_cfg.get("fallback")
        if not fallback:
            raise
        print(f"model {model_cfg['name']} unavailable ({exc}); falling back to model={fallback}")
        mlflow.set_tags({names.FALLBACK_FROM: model_cfg["name"], names.FALLBACK_TO: fallback,
                         names.FALLBACK_REASON: str(exc)[:5000]})
        model_cfg = load_model_entry(fallback)
        mlflow.log_param(names.PARAM_MODEL_EFFECTIVE, model_cfg["name"])
        tags = preflight(model_cfg)
    if tags:
        mlflow.set_tags(tags)
    ctx.model_cfg = model_cfg
    return model_cfg
