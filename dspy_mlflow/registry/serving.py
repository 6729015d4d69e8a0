"""Let a pickled program find its custom LiteLLM provider in another process.

``mlflow.dspy.log_model`` pickles the program together with ``dspy.settings`` (the LM included),
but a custom LiteLLM provider (``offline/...``, ``mlx/...``) lives in
``litellm.custom_provider_map`` of the logging process and is not part of the pickle. A process
that unpickles the model (``mlflow models serve``, ``mlflow.pyfunc.load_model``) would then fail
with "LLM Provider NOT provided".

``ProviderRestore`` is a no-op DSPy callback that travels inside the pickled settings: when it is
unpickled it imports the provider module and calls its ``setup(model_cfg)`` (idempotent), so the
provider is registered before the program runs. Log the model inside
``with provider_restore(model_cfg): mlflow.dspy.log_model(...)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

try:  # dspy is needed to log a model anyway; keep this module importable without it
    from dspy.utils.callback import BaseCallback
except ImportError:  # pragma: no cover
    BaseCallback = object  # type: ignore[misc,assignment]


class ProviderRestore(BaseCallback):
    """Re-registers a custom LiteLLM provider when unpickled."""

    def __init__(self, model_cfg: Mapping[str, Any]):
        self.model_cfg = dict(model_cfg)

    def restore(self) -> None:
        from dspy_mlflow.lm.providers import setup_custom

        setup_custom(self.model_cfg)

    def __getstate__(self) -> dict[str, Any]:
        return {"model_cfg": self.model_cfg}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.model_cfg = state["model_cfg"]
        self.restore()


def restore_callback(model_cfg: Mapping[str, Any]) -> ProviderRestore | None:
    """The callback for ``model_cfg`` (needs ``litellm_model``), or None for a LiteLLM built-in provider."""
    from dspy_mlflow.lm.providers import CUSTOM_PROVIDERS, provider_of

    return ProviderRestore(_plain(model_cfg)) if provider_of(model_cfg) in CUSTOM_PROVIDERS else None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@contextlib.contextmanager
def provider_restore(model_cfg: Mapping[str, Any]):
    """Context in which ``mlflow.dspy.log_model`` pickles a ProviderRestore with the settings."""
    import dspy

    callback = restore_callback(model_cfg)
    if callback is None:
        yield None
        return
    callbacks = [cb for cb in (dspy.settings.get("callbacks") or []) if not isinstance(cb, ProviderRestore)]
    with dspy.context(callbacks=[*callbacks, callback]):
        yield callback
