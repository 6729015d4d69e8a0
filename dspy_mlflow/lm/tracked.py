"""``TrackedLM``: a ``dspy.LM`` that feeds the job's ledger and keeps keys out of pickles.

Every call checks the budget first; every finished call reports its usage
(cache hits report none) to the active :mod:`~dspy_mlflow.lm.ledger`. The API
key is read from the environment variable the config names; it is dropped when
the LM is pickled (``mlflow.dspy.log_model``) and read again when unpickled.
A custom provider re-registers itself there through
:class:`dspy_mlflow.registry.serving.ProviderRestore`, pickled with the model.
"""

from __future__ import annotations

import os

import dspy

from dspy_mlflow.lm import ledger as ledger_mod


class TrackedLM(dspy.LM):
    def __init__(self, model: str, *, api_key_env: str | None = None, **kwargs):
        if api_key_env and os.environ.get(api_key_env):
            kwargs["api_key"] = os.environ[api_key_env]
        super().__init__(model, **kwargs)
        self.api_key_env = api_key_env

    def __call__(self, prompt=None, *, messages=None, **kwargs):
        ledger = ledger_mod.current()
        if ledger is not None:
            ledger.check_budget()
        try:
            return super().__call__(prompt, messages=messages, **kwargs)
        except Exception:
            if ledger is not None:
                ledger.record(None, cache_hit=False, error=True)
            raise

    async def acall(self, prompt=None, *, messages=None, **kwargs):
        ledger = ledger_mod.current()
        if ledger is not None:
            ledger.check_budget()
        try:
            return await super().acall(prompt, messages=messages, **kwargs)
        except Exception:
            if ledger is not None:
                ledger.record(None, cache_hit=False, error=True)
            raise

    def update_history(self, entry):
        ledger = ledger_mod.current()
        if ledger is not None:
            usage = entry.get("usage") or {}
            ledger.record(usage, cache_hit=not usage)
        super().update_history(entry)

    def __getstate__(self):
        state = super().__getstate__()
        state["kwargs"] = {k: v for k, v in state.get("kwargs", {}).items() if k != "api_key"}
        state["history"] = []
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        env = state.get("api_key_env")
        if env and os.environ.get(env):
            self.kwargs["api_key"] = os.environ[env]
