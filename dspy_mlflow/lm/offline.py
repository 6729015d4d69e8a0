"""The offline model: a deterministic stand-in, NOT a real language model.

``model=offline`` lets the whole pipeline (DSPy -> LiteLLM -> provider -> usage
and cost accounting -> MLflow) run anywhere, without a network, an API key or
a GPU. It is an in-context nearest-neighbour learner:

* it parses the DSPy-formatted prompt (ChatAdapter ``[[ ## field ## ]]``
  markers or JSONAdapter JSON objects): the system message lists the input and
  output fields with their types, few-shot demos arrive as user/assistant
  message pairs and the query is the last user message;
* it answers with the outputs of the demo whose inputs are most similar to the
  query (TF-IDF cosine over lowercased word tokens; ties go to the earlier
  demo; when nothing overlaps, the most common demo answer wins);
* output fields the chosen demo lacks get a filler (``reasoning``: "Closest
  example: ..."; other fields: the type fallback below);
* with no demos it gives a fixed answer that still parses for every output
  type: Literal -> first option (or ``fallback_label``), int -> 0,
  float -> 0.0, bool -> False, list -> [], dict -> {}, str -> "unknown".

So few-shot optimizers change its score for real (more and more relevant
demos -> better nearest neighbours), while instruction-only optimizers get
useless but well-formed answers. It reports deterministic token usage
(regex tokens ``\\w+|[^\\w\\s]``), and has configurable latency and
deterministic fault injection (``OfflineOptions``).

It is registered as the LiteLLM custom provider ``offline`` by :func:`setup`
and is reachable as ``dspy.LM("offline/<anything>")``.
:mod:`dspy_mlflow.lm.offline_server` serves the same model over an
OpenAI-compatible HTTP API on loopback.

This module imports neither litellm nor dspy at import time;
``OfflineLLM`` (a ``litellm.CustomLLM`` subclass) is built on first access.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

PROVIDER = "offline"
NOT_SUPPLIED = "Not supplied for this particular example."
FALLBACK_STR = "unknown"

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_WORD_RE = re.compile(r"\w+")
_MARKER_RE = re.compile(r"\[\[ ## (\w+) ## \]\]")
_FIELD_LINE_RE = re.compile(r"^\d+\. `([^`]+)` \(")
_NOTE_ONE_OF_RE = re.compile(r"must exactly match \(no extra characters\) one of: (.*)$")


@dataclass(frozen=True)
class OfflineOptions:
    """Knobs of the offline model (``model_cfg.provider_options``)."""

    latency_ms: float = 0.0
    fault_rate: float = 0.0
    seed: int = 0
    fallback_label: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping | None) -> OfflineOptions:
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ValueError(f"unknown offline provider_options {unknown}; allowed: {sorted(known)}")
        kw: dict[str, Any] = {}
        if data.get("latency_ms") is not None:
            kw["latency_ms"] = float(data["latency_ms"])
        if data.get("fault_rate") is not None:
            kw["fault_rate"] = float(data["fault_rate"])
        if data.get("seed") is not None:
            kw["seed"] = int(data["seed"])
        if data.get("fallback_label") is not None:
            kw["fallback_label"] = str(data["fallback_label"])
        opts = cls(**kw)
        if not 0.0 <= opts.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be in [0, 1], got {opts.fault_rate}")
        if opts.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {opts.latency_ms}")
        return opts


# --------------------------------------------------------------------------- tokens / usage


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text or ""))


def _content_text(content: Any) -> str:
    """Text of a message content (a string or a list of OpenAI content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type") == "text" or "text" in part:
                    parts.append(str(part.get("text", "")))
            else:
                parts.append(str(part))
        return "\n".join(parts)
    return str(content)


def usage_for(messages: list[Mapping], text: str) -> dict[str, int]:
    prompt = sum(count_tokens(_content_text(m.get("content"))) for m in messages)
    completion = count_tokens(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


# --------------------------------------------------------------------------- prompt parsing


@dataclass
class _Field:
    name: str
    type: str
    note: str = ""


def _split_type(line: str, start: int) -> str:
    """Type text of a field line: the balanced (...) starting at ``start`` (an open paren)."""
    depth, quote, i = 0, "", start
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return line[start + 1 : i]
        i += 1
    return line[start + 1 :].rstrip("):")


def _parse_field_list(block: str) -> list[_Field]:
    out = []
    for line in block.splitlines():
        m = _FIELD_LINE_RE.match(line)
        if m:
            out.append(_Field(m.group(1), _split_type(line, m.end() - 1)))
    return out


@dataclass
class _Spec:
    inputs: list[_Field]
    outputs: list[_Field]
    json_mode: bool


def _parse_system(system: str, json_hint: bool) -> _Spec | None:
    if "Your output fields are:" not in system:
        return None
    head, _, rest = system.partition("Your output fields are:")
    _, _, in_block = head.partition("Your input fields are:")
    out_block = rest.split("All interactions will be structured", 1)[0]
    inputs = _parse_field_list(in_block)
    outputs = _parse_field_list(out_block)
    if not outputs:
        return None
    # per-field notes from the structure block ("# note: ... one of: a; b")
    for f in outputs:
        m = re.search(r"\{" + re.escape(f.name) + r"\}\s+# note: ([^\n\"]*)", system)
        if m:
            f.note = m.group(1)
    json_mode = json_hint or "Outputs will be a JSON object" in system
    return _Spec(inputs, outputs, json_mode)


def _parse_markers(text: str) -> dict[str, str]:
    """``[[ ## name ## ]]`` sections of a message -> {name: value} (``completed`` dropped)."""
    parts = _MARKER_RE.split(text)
    out: dict[str, str] = {}
    for i in range(1, len(parts) - 1, 2):
        name = parts[i]
        if name == "completed":
            continue
        out[name] = parts[i + 1].strip()
    return out


def _strip_query_suffix(text: str) -> str:
    return re.split(r"\n\s*Respond with (?:the corresponding output fields|a JSON object)", text, maxsplit=1)[
        0
    ]


def _parse_json_object(text: str) -> dict | None:
    text = text.strip()
    m = re.search(r"\{.*\}", text, flags=re.S)
    if not m:
        return None
    try:
        val = json.loads(m.group(0))
    except ValueError:
        return None
    return val if isinstance(val, dict) else None


def _is_missing(value: Any) -> bool:
    return isinstance(value, str) and value.strip() in (NOT_SUPPLIED, "")


# --------------------------------------------------------------------------- type fallbacks


def _literal_options(f: _Field) -> list[Any] | None:
    t = f.type.strip()
    m = re.match(r"^(?:typing\.)?Literal\[(.*)\]$", t, flags=re.S)
    if m:
        try:
            val = ast.literal_eval("[" + m.group(1) + "]")
            if val:
                return list(val)
        except (ValueError, SyntaxError):
            pass
    m = _NOTE_ONE_OF_RE.search(f.note)
    if m:
        opts = [o.strip() for o in m.group(1).split(";") if o.strip()]
        return opts or None
    return None


def _fallback_from_schema(schema: Any, depth: int = 0) -> Any:
    if not isinstance(schema, Mapping) or depth > 6:
        return FALLBACK_STR
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if not (isinstance(s, Mapping) and s.get("type") == "null")]
            return _fallback_from_schema((options or schema[key])[0], depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ == "object":
        props = schema.get("properties") or {}
        return {
            k: _fallback_from_schema(props[k], depth + 1) for k in schema.get("required", []) if k in props
        }
    return {"array": [], "integer": 0, "number": 0.0, "boolean": False, "null": None}.get(typ, FALLBACK_STR)


def _fallback_value(f: _Field, options: OfflineOptions) -> Any:
    """A value that parses for the field's type."""
    lits = _literal_options(f)
    if lits:
        if options.fallback_label is not None:
            for o in lits:
                if str(o) == options.fallback_label:
                    return o
        return lits[0]
    t = f.type.strip().lower()
    t = re.sub(r"^(typing\.)?optional\[(.*)\]$", r"\2", t)
    base = re.split(r"[\[|]", t, maxsplit=1)[0].strip()
    table = {
        "int": 0,
        "float": 0.0,
        "bool": False,
        "list": [],
        "tuple": [],
        "set": [],
        "dict": {},
        "str": FALLBACK_STR,
    }
    if base in table:
        return table[base]
    m = re.search(r"JSON schema: (\{.*\})", f.note)
    if m:
        try:
            return _fallback_from_schema(json.loads(m.group(1).replace('\\"', '"')))
        except ValueError:
            pass
    if options.fallback_label is not None:
        return options.fallback_label
    return FALLBACK_STR


# --------------------------------------------------------------------------- nearest neighbour


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _nearest(query: str, demo_inputs: list[str], demo_keys: list[str]) -> int:
    """Index of the demo most similar to the query (TF-IDF cosine, deterministic)."""
    docs = [Counter(_words(d)) for d in demo_inputs]
    q = Counter(_words(query))
    n = len(docs) + 1
    df: Counter = Counter()
    for d in [*docs, q]:
        df.update(d.keys())
    idf = {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}

    def vec(c: Counter) -> dict[str, float]:
        return {w: tf * idf[w] for w, tf in c.items()}

    qv = vec(q)
    qn = math.sqrt(sum(v * v for v in qv.values()))
    best, best_score = -1, 0.0
    for i, d in enumerate(docs):
        dv = vec(d)
        dn = math.sqrt(sum(v * v for v in dv.values()))
        if not qn or not dn:
            continue
        score = sum(qv[w] * dv[w] for w in qv.keys() & dv.keys()) / (qn * dn)
        if score > best_score + 1e-12:
            best, best_score = i, score
    if best >= 0:
        return best
    # nothing overlaps: the most common demo answer, earliest on ties
    counts = Counter(demo_keys)
    top = max(counts.values())
    return next(i for i, k in enumerate(demo_keys) if counts[k] == top)


def _render_chat(values: list[tuple[str, Any]]) -> str:
    chunks = []
    for name, v in values:
        if isinstance(v, str):
            s = v
        elif isinstance(v, (list, dict)):
            s = json.dumps(v, ensure_ascii=False)
        else:
            s = str(v)
        chunks.append(f"[[ ## {name} ## ]]\n{s}")
    chunks.append("[[ ## completed ## ]]")
    return "\n\n".join(chunks)


def _render_json(values: list[tuple[str, Any]]) -> str:
    return json.dumps(dict(values), ensure_ascii=False, indent=2)


def _input_text(fields_: dict[str, str], spec: _Spec) -> str:
    names = [f.name for f in spec.inputs] or list(fields_)
    return "\n".join(str(fields_[n]) for n in names if n in fields_)


def _preview(text: str, n_words: int = 12) -> str:
    words = text.split()
    out = " ".join(words[:n_words])
    return out + (" ..." if len(words) > n_words else "")


def _plain_chat_answer(messages: list[Mapping]) -> str:
    """Non-DSPy prompts: the reply to the most similar earlier user turn, else a fixed answer."""
    turns = [(i, _content_text(m.get("content"))) for i, m in enumerate(messages)]
    pairs = []
    for (i, text), m in zip(turns, messages, strict=True):
        if m.get("role") == "user" and i + 1 < len(messages) and messages[i + 1].get("role") == "assistant":
            pairs.append((text, _content_text(messages[i + 1].get("content"))))
    last_user = next(
        (t for (_, t), m in zip(reversed(turns), reversed(messages), strict=True) if m.get("role") == "user"),
        "",
    )
    if not pairs:
        return FALLBACK_STR
    idx = _nearest(last_user, [p[0] for p in pairs], [p[1] for p in pairs])
    return pairs[idx][1]


def answer(
    messages: list[dict], options: OfflineOptions | None = None, *, response_format: Any = None
) -> tuple[str, dict]:
    """Answer a chat prompt. Pure and deterministic: returns (text, usage)."""
    options = options or OfflineOptions()
    messages = [m for m in messages if isinstance(m, Mapping)]
    system = "\n".join(
        _content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    )
    json_hint = isinstance(response_format, Mapping) and response_format.get("type") in (
        "json_object",
        "json_schema",
    )
    if not json_hint and response_format is not None and not isinstance(response_format, Mapping):
        json_hint = True  # a pydantic model class / schema object: structured output
    spec = _parse_system(system, json_hint)
    if spec is None:
        text = _plain_chat_answer(messages)
        return text, usage_for(messages, text)

    convo = [m for m in messages if m.get("role") in ("user", "assistant")]
    query_idx = max((i for i, m in enumerate(convo) if m.get("role") == "user"), default=-1)
    query_fields = (
        _parse_markers(_strip_query_suffix(_content_text(convo[query_idx].get("content"))))
        if query_idx >= 0
        else {}
    )
    query = _input_text(query_fields, spec)

    demos: list[tuple[str, dict[str, Any]]] = []
    for i in range(query_idx - 1):
        u, a = convo[i], convo[i + 1]
        if u.get("role") != "user" or a.get("role") != "assistant":
            continue
        a_text = _content_text(a.get("content"))
        outs: dict[str, Any] | None = _parse_markers(a_text) if _MARKER_RE.search(a_text) else None
        if outs is None:
            outs = _parse_json_object(a_text)
        if not outs:
            continue
        demos.append((_input_text(_parse_markers(_content_text(u.get("content"))), spec), outs))

    values: list[tuple[str, Any]] = []
    if demos:
        keys = [json.dumps(d[1], sort_keys=True, default=str) for d in demos]
        demo_in, demo_out = demos[_nearest(query, [d[0] for d in demos], keys)]
        for f in spec.outputs:
            v = demo_out.get(f.name)
            if v is None or _is_missing(v):
                if f.name in ("reasoning", "rationale"):
                    v = f"Closest example: {_preview(demo_in)}"
                else:
                    v = _fallback_value(f, options)
            elif spec.json_mode and isinstance(v, str):
                v = _coerce_for_json(v, f, options)
            values.append((f.name, v))
    else:
        for f in spec.outputs:
            if f.name in ("reasoning", "rationale"):
                values.append((f.name, "No examples to compare with; answering with the default."))
            else:
                values.append((f.name, _fallback_value(f, options)))

    text = _render_json(values) if spec.json_mode else _render_chat(values)
    return text, usage_for(messages, text)


def _coerce_for_json(v: str, f: _Field, options: OfflineOptions) -> Any:
    """A chat-format demo value (a string) as a JSON value of the field's type."""
    fb = _fallback_value(f, options)
    if isinstance(fb, str):
        return v
    try:
        return json.loads(v)
    except ValueError:
        try:
            return ast.literal_eval(v)
        except (ValueError, SyntaxError):
            return v


# --------------------------------------------------------------------------- faults


class FaultInjector:
    """Deterministic faults: attempt k of a given prompt fails iff hash(seed, prompt, k) < fault_rate.

    Keyed by the prompt, not by a global call counter, so the outcome does not
    depend on thread scheduling; a retry of the same prompt is a fresh draw.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}

    def reset(self) -> None:
        with self._lock:
            self._attempts.clear()

    def should_fail(self, messages: list[Mapping], options: OfflineOptions) -> bool:
        if options.fault_rate <= 0:
            return False
        if options.fault_rate >= 1:
            return True
        key = hashlib.sha256(
            json.dumps(
                [options.seed, [[m.get("role"), _content_text(m.get("content"))] for m in messages]]
            ).encode()
        ).hexdigest()
        with self._lock:
            k = self._attempts.get(key, 0)
            self._attempts[key] = k + 1
        h = hashlib.sha256(f"{options.seed}:{key}:{k}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64 < options.fault_rate


# --------------------------------------------------------------------------- LiteLLM provider


_STATE: dict[str, Any] = {"options": OfflineOptions(), "handler": None}
_STATE_LOCK = threading.Lock()


def current_options() -> OfflineOptions:
    return _STATE["options"]


def _make_response(model: str, text: str, usage: dict, model_response: Any = None) -> Any:
    import litellm
    from litellm.types.utils import Choices, Message, ModelResponse, Usage

    resp = model_response if model_response is not None else ModelResponse()
    resp.choices = [Choices(index=0, finish_reason="stop", message=Message(role="assistant", content=text))]
    resp.model = f"{PROVIDER}/{model}" if not str(model).startswith(PROVIDER + "/") else model
    resp.created = int(time.time())
    resp.usage = Usage(**usage)
    del litellm
    return resp


def _fault_error(model: str) -> Exception:
    import litellm

    return litellm.RateLimitError(
        message="offline model: injected fault (rate limited)", llm_provider=PROVIDER, model=model
    )


def _build_handler_class() -> type:
    import litellm

    class OfflineLLM(litellm.CustomLLM):
        """LiteLLM custom provider serving :func:`answer` (see the module docstring)."""

        def __init__(self, options: OfflineOptions | None = None) -> None:
            super().__init__()
            self.options = options
            self.faults = FaultInjector()

        def _opts(self) -> OfflineOptions:
            return self.options if self.options is not None else current_options()

        def _respond(self, model, messages, optional_params, model_response):
            opts = self._opts()
            if self.faults.should_fail(messages, opts):
                raise _fault_error(model)
            fmt = (optional_params or {}).get("response_format")
            text, usage = answer(messages, opts, response_format=fmt)
            return _make_response(model, text, usage, model_response)

        def completion(self, model, messages, *args, **kwargs):
            opts = self._opts()
            if opts.latency_ms > 0:
                time.sleep(opts.latency_ms / 1000.0)
            return self._respond(model, messages, kwargs.get("optional_params"), kwargs.get("model_response"))

        async def acompletion(self, model, messages, *args, **kwargs):
            opts = self._opts()
            if opts.latency_ms > 0:
                await asyncio.sleep(opts.latency_ms / 1000.0)
            return self._respond(model, messages, kwargs.get("optional_params"), kwargs.get("model_response"))

    OfflineLLM.__module__ = __name__
    OfflineLLM.__qualname__ = "OfflineLLM"
    return OfflineLLM


def __getattr__(name: str) -> Any:
    if name == "OfflineLLM":
        with _STATE_LOCK:
            cls = globals().get("_OfflineLLM_cls")
            if cls is None:
                cls = _build_handler_class()
                globals()["_OfflineLLM_cls"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_handler() -> Any:
    """The process-wide handler instance (created on first use)."""
    with _STATE_LOCK:
        h = _STATE["handler"]
    if h is None:
        cls = __getattr__("OfflineLLM")
        with _STATE_LOCK:
            if _STATE["handler"] is None:
                _STATE["handler"] = cls()
            h = _STATE["handler"]
    return h


def setup(model_cfg: Mapping | None = None) -> dict[str, str]:
    """Register the ``offline`` LiteLLM provider (idempotent) and apply ``provider_options``.

    Options live in this module; the registered handler reads them on every call,
    so re-calling ``setup`` with new options takes effect immediately (and resets
    the fault-injection attempt counters). Bad options raise ``ProviderError``.
    """
    import litellm

    raw = (model_cfg or {}).get("provider_options") if model_cfg is not None else None
    try:
        opts = OfflineOptions.from_mapping(dict(raw) if raw else None)
    except (ValueError, TypeError) as exc:
        from dspy_mlflow.errors import ProviderError

        raise ProviderError(f"model provider 'offline': {exc}") from exc
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
    return {"dspy_mlflow.offline": "nearest-neighbour"}
