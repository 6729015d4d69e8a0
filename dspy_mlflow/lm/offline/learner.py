"""The in-context nearest-neighbour learner: :func:`answer` a chat prompt, purely and deterministically.

It answers with the outputs of the demo whose inputs are most similar to the
query (TF-IDF cosine over lowercased word tokens; ties go to the earlier demo;
when nothing overlaps, the most common demo answer wins). At a temperature T > 0 it samples a
demo instead, with weights exp(similarity / (0.1 * T)), from a generator seeded by the request
(its messages and its ``seed``): the same request answers the same, another seed may not. Output
fields the chosen demo lacks get a filler (``reasoning``: "Closest example: ..."; others:
:mod:`.fallbacks`). With no demos every field gets its fallback.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dspy_mlflow.lm.offline.fallbacks import FALLBACK_STR, coerce_for_json, fallback_value, literal_options
from dspy_mlflow.lm.offline.prompt import (
    MARKER_RE,
    Spec,
    is_missing,
    parse_json_object,
    parse_markers,
    parse_system,
    strip_query_suffix,
)
from dspy_mlflow.lm.offline.proposer import propose
from dspy_mlflow.lm.offline.rules import REASONING_FIELDS, decide, parse_rules
from dspy_mlflow.lm.usage import content_text, usage_for

if TYPE_CHECKING:
    from dspy_mlflow.lm.offline.options import OfflineOptions

_WORD_RE = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


SAMPLING_SCALE = 0.1  # similarity units per unit of temperature


def similarities(query: str, demo_inputs: list[str]) -> list[float]:
    """TF-IDF cosine of the query with each demo's inputs."""
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
    out = []
    for d in docs:
        dv = vec(d)
        dn = math.sqrt(sum(v * v for v in dv.values()))
        out.append(sum(qv[w] * dv[w] for w in qv.keys() & dv.keys()) / (qn * dn) if qn and dn else 0.0)
    return out


def nearest(query: str, demo_inputs: list[str], demo_keys: list[str]) -> int:
    """Index of the demo most similar to the query (TF-IDF cosine, deterministic)."""
    best, best_score = -1, 0.0
    for i, score in enumerate(similarities(query, demo_inputs)):
        if score > best_score + 1e-12:
            best, best_score = i, score
    if best >= 0:
        return best
    # nothing overlaps: the most common demo answer, earliest on ties
    counts = Counter(demo_keys)
    top = max(counts.values())
    return next(i for i, k in enumerate(demo_keys) if counts[k] == top)


def sampled(query: str, demo_inputs: list[str], demo_keys: list[str], temperature: float, seed_text: str) -> int:
    """A demo drawn with weights exp(similarity / (0.1 * temperature)), seeded by ``seed_text``."""
    scores = similarities(query, demo_inputs)
    if not any(scores):
        return nearest(query, demo_inputs, demo_keys)
    top = max(scores)
    weights = [math.exp((s - top) / (SAMPLING_SCALE * temperature)) for s in scores]
    rng = random.Random(hashlib.sha256(seed_text.encode("utf-8")).hexdigest())
    return rng.choices(range(len(scores)), weights=weights)[0]


def sampled_option(options: list, seed_text: str) -> Any:
    """With no demos at a temperature > 0: one of a Literal's options, seeded by ``seed_text``."""
    rng = random.Random(hashlib.sha256(seed_text.encode("utf-8")).hexdigest())
    return rng.choice(options)


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


def _input_text(fields_: dict[str, str], spec: Spec) -> str:
    names = [f.name for f in spec.inputs] or list(fields_)
    return "\n".join(str(fields_[n]) for n in names if n in fields_)


def _preview(text: str, n_words: int = 12) -> str:
    words = text.split()
    out = " ".join(words[:n_words])
    return out + (" ..." if len(words) > n_words else "")


def _plain_chat_answer(messages: list[Mapping]) -> str:
    """Non-DSPy prompts: the reply to the most similar earlier user turn, else a fixed answer."""
    turns = [(i, content_text(m.get("content"))) for i, m in enumerate(messages)]
    pairs = []
    for (i, text), m in zip(turns, messages, strict=True):
        if m.get("role") == "user" and i + 1 < len(messages) and messages[i + 1].get("role") == "assistant":
            pairs.append((text, content_text(messages[i + 1].get("content"))))
    last_user = next(
        (t for (_, t), m in zip(reversed(turns), reversed(messages), strict=True) if m.get("role") == "user"),
        "",
    )
    if not pairs:
        return FALLBACK_STR
    idx = nearest(last_user, [p[0] for p in pairs], [p[1] for p in pairs])
    return pairs[idx][1]


def _wants_json(response_format: Any) -> bool:
    if isinstance(response_format, Mapping):
        return response_format.get("type") in ("json_object", "json_schema")
    return response_format is not None  # a pydantic model class / schema object: structured output


def _demos(convo: list[Mapping], query_idx: int, spec: Spec) -> list[tuple[str, dict[str, Any]]]:
    """(input text, outputs) of every user/assistant pair before the query."""
    demos = []
    for i in range(query_idx - 1):
        u, a = convo[i], convo[i + 1]
        if u.get("role") != "user" or a.get("role") != "assistant":
            continue
        a_text = content_text(a.get("content"))
        outs: dict[str, Any] | None = parse_markers(a_text) if MARKER_RE.search(a_text) else None
        if outs is None:
            outs = parse_json_object(a_text)
        if not outs:
            continue
        demos.append((_input_text(parse_markers(content_text(u.get("content"))), spec), outs))
    return demos


def answer(
    messages: list[dict], options: OfflineOptions | None = None, *, response_format: Any = None,
    temperature: float | None = None, seed: int | None = None, draw: int = 0,
) -> tuple[str, dict]:
    """Answer a chat prompt. Pure and deterministic for a request and ``draw`` (the how-manieth
    identical sampled call this is, :mod:`.draws`): returns (text, usage)."""
    label = options.fallback_label if options is not None else None
    messages = [m for m in messages if isinstance(m, Mapping)]
    system = "\n".join(
        content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    )
    spec = parse_system(system, _wants_json(response_format))
    if spec is None:
        text = _plain_chat_answer(messages)
        return text, usage_for(messages, text)

    convo = [m for m in messages if m.get("role") in ("user", "assistant")]
    query_idx = max((i for i, m in enumerate(convo) if m.get("role") == "user"), default=-1)
    query_fields = (
        parse_markers(strip_query_suffix(content_text(convo[query_idx].get("content"))))
        if query_idx >= 0
        else {}
    )
    proposed = propose(spec, query_fields)
    if proposed is not None:
        values = [(f.name, proposed[f.name] if f.name in proposed else fallback_value(f, label))
                  for f in spec.outputs]
        text = _render_json(values) if spec.json_mode else _render_chat(values)
        return text, usage_for(messages, text)
    query = _input_text(query_fields, spec)
    demos = _demos(convo, query_idx, spec)
    sampling = bool(temperature and temperature > 0)
    request = json.dumps([messages, seed] + ([draw] if draw else []), sort_keys=True, default=str) if sampling else ""

    values: list[tuple[str, Any]] = []
    if demos:
        keys = [json.dumps(d[1], sort_keys=True, default=str) for d in demos]
        inputs = [d[0] for d in demos]
        if sampling:
            demo_in, demo_out = demos[sampled(query, inputs, keys, float(temperature), request)]
        else:
            demo_in, demo_out = demos[nearest(query, inputs, keys)]
        for f in spec.outputs:
            v = demo_out.get(f.name)
            if v is None or is_missing(v):
                if f.name in REASONING_FIELDS:
                    v = f"Closest example: {_preview(demo_in)}"
                else:
                    v = fallback_value(f, label)
            elif spec.json_mode and isinstance(v, str):
                v = coerce_for_json(v, f, label)
            values.append((f.name, v))
    else:
        for f in spec.outputs:
            if f.name in REASONING_FIELDS:
                values.append((f.name, "No examples to compare with; answering with the default."))
            elif sampling and literal_options(f):
                values.append((f.name, sampled_option(literal_options(f), request)))
            else:
                values.append((f.name, fallback_value(f, label)))

    ruled = decide(parse_rules(instructions_of(system)), query_fields,
                   {f.name: literal_options(f) for f in spec.outputs})
    if ruled:
        values = [(name, _ruled_value(name, v, ruled)) for name, v in values]
    text = _render_json(values) if spec.json_mode else _render_chat(values)
    return text, usage_for(messages, text)


def _ruled_value(name: str, value: Any, ruled: dict) -> Any:
    if name in ruled:
        return ruled[name]
    if name in REASONING_FIELDS:
        return "A written rule decides: " + ", ".join(f"{k} is {v}" for k, v in ruled.items()) + "."
    return value


def instructions_of(system: str) -> str:
    """The signature's instructions in a DSPy system message (all of it for other layouts)."""
    _, found, rest = system.partition("your objective is:")
    return rest if found else system
