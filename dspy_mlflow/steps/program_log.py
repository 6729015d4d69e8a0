"""The compiled program in its run: ``program/program.json`` (DSPy state) and the pickled program as
MLflow model ``program``; and the program a job starts from."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
from mlflow.models import infer_signature

from dspy_mlflow import names
from dspy_mlflow.registry.load import load_program
from dspy_mlflow.registry.serving import provider_restore
from dspy_mlflow.steps.context import JobContext


def initial_program(ctx: JobContext):
    """The project's program for the strategy, or the registered version ``program.init_from`` names."""
    if not ctx.parent:
        return ctx.project.make_program(ctx.conf["strategy"])
    mlflow.set_tag(names.INIT_FROM, ctx.parent)
    return load_program(ctx.parent, attach_lm=False)  # the job's LM is configured globally


def model_example(ctx: JobContext, test, records: list[dict]) -> tuple[dict, dict] | None:
    """(inputs, outputs) of the first test example, already answered: the logged model's
    signature, so logging the model calls no LM."""
    if not test:
        return None
    outputs = next((r["prediction"] for r in records if r["index"] == 0), None)
    fields = list(ctx.project.signature.output_fields)
    return test[0].inputs().toDict(), outputs or {name: "" for name in fields}


MODEL_STEP = -1  # the program's step as an MLflow model: one no metric of a job is logged at


def log_program(program, workdir: Path, *, log_model: bool, example: tuple[dict, dict] | None,
                model_cfg: dict[str, Any]):
    """program/program.json (DSPy state) and the pickled program as MLflow model ``program``.

    The model's signature comes from ``example`` (inputs, outputs of a test example already answered),
    and no input example is logged: MLflow would call the program (and so the LM) to infer the
    one and validate the other, outside every counted phase.
    """
    state_dir = workdir / names.PROGRAM_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    program.save(str(state_dir / "program.json"))
    mlflow.log_artifact(str(state_dir / "program.json"), artifact_path=names.PROGRAM_DIR)
    if not log_model:
        return None
    # a custom provider (offline, mlx) re-registers itself wherever the pickle is loaded
    with provider_restore(model_cfg), _no_requirement_mismatch_scan():
        signature = infer_signature(*example) if example else None
        # Model.log copies the run's metrics at the model's step to the model by logging them again,
        # each a duplicate row the store rejects and recovers from (an error in PostgreSQL's log);
        # at a step no metric has it copies none, and the job links its final metrics to the model
        return mlflow.dspy.log_model(program, name=names.PROGRAM_MODEL, signature=signature,
                                     pip_requirements=_requirements(), step=MODEL_STEP)


@contextlib.contextmanager
def _no_requirement_mismatch_scan():
    """Skip MLflow's check that the requirements match this environment.

    They are pinned from this very environment (``_requirements``), so the check cannot find a
    mismatch, and its first call scans every installed distribution's file list (~1 s a process).
    """
    from mlflow.utils import environment

    name = "warn_dependency_requirement_mismatches"
    modules = [m for m in (environment, mlflow.pyfunc) if hasattr(m, name)]  # each imported it by name
    with _PATCH_LOCK:  # jobs logging in parallel threads restore the originals in turn
        saved = [getattr(m, name) for m in modules]
        for module in modules:
            setattr(module, name, lambda requirements: None)
        try:
            yield
        finally:
            for module, original in zip(modules, saved, strict=True):
                setattr(module, name, original)


_PATCH_LOCK = threading.Lock()


def _requirements() -> list[str]:
    """Pinned from this environment: skips MLflow's slow requirement inference."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("mlflow", "dspy", "litellm", "dspy-mlflow"):
        with contextlib.suppress(PackageNotFoundError):
            out.append(f"{dist}=={version(dist)}")
    return out
