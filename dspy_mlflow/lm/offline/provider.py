"""The offline model as the LiteLLM custom provider ``offline`` (``dspy.LM("offline/<anything>")``).

Injected faults raise what LiteLLM raises for the same failure of a hosted
model (classes from ``litellm/exceptions.py``):

    rate_limit    litellm.RateLimitError, 429, header retry-after: retry_after_s
    server_error  litellm.InternalServerError, 500
    bad_gateway   litellm.BadGatewayError, 502
    unavailable   litellm.ServiceUnavailableError, 503
    reset         litellm.APIConnectionError
    hang          sleeps hang_s then answers; if the call's timeout is shorter,
                  sleeps the timeout and raises litellm.Timeout (408)
    no_usage      an answer whose usage LiteLLM fills with zeros, as it does for a
                  hosted body without a usage block
    garbled       litellm.InternalServerError, as LiteLLM's OpenAI client raises
                  for a 200 whose body is not JSON

litellm is imported on first use, never at import time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from dspy_mlflow import names
from dspy_mlflow.errors import ProviderError
from dspy_mlflow.lm.faults import Fault, FaultInjector
from dspy_mlflow.lm.offline.draws import Draws
from dspy_mlflow.lm.offline.learner import answer
from dspy_mlflow.lm.offline.options import OfflineOptions

PROVIDER = "offline"
PUBLIC_MODULE = "dspy_mlflow.lm.offline"  # where OfflineLLM is found (pickles refer to it there)

_STATE: dict[str, Any] = {"options": OfflineOptions(), "handler": None, "handler_class": None}
_STATE_LOCK = threading.Lock()


def current_options() -> OfflineOptions:
    return _STATE["options"]


def _make_response(model: str, text: str, usage: dict | None, model_response: Any = None) -> Any:
    from litellm.types.utils import Choices, Message, ModelResponse, Usage

    resp = model_response if model_response is not None else ModelResponse()
    resp.choices = [Choices(index=0, finish_reason="stop", message=Message(role="assistant", content=text))]
    resp.model = f"{PROVIDER}/{model}" if not str(model).startswith(PROVIDER + "/") else model
    resp.created = int(time.time())
    resp.usage = Usage(**usage) if usage is not None else Usage()  # no usage block: LiteLLM's zeros
    return resp


def _seconds(timeout: Any) -> float | None:
    """The wait a LiteLLM ``timeout`` allows for the answer (a float or an httpx.Timeout's read)."""
    if timeout is None or isinstance(timeout, (int, float)):
        return timeout
    return getattr(timeout, "read", None)


def _hang_outcome(opts: OfflineOptions, timeout: Any) -> tuple[float, bool]:
    """(seconds to stall, whether the caller's timeout fires first)."""
    limit = _seconds(timeout)
    if limit is not None and limit < opts.hang_s:
        return float(limit), True
    return opts.hang_s, False


def fault_error(fault: Fault, model: str) -> Exception:
    """The LiteLLM exception for an injected fault (see the module docstring)."""
    import httpx
    import litellm

    message = f"offline model: injected fault ({fault.kind})"
    if fault.kind == "garbled":
        message += ": the 200 reply body is not valid JSON"
    request = httpx.Request("POST", f"http://offline.invalid/{model}")
    kw = {"message": message, "llm_provider": PROVIDER, "model": model}
    if fault.kind == "rate_limit":
        headers = {"retry-after": f"{fault.retry_after_s:g}"}
        response = httpx.Response(429, headers=headers, request=request)
        return litellm.RateLimitError(**kw, response=response, headers=headers)
    if fault.kind in ("server_error", "garbled"):
        return litellm.InternalServerError(**kw, response=httpx.Response(500, request=request))
    if fault.kind == "bad_gateway":
        return litellm.BadGatewayError(**kw, response=httpx.Response(502, request=request))
    if fault.kind == "unavailable":
        return litellm.ServiceUnavailableError(**kw, response=httpx.Response(503, request=request))
    if fault.kind == "reset":
        return litellm.APIConnectionError(**kw, request=request)
    if fault.kind == "hang":
        return litellm.Timeout(**kw)
    raise ValueError(f"fault kind {fault.kind!r} does not raise")


def _build_handler_class() -> type:
    import litellm

    class OfflineLLM(litellm.CustomLLM):
        """LiteLLM custom provider serving :func:`answer` (see :mod:`dspy_mlflow.lm.offline`)."""

        def __init__(self, options: OfflineOptions | None = None) -> None:
            super().__init__()
            self.options = options
            self.faults = FaultInjector()
            self.draws = Draws()

        def _opts(self) -> OfflineOptions:
            return self.options if self.options is not None else current_options()

        def _respond(self, model, messages, kwargs, fault: Fault | None):
            if fault is not None and fault.kind not in ("no_usage", "hang"):
                raise fault_error(fault, model)
            params = kwargs.get("optional_params") or {}
            temperature, seed = params.get("temperature"), params.get("seed")
            text, usage = answer(messages, self._opts(), response_format=params.get("response_format"),
                                 temperature=temperature, seed=seed,
                                 draw=self.draws.next(messages, temperature, seed))
            no_usage = fault is not None and fault.kind == "no_usage"
            return _make_response(model, text, None if no_usage else usage, kwargs.get("model_response"))

        def _stall(self, fault: Fault | None, kwargs) -> tuple[float, bool]:
            opts = self._opts()
            stall, timed_out = opts.latency_ms / 1000.0, False
            if fault is not None and fault.kind == "hang":
                hang, timed_out = _hang_outcome(opts, kwargs.get("timeout"))
                stall = hang if timed_out else stall + hang
            return stall, timed_out

        def completion(self, model, messages, *args, **kwargs):
            fault = self.faults.draw(messages, self._opts())
            stall, timed_out = self._stall(fault, kwargs)
            if stall > 0:
                time.sleep(stall)
            if timed_out:
                raise fault_error(fault, model)
            return self._respond(model, messages, kwargs, fault)

        async def acompletion(self, model, messages, *args, **kwargs):
            import asyncio  # only an async caller needs it (the package is imported by every config check)

            fault = self.faults.draw(messages, self._opts())
            stall, timed_out = self._stall(fault, kwargs)
            if stall > 0:
                await asyncio.sleep(stall)
            if timed_out:
                raise fault_error(fault, model)
            return self._respond(model, messages, kwargs, fault)

    OfflineLLM.__module__ = PUBLIC_MODULE
    OfflineLLM.__qualname__ = "OfflineLLM"
    return OfflineLLM


def handler_class() -> type:
    """``OfflineLLM`` (a ``litellm.CustomLLM`` subclass), built on first access."""
    with _STATE_LOCK:
        if _STATE["handler_class"] is None:
            _STATE["handler_class"] = _build_handler_class()
        return _STATE["handler_class"]


def get_handler() -> Any:
    """The process-wide handler instance (created on first use)."""
    cls = handler_class()
    with _STATE_LOCK:
        if _STATE["handler"] is None:
            _STATE["handler"] = cls()
        return _STATE["handler"]


def check(model_cfg: Mapping | None = None) -> OfflineOptions:
    """The entry's ``provider_options``, checked without importing LiteLLM; bad ones raise ProviderError."""
    raw = (model_cfg or {}).get("provider_options") if model_cfg is not None else None
    try:
        return OfflineOptions.from_mapping(dict(raw) if raw else None)
    except (ValueError, TypeError) as exc:
        raise ProviderError(f"model provider 'offline': {exc}") from exc


def setup(model_cfg: Mapping | None = None) -> dict[str, str]:
    """Register the ``offline`` LiteLLM provider (idempotent) and apply ``provider_options``.

    Options live in this module; the registered handler reads them on every call,
    so re-calling ``setup`` with new options takes effect immediately (and resets
    the fault-injection attempt counters). Bad options raise ``ProviderError``.
    """
    import litellm

    opts = check(model_cfg)
    handler = get_handler()
    with _STATE_LOCK:
        _STATE["options"] = opts
        handler.faults.reset()
        current = list(litellm.custom_provider_map or [])
        entries = [e for e in current if not (isinstance(e, Mapping) and e.get("provider") == PROVIDER)]
        entries.append({"provider": PROVIDER, "custom_handler": handler})
        litellm.custom_provider_map = entries
        # LiteLLM reads the map into its provider list when it is (re)registered.
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
    return {names.OFFLINE: "nearest-neighbour"}
