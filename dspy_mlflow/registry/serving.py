"""Let a pickled program find its custom LiteLLM provider, and answer batches, in another process.

``mlflow.dspy.log_model`` pickles the program together with ``dspy.settings`` (the LM included),
but a custom LiteLLM provider (``offline/...``, ``mlx/...``) lives in
``litellm.custom_provider_map`` of the logging process and is not part of the pickle. A process
that unpickles the model (``mlflow models serve``, ``mlflow.pyfunc.load_model``) would then fail
with "LLM Provider NOT provided".

``ProviderRestore`` is a no-op DSPy callback that travels inside the pickled settings: when it is
unpickled it imports the provider module and calls its ``setup(model_cfg)`` (idempotent), so the
provider is registered before the program runs. Log the model inside
``with provider_restore(model_cfg): mlflow.dspy.log_model(...)``.

MLflow's DSPy flavor answers one record per request ("Dspy model doesn't support batch
inference"). The same callback, when unpickled, lets that flavor's pyfunc wrapper answer a
batch (a DataFrame of several rows, a list of records) record by record, in order: a batch of
records in one ``/invocations`` request of ``mlflow models serve`` gets a list of predictions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

try:  # dspy is needed to log a model anyway; keep this module importable without it
    from dspy.utils.callback import BaseCallback
except ImportError:  # pragma: no cover
    BaseCallback = object  # type: ignore[misc,assignment]

from dspy_mlflow.lm.custom import CUSTOM_PROVIDERS, provider_of, setup_custom


class ProviderRestore(BaseCallback):
    """Re-registers a custom LiteLLM provider, and lets the DSPy flavor answer batches, when unpickled."""

    def __init__(self, model_cfg: Mapping[str, Any]):
        self.model_cfg = dict(model_cfg)

    def restore(self) -> None:
        answer_batches()
        if provider_of(self.model_cfg) in CUSTOM_PROVIDERS:
            setup_custom(self.model_cfg)

    def __getstate__(self) -> dict[str, Any]:
        return {"model_cfg": self.model_cfg}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.model_cfg = state["model_cfg"]
        self.restore()


def restore_callback(model_cfg: Mapping[str, Any]) -> ProviderRestore:
    """The callback pickled with a program logged for ``model_cfg`` (needs ``litellm_model``)."""
    return ProviderRestore(_plain(model_cfg))


def answer_batches() -> None:
    """Let MLflow's DSPy pyfunc wrapper answer several records, one program call each (once per process)."""
    try:
        from mlflow.dspy.wrapper import DspyModelWrapper
    except ImportError:  # pragma: no cover - not serving through MLflow
        return
    single = DspyModelWrapper.predict
    if getattr(single, "_answers_batches", False):
        return

    def predict(self, inputs: Any, params: dict[str, Any] | None = None):
        records = _records(inputs)
        if records is None:
            return single(self, inputs, params)
        return [single(self, record, params) for record in records]

    predict._answers_batches = True  # type: ignore[attr-defined]
    DspyModelWrapper.predict = predict


def _records(inputs: Any) -> list | None:
    """The records of a batch (several DataFrame rows, a list of dicts), else None: one input."""
    import pandas as pd

    if isinstance(inputs, pd.DataFrame) and len(inputs) > 1:
        return [inputs.iloc[[i]].reset_index(drop=True) for i in range(len(inputs))]
    if isinstance(inputs, list) and len(inputs) > 1 and all(isinstance(r, Mapping) for r in inputs):
        return list(inputs)
    return None


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
    callbacks = [cb for cb in (dspy.settings.get("callbacks") or []) if not isinstance(cb, ProviderRestore)]
    with dspy.context(callbacks=[*callbacks, callback]):
        yield callback
