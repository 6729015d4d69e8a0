"""The register step: the logged program becomes a version of the registry; ``program.init_from``
names the version it starts from."""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException

from dspy_mlflow import names
from dspy_mlflow.errors import ConfigError, RegistryError, one_line
from dspy_mlflow.project.loader import signature_hash
from dspy_mlflow.registry.prompts import PredictorPrompt, register_prompts
from dspy_mlflow.registry.register import register_program, resolve_parent
from dspy_mlflow.steps.context import JobContext
from dspy_mlflow.tracking import store


def resolve_init_from(conf: dict, project_name: str) -> str | None:
    """program.init_from -> "models:/NAME/VERSION", or a one-line ConfigError."""
    init_from = (conf.get("program") or {}).get("init_from")
    if not init_from:
        return None
    name = (conf.get("registry") or {}).get("name") or project_name
    try:
        version = resolve_parent(str(init_from), name)
    except RegistryError as exc:
        raise ConfigError("program.init_from", init_from, f"a registered program version ({exc})") from exc
    return f"models:/{version.name}/{version.version}"


def predictor_prompts(program) -> list[PredictorPrompt]:
    """Each named predictor of a DSPy program: its instruction, fields and demos."""
    out = []
    for name, predictor in program.named_predictors():
        sig = predictor.signature
        demos = [dict(d.items()) if hasattr(d, "items") else dict(d) for d in predictor.demos or []]
        out.append(PredictorPrompt(name, sig.instructions, list(sig.input_fields), list(sig.output_fields), demos))
    return out


def register(ctx: JobContext, info, program) -> None:
    registry = ctx.conf["registry"]
    if info is None or not registry.get("register"):
        return
    resolved = {**ctx.conf, "optimizer": {**ctx.conf["optimizer"], "name": ctx.resolved_optimizer,
                                          **ctx.chosen_hyperparameters}}
    version = register_program(
        run_id=ctx.run_id, model_uri=info.model_uri,
        name=registry.get("name") or ctx.project.name, cfg=resolved, metrics=dict(ctx.metrics),
        signature_hash=signature_hash(ctx.project.signature), parent=ctx.parent,
    )
    ctx.model_version = str(version.version)
    mlflow.set_tag(names.MODEL_VERSION, f"{version.name}/{version.version}")
    try:
        register_prompts(store.client(), version.name, str(version.version), ctx.run_id, predictor_prompts(program))
    except MlflowException as exc:  # the program's version stands without them
        line = f"prompts not registered in the Prompt Registry: {one_line(exc)}"
        print(line)
        mlflow.set_tag(names.WARNING, line[:5000])
