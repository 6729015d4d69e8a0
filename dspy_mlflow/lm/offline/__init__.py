"""The offline model: a deterministic stand-in, NOT a real language model.

``model=offline`` lets the whole pipeline (DSPy -> LiteLLM -> provider -> usage
and cost accounting -> MLflow) run anywhere, without a network, an API key or
a GPU. It is an in-context nearest-neighbour learner:

* it parses the DSPy-formatted prompt (ChatAdapter ``[[ ## field ## ]]``
  markers or JSONAdapter JSON objects): the system message lists the input and
  output fields with their types, few-shot demos arrive as user/assistant
  message pairs and the query is the last user message (:mod:`.prompt`);
* it answers with the outputs of the demo whose inputs are most similar to the
  query (TF-IDF cosine over lowercased word tokens; ties go to the earlier
  demo; when nothing overlaps, the most common demo answer wins) (:mod:`.learner`);
  at a temperature above 0 it samples a demo by similarity instead, seeded by the
  request and its ``seed``, so the same request still answers the same;
* output fields the chosen demo lacks get a filler (``reasoning``: "Closest
  example: ..."; other fields: the type fallback below);
* with no demos it gives a fixed answer that still parses for every output
  type: Literal -> first option (or ``fallback_label``), int -> 0,
  float -> 0.0, bool -> False, list -> [], dict -> {}, str -> "unknown"
  (:mod:`.fallbacks`).

So few-shot optimizers change its score for real (more and more relevant
demos -> better nearest neighbours), while instruction-only optimizers get
useless but well-formed answers. It reports deterministic token usage
(regex tokens ``\\w+|[^\\w\\s]``, :mod:`.usage`), and has configurable latency
and deterministic fault injection of several kinds (:mod:`.options`,
:mod:`.faults`): rate limits with Retry-After, 500/502/503, hangs, connection
resets, answers without usage and garbled bodies.

It is registered as the LiteLLM custom provider ``offline`` by :func:`setup`
(:mod:`.provider`) and is reachable as ``dspy.LM("offline/<anything>")``.
:mod:`dspy_mlflow.lm.offline.server` serves the same model over an
OpenAI-compatible HTTP API on loopback, with the faults on the wire.

This package imports neither litellm nor dspy at import time;
``OfflineLLM`` (a ``litellm.CustomLLM`` subclass) is built on first access.
"""

from __future__ import annotations

from typing import Any

from dspy_mlflow.lm.faults import FAULT_KINDS, Fault, FaultInjector
from dspy_mlflow.lm.offline.fallbacks import FALLBACK_STR
from dspy_mlflow.lm.offline.learner import answer
from dspy_mlflow.lm.offline.options import OfflineOptionError, OfflineOptions, check_options
from dspy_mlflow.lm.offline.prompt import NOT_SUPPLIED
from dspy_mlflow.lm.offline.provider import (
    PROVIDER,
    check,
    current_options,
    get_handler,
    handler_class,
    setup,
)
from dspy_mlflow.lm.usage import count_tokens, usage_for

__all__ = [
    "FALLBACK_STR",
    "FAULT_KINDS",
    "NOT_SUPPLIED",
    "PROVIDER",
    "Fault",
    "FaultInjector",
    "OfflineLLM",
    "OfflineOptionError",
    "OfflineOptions",
    "answer",
    "check",
    "check_options",
    "count_tokens",
    "current_options",
    "get_handler",
    "setup",
    "usage_for",
]


def __getattr__(name: str) -> Any:
    if name == "OfflineLLM":  # built lazily: it subclasses litellm.CustomLLM

        return handler_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
