"""``TrackedLM``: a ``dspy.LM`` that feeds the job's ledger and keeps keys out of pickles.

Every call checks the budget first and is booked in the active
:mod:`~dspy_mlflow.lm.ledger` once it ends: a provider answer with its usage
(LiteLLM's token counter when the response carried none, marked estimated), a
cache hit (recognised by the cache's own flag, priced at list from the usage
it originally carried), or a failure; with the failed attempts DSPy retried.
The API key is read from the environment variable the config names; it is
dropped when the LM is pickled (``mlflow.dspy.log_model``) and read again when
unpickled. A custom provider re-registers itself there through
:class:`dspy_mlflow.registry.serving.ProviderRestore`, pickled with the model.
"""

from __future__ import annotations

import os
import threading

import dspy

from dspy_mlflow.lm import call_note
from dspy_mlflow.lm import ledger as ledger_mod
from dspy_mlflow.lm.custom import setup_custom
from dspy_mlflow.lm.ledger import Call

_SETUP_LOCK = threading.Lock()


class TrackedLM(dspy.LM):
    def __init__(self, model: str, *, api_key_env: str | None = None, provider_cfg: dict | None = None, **kwargs):
        if api_key_env and os.environ.get(api_key_env):
            kwargs["api_key"] = os.environ[api_key_env]
        super().__init__(model, **kwargs)
        self.api_key_env = api_key_env
        self.provider_cfg = provider_cfg  # a custom provider to set up on the first call (then None)

    def _set_up_provider(self) -> None:
        if getattr(self, "provider_cfg", None) is None:  # also an LM pickled before this attribute existed
            return
        with _SETUP_LOCK:
            if self.provider_cfg is not None:
                setup_custom(self.provider_cfg)
                self.provider_cfg = None

    def __call__(self, prompt=None, *, messages=None, **kwargs):
        self._set_up_provider()
        ledger = ledger_mod.current()
        if ledger is not None:
            ledger.check_budget()
        with call_note.opened() as note:
            try:
                return super().__call__(prompt, messages=messages, **kwargs)
            except Exception:
                if ledger is not None:
                    ledger.record(Call(error=True, retries=note.retries))
                raise

    async def acall(self, prompt=None, *, messages=None, **kwargs):
        self._set_up_provider()
        ledger = ledger_mod.current()
        if ledger is not None:
            ledger.check_budget()
        with call_note.opened() as note:
            try:
                return await super().acall(prompt, messages=messages, **kwargs)
            except Exception:
                if ledger is not None:
                    ledger.record(Call(error=True, retries=note.retries))
                raise

    def update_history(self, entry):
        ledger = ledger_mod.current()
        if ledger is not None:
            ledger.record(self._call_of(entry))
        super().update_history(entry)

    def _call_of(self, entry: dict) -> Call:
        note = call_note.current() or call_note.CallNote()
        hit = note.cache_hit or bool(getattr(entry.get("response"), "cache_hit", False))
        usage = note.stored_usage if hit else (entry.get("usage") or {})
        tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        # no usage block: DSPy's native engine gives {}, LiteLLM fills zeros (no prompt is 0 tokens)
        estimated = tokens_in is None or tokens_out is None or (tokens_in == 0 and tokens_out == 0)
        if estimated:
            tokens_in, tokens_out = estimate_tokens(self.model, entry)
        return Call(int(tokens_in), int(tokens_out), cache_hit=hit, estimated=estimated and not hit,
                    retries=note.retries)

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


def estimate_tokens(model: str, entry: dict) -> tuple[int, int]:
    """Prompt and completion tokens of a call whose response carried no usage, by LiteLLM's counter."""
    import litellm

    messages = entry.get("messages") or [{"role": "user", "content": str(entry.get("prompt") or "")}]
    outputs = entry.get("outputs") or []
    text = "".join(o if isinstance(o, str) else str((o or {}).get("text") or "") for o in outputs)
    prompt = litellm.token_counter(model=model, messages=messages)
    completion = litellm.token_counter(model=model, text=text, count_response_tokens=True) if text else 0
    return int(prompt), int(completion)
