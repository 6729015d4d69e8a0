"""Each predictor's optimized instruction in MLflow's Prompt Registry, beside the program's version.

Registering version V of NAME registers, per predictor P, a version of the prompt ``NAME.P``: a chat
template whose system message is P's instruction, whose demos are user/assistant turns, and whose
last user message holds the input fields as ``{{field}}`` variables. The prompt version is tagged
with the model version and the source run and linked to the run; the model version is tagged
``prompt.P`` = ``prompts:/NAME.P/N``. Promotion and rollback move the prompts' ``production``
alias with the model's, so ``prompts:/NAME.P@production`` is the production program's instruction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from dspy_mlflow import names

_URI_PREFIX = "prompts:/"


@dataclass
class PredictorPrompt:
    predictor: str
    instructions: str
    input_fields: list[str]
    output_fields: list[str]
    demos: list[Mapping[str, Any]] = field(default_factory=list)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _turn(demo: Mapping[str, Any], keys: Sequence[str]) -> str:
    return "\n".join(f"{k}: {_text(demo[k])}" for k in keys if k in demo)


def template_of(p: PredictorPrompt) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": p.instructions}]
    for demo in p.demos:
        messages += [{"role": "user", "content": _turn(demo, p.input_fields)},
                     {"role": "assistant", "content": _turn(demo, p.output_fields)}]
    messages.append({"role": "user", "content": "\n".join(f"{k}: {{{{{k}}}}}" for k in p.input_fields)})
    return messages


def prompt_name(model: str, predictor: str) -> str:
    return f"{model}.{predictor}"


def _ensure_prompt(c: MlflowClient, name: str) -> None:
    """Create the prompt before MLflow's register_prompt would: two jobs registering a project's first
    prompt at once would otherwise both insert it and one fail (RESOURCE_ALREADY_EXISTS)."""
    if c.get_prompt(name) is not None:
        return
    try:
        c.create_prompt(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def register_prompts(c: MlflowClient, model: str, version: str, run_id: str,
                     prompts: Sequence[PredictorPrompt]) -> dict[str, str]:
    """Register each predictor's prompt; tag the model version with their URIs. Predictor -> URI."""
    uris = {}
    for p in prompts:
        _ensure_prompt(c, prompt_name(model, p.predictor))
        pv = c.register_prompt(prompt_name(model, p.predictor), template_of(p),
                               commit_message=f"{model} v{version}: {len(p.demos)} demos",
                               tags={names.PROMPT_MODEL_VERSION: f"{model}/{version}",
                                     names.VERSION_SOURCE_RUN: run_id, names.PROMPT_PREDICTOR: p.predictor})
        c.link_prompt_version_to_run(run_id, pv)
        c.set_model_version_tag(model, version, names.VERSION_PROMPT_PREFIX + p.predictor, pv.uri)
        uris[p.predictor] = pv.uri
    return uris


def prompts_of(tags: Mapping[str, str]) -> dict[str, str]:
    """Predictor -> prompt URI, from a model version's tags."""
    prefix = names.VERSION_PROMPT_PREFIX
    return {k[len(prefix):]: v for k, v in sorted(tags.items()) if k.startswith(prefix) and v.startswith(_URI_PREFIX)}


def move_alias(c: MlflowClient, tags: Mapping[str, str], alias: str = names.PRODUCTION) -> list[str]:
    """Point ``alias`` of each prompt a model version names at that version's prompt version."""
    moved = []
    for uri in prompts_of(tags).values():
        name, _, number = uri[len(_URI_PREFIX):].rpartition("/")
        c.set_prompt_alias(name, alias, int(number))
        moved.append(uri)
    return moved
