"""Local models through MLX (mlx-lm), as the LiteLLM custom provider ``mlx``.

    dspy.LM("mlx/mlx-community/Mistral-7B-Instruct-v0.3-4bit")   # a hub repo already in the HF cache
    dspy.LM("mlx/~/.cache/dspy_mlflow/mlx_tiny")                    # a local mlx-lm model folder

The model string after ``mlx/`` is a local folder (``~`` and ``$VARS`` expanded) or a
Hugging Face repo id. Nothing is ever downloaded here: a repo id is looked up in the local
Hugging Face cache only, and a missing model is a ``ProviderError`` whose one line names the
model, where it looked, and the command that fetches it.

How a call runs: the messages go through the tokenizer's chat template; ``temperature`` and
``top_p`` become an mlx-lm sampler (``mlx_lm.sample_utils.make_sampler``), ``max_tokens`` bounds
generation and ``stop`` strings cut the text and stop generating at the first match. The
response's ``usage`` carries the real prompt and completion token counts.

Models load lazily, once per process, and are shared by all threads: a lock per model guards
loading, and generation on one model is serialized (MLX is not thread-safe for one model).
Loaded models live in a bounded LRU cache (``provider_options.max_loaded_models``, default 1)
so a sweep over several local models does not hold them all in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dspy_mlflow import names
from dspy_mlflow.errors import ProviderError
from dspy_mlflow.lm import hardware
from dspy_mlflow.lm.mlx.models import (  # noqa: F401  (CACHE, load_count: the provider's public face)
    CACHE,
    DEFAULT_MAX_LOADED_MODELS,
    LoadedModel,
    get_model,
    load_count,
    set_max_loaded_models,
)
from dspy_mlflow.lm.mlx.paths import (  # noqa: F401
    PROVIDER,
    _expand,
    _hf_cache_dir,
    looks_local,
    resolve_model_path,
    strip_prefix,
)
from dspy_mlflow.lm.mlx.tiny import build_tiny_model, is_complete


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type", "text") == "text":
                    parts.append(str(part.get("text", "")))
            else:
                parts.append(str(part))
        return "".join(parts)
    return str(content)


def format_prompt(tokenizer: Any, messages: list) -> list[int]:
    """Token ids of the chat-templated prompt (generation prompt added)."""
    msgs = [
        {"role": str(m.get("role", "user")), "content": _content_text(m.get("content"))} for m in messages
    ]
    text = None
    if getattr(tokenizer, "chat_template", None):
        try:
            text = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        except Exception:
            # some templates refuse a system role: fold it into the first user message
            if msgs and msgs[0]["role"] == "system" and len(msgs) > 1:
                merged = [
                    {"role": msgs[1]["role"], "content": msgs[0]["content"] + "\n\n" + msgs[1]["content"]}
                ]
                text = tokenizer.apply_chat_template(
                    merged + msgs[2:], add_generation_prompt=True, tokenize=False
                )
            else:
                raise
    if text is None:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "
    bos = getattr(tokenizer, "bos_token", None)
    add_special = bos is None or not text.startswith(bos)
    return list(tokenizer.encode(text, add_special_tokens=add_special))


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def _stops(stop: Any) -> list[str]:
    if not stop:
        return []
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if s]


def generate_stream(
    entry: LoadedModel,
    prompt_ids: list[int],
    *,
    temperature: float | None = 0.0,
    top_p: float | None = None,
    max_tokens: int | None = 256,
    stop: Any = None,
    seed: int | None = None,
) -> Iterator[tuple[str, int, str | None]]:
    """Generate on a loaded model (serialized per model), yielding ``(new text, completion tokens so
    far, finish reason)``; only the last item has a finish reason. A stop string is cut and ends
    generation; text that could be the start of one is held back until it is known not to be."""
    import mlx.core as mx
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    temp = float(temperature or 0.0)
    sampler = make_sampler(temp=temp, top_p=float(top_p) if top_p is not None else 0.0)
    stops = _stops(stop)
    hold = max((len(s) for s in stops), default=1) - 1
    limit = int(max_tokens) if max_tokens else 256
    prompt = mx.array(prompt_ids)

    text, sent, tokens, finish = "", 0, 0, "length"
    with entry.lock:
        if seed is not None:
            mx.random.seed(int(seed))
        for response in stream_generate(
            entry.model, entry.tokenizer, prompt, max_tokens=limit, sampler=sampler
        ):
            tokens = response.generation_tokens
            if response.text:
                start = max(0, len(text) - hold)
                text += response.text
                hits = [i for i in (text.find(s, start) for s in stops) if i >= 0]
                if hits:
                    text = text[: min(hits)]
                    finish = "stop"
                    break
                if len(text) - hold > sent:
                    yield text[sent : len(text) - hold], tokens, None
                    sent = len(text) - hold
            if response.finish_reason is not None:
                finish = response.finish_reason
    yield text[sent:], tokens, finish


def generate(entry: LoadedModel, prompt_ids: list[int], **sampling: Any) -> Generation:
    """The whole generation at once (see :func:`generate_stream` for the arguments)."""
    pieces = list(generate_stream(entry, prompt_ids, **sampling))
    _, tokens, finish = pieces[-1]
    return Generation(
        text="".join(p[0] for p in pieces), prompt_tokens=len(prompt_ids), completion_tokens=tokens,
        finish_reason=finish or "length",
    )


def _sampling(optional_params: Mapping) -> dict[str, Any]:
    """LiteLLM's optional params as :func:`generate_stream` arguments."""
    return {
        "temperature": optional_params.get("temperature", 0.0),
        "top_p": optional_params.get("top_p"),
        "max_tokens": optional_params.get("max_tokens") or optional_params.get("max_completion_tokens"),
        "stop": optional_params.get("stop"),
        "seed": optional_params.get("seed"),
    }


_END = object()


def _produce(entry: LoadedModel, prompt_ids: list[int], sampling: dict, put, stop: threading.Event) -> None:
    """Run :func:`generate_stream` on this thread, handing each piece (or the error) to ``put``,
    then ``_END``. The model's lock is held only while generating, never while a reader waits, and
    generation stops at the next piece once ``stop`` is set (the reader went away)."""
    gen = generate_stream(entry, prompt_ids, **sampling)
    try:
        for item in gen:
            if stop.is_set():
                break
            put(item)
    except BaseException as exc:  # the reader raises it
        put(exc)
    finally:
        gen.close()
        put(_END)


def _chunk(piece: str, tokens: int, finish: str | None, prompt_tokens: int) -> dict[str, Any]:
    """A LiteLLM GenericStreamingChunk; the last one carries the finish reason and the usage."""
    usage = None
    if finish is not None:
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens, "total_tokens": prompt_tokens + tokens}
    return {"text": piece, "is_finished": finish is not None, "finish_reason": finish or "", "index": 0,
            "tool_use": None, "usage": usage}


# --------------------------------------------------------------------------- LiteLLM handler


def _make_handler_class():
    import litellm
    from litellm import CustomLLM

    class MLXCustomLLM(CustomLLM):
        """LiteLLM custom provider: ``mlx/<hub repo or local folder>``."""

        def completion(self, model, messages, *args, **kwargs):
            model_response = kwargs.get("model_response")
            optional_params = dict(kwargs.get("optional_params") or {})
            entry = get_model(model)
            prompt_ids = format_prompt(entry.tokenizer, messages)
            n = int(optional_params.get("n") or 1)
            gens = [generate(entry, prompt_ids, **_sampling(optional_params)) for _ in range(max(1, n))]
            if model_response is None:
                model_response = litellm.ModelResponse()
            model_response.choices = [
                litellm.Choices(
                    index=i,
                    finish_reason=g.finish_reason,
                    message=litellm.Message(role="assistant", content=g.text),
                )
                for i, g in enumerate(gens)
            ]
            prompt_tokens = gens[0].prompt_tokens
            completion_tokens = sum(g.completion_tokens for g in gens)
            model_response.usage = litellm.Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            )
            model_response.model = f"{PROVIDER}/{strip_prefix(model)}"
            model_response.created = int(time.time())
            return model_response

        async def acompletion(self, model, messages, *args, **kwargs):
            return await asyncio.to_thread(self.completion, model, messages, *args, **kwargs)

        def streaming(self, model, messages, *args, **kwargs):
            """A chunk per piece of text as mlx-lm generates it (on a worker thread)."""
            entry = get_model(model)
            prompt_ids = format_prompt(entry.tokenizer, messages)
            pieces: queue.SimpleQueue = queue.SimpleQueue()
            stop = threading.Event()
            work = (entry, prompt_ids, _sampling(dict(kwargs.get("optional_params") or {})), pieces.put, stop)
            threading.Thread(target=_produce, args=work, daemon=True, name="mlx-stream").start()
            try:
                while (item := pieces.get()) is not _END:
                    if isinstance(item, BaseException):
                        raise item
                    yield _chunk(*item, len(prompt_ids))
            finally:
                stop.set()  # a reader that stops early ends the generation

        async def astreaming(self, model, messages, *args, **kwargs):
            """The same, handed to the event loop chunk by chunk."""
            entry = get_model(model)
            prompt_ids = format_prompt(entry.tokenizer, messages)
            loop = asyncio.get_running_loop()
            pieces: asyncio.Queue = asyncio.Queue()
            stop = threading.Event()

            def put(item) -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody is reading
                    loop.call_soon_threadsafe(pieces.put_nowait, item)

            sampling = _sampling(dict(kwargs.get("optional_params") or {}))
            producer = loop.run_in_executor(None, _produce, entry, prompt_ids, sampling, put, stop)
            try:
                while (item := await pieces.get()) is not _END:
                    if isinstance(item, BaseException):
                        raise item
                    yield _chunk(*item, len(prompt_ids))
                await producer
            finally:
                stop.set()

    return MLXCustomLLM


_HANDLER = None
_HANDLER_LOCK = threading.Lock()


def handler():
    """The process-wide handler instance (created on first use; imports litellm)."""
    global _HANDLER
    with _HANDLER_LOCK:
        if _HANDLER is None:
            _HANDLER = _make_handler_class()()
        return _HANDLER


def register() -> None:
    """Register ``mlx`` in litellm.custom_provider_map; idempotent, keeps other providers."""
    import litellm

    obj = handler()
    entries = list(litellm.custom_provider_map or [])
    if any(e.get("provider") == PROVIDER and e.get("custom_handler") is obj for e in entries):
        pass
    else:
        entries = [e for e in entries if e.get("provider") != PROVIDER]
        entries.append({"provider": PROVIDER, "custom_handler": obj})
        litellm.custom_provider_map = entries
    from litellm.utils import custom_llm_setup

    custom_llm_setup()


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    try:
        value = cfg.get(key, default)
    except Exception:
        value = getattr(cfg, key, default)
    return default if value is None else value


def setup(model_cfg: Mapping) -> dict[str, str]:
    """Register the provider, check the model is on disk (building mlx_tiny if asked), and
    return run tags (hardware + resolved model folder). Raises ProviderError at preflight."""

    litellm_model = str(_get(model_cfg, "litellm_model", ""))
    if not litellm_model.startswith(PROVIDER + "/"):
        raise ProviderError(
            f"model.litellm_model={litellm_model!r} is not an MLX model: expected 'mlx/<model>'"
        )
    options = _get(model_cfg, "provider_options", {}) or {}
    max_loaded = _get(options, "max_loaded_models", DEFAULT_MAX_LOADED_MODELS)
    build_if_missing = bool(_get(options, "build_if_missing", False))

    try:
        import mlx_lm  # noqa: F401
    except ImportError as exc:
        raise ProviderError(
            f"model {_get(model_cfg, 'name', litellm_model)!r} needs mlx-lm ({exc.name or exc} missing): "
            "pip install 'dspy-mlflow[mlx]'"
        ) from None

    name = strip_prefix(litellm_model)
    if build_if_missing and looks_local(name) and not is_complete(_expand(name)):
        try:
            build_tiny_model(_expand(name), seed=int(_get(options, "seed", 0)))
        except Exception as exc:
            raise ProviderError(
                f"could not build the tiny MLX model in {_expand(name)}: {type(exc).__name__}: {exc}"
            ) from None
    path = resolve_model_path(name)
    set_max_loaded_models(int(max_loaded))
    register()
    tags = hardware.detect()
    tags[names.MLX_MODEL_PATH] = str(path)
    return tags
