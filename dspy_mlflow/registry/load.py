"""Load a registered DSPy program as a runnable module.

The default path rebuilds the program from the project's code and the DSPy JSON state the job
recorded in its run (``config.yaml`` and ``program/program.json``):

    project = load_project(cfg["project"]); program = project.make_program(cfg["strategy"])
    program.load("program.json")

Unpickling the MLflow model (``mlflow.dspy.load_model``) runs code from the file, so it is used
only when the caller allows it: ``load_program(uri, allow_pickle=True)``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING, Any

from dspy_mlflow.errors import DspyMlflowError, ProviderError, RegistryError
from dspy_mlflow.lm.providers import build_lm, check_provider
from dspy_mlflow.project.loader import load_project
from dspy_mlflow.quiet import quiet_environment
from dspy_mlflow.registry import versions as C
from dspy_mlflow.tracking import store
from dspy_mlflow.tracking.run_artifacts import download

if TYPE_CHECKING:
    import dspy
    from mlflow.entities.model_registry import ModelVersion

CONFIG_ARTIFACT = "config.yaml"
STATE_ARTIFACT = "program/program.json"


def _resolve(c, uri: str) -> tuple[ModelVersion | None, str | None, str]:
    """(model version or None, source run id, model URI to unpickle)."""
    uri = str(uri).strip()
    if uri.startswith("models:/m-") and "/" not in uri[len("models:/"):] and "@" not in uri:
        from mlflow.exceptions import MlflowException

        try:
            logged = c.get_logged_model(uri[len("models:/"):])
        except MlflowException:
            raise RegistryError(f"no logged model {uri}") from None
        return None, logged.source_run_id, uri
    mv = C.resolve(c, uri)
    return mv, mv.run_id, C.uri_of(mv)


def _download(c, run_id: str, path: str, dst: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        local = download(c, run_id, path, dst)
    except (MlflowException, OSError):
        return None
    return local if os.path.exists(local) else None


@contextlib.contextmanager
def _pickle_allowed(uri: str):
    import mlflow

    saved_env = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION")
    saved_uris = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
        else:
            os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = saved_env
        mlflow.set_tracking_uri(saved_uris[0])
        mlflow.set_registry_uri(saved_uris[1])


def rebuild_from_state(cfg: dict[str, Any], state_path: str) -> dspy.Module:
    """The project's program for ``cfg`` (resolved job config) with the saved DSPy state loaded."""

    if "project" not in cfg:
        raise RegistryError("the run's config.yaml has no 'project' section: cannot rebuild the program")
    project = load_project(cfg["project"])
    program = project.make_program(cfg.get("strategy") or {"name": "predict"})
    program.load(state_path)
    return program


def load_program(uri: str, *, allow_pickle: bool = False, tracking_uri: str | None = None,
                 attach_lm: bool = True) -> dspy.Module:
    """A runnable DSPy module for ``uri``: models:/NAME@alias, models:/NAME/VERSION,
    models:/NAME/Production or a LoggedModel models:/m-....

    Rebuilt from project code and JSON state by default. With ``allow_pickle=True``, when the source
    run has no JSON state or its project cannot be loaded, the pickled MLflow model is loaded instead (this also applies the
    dspy.settings saved with it, as ``mlflow.dspy.load_model`` does). With ``attach_lm`` (default),
    a rebuilt program gets the LM of the run's model entry (provider registered, key read from its
    ``api_key_env``) when it can be built; otherwise, or with ``attach_lm=False``, the caller
    configures one (``dspy.configure(lm=...)``).
    """
    import yaml

    quiet_environment()  # as the command line: LiteLLM's bundled price map, no fetch when it is imported
    uri_store = store.tracking_uri(tracking_uri)
    c = store.client(uri_store)
    mv, run_id, model_uri = _resolve(c, uri)
    with tempfile.TemporaryDirectory(prefix="dspy_mlflow_load_") as tmp:
        cfg_path = _download(c, run_id, CONFIG_ARTIFACT, tmp) if run_id else None
        state_path = _download(c, run_id, STATE_ARTIFACT, tmp) if run_id else None
        if cfg_path and state_path:
            with open(cfg_path) as f:
                cfg = yaml.safe_load(f) or {}
            try:
                program = rebuild_from_state(cfg, state_path)
                if attach_lm:
                    _attach_lm(program, cfg.get("model") or {})
                return program
            except DspyMlflowError:
                if not allow_pickle:
                    raise
                why = "its project could not be loaded"
        else:
            why = f"source run {run_id} has no {CONFIG_ARTIFACT if not cfg_path else STATE_ARTIFACT}"
    if not allow_pickle:
        raise RegistryError(
            f"{uri}: {why}, so the program can only be unpickled; "
            "pass allow_pickle=True if you trust it (a pickle runs code)"
        )
    import mlflow.dspy

    had_active_model = mlflow.get_active_model_id() is not None
    with _pickle_allowed(uri_store):
        program = mlflow.dspy.load_model(model_uri)
    if not had_active_model:
        # load_model makes the loaded LoggedModel the process's active model, so later
        # log_metrics calls (perhaps against another store) would be attached to it
        mlflow.clear_active_model()
    return program


def _attach_lm(program, model_cfg: dict) -> None:
    """Give the program the LM its run used, when that model can be reached from here."""

    if not model_cfg.get("litellm_model"):
        return
    try:
        deferred = check_provider(model_cfg)
    except ProviderError:
        return  # e.g. no API key here: the caller configures an LM
    # the offline provider registers with LiteLLM (a 2-3 s import) when the program is first called
    program.set_lm(build_lm(model_cfg, register_on_first_call=deferred))
