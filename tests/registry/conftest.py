"""Fixtures for the registry tests: a sqlite store, an `mlflow server` on loopback (started
through our own `ui` command), the offline model, and a helper that records a job-like run
(params, metrics, config.yaml, program/program.json, a LoggedModel) and registers it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parents[2]
MODEL_CFG = {"name": "offline", "litellm_model": "offline/nn", "provider_options": {}}
PROJECT_CFG = {"name": "sentiment", "module": "projects.sentiment"}


@pytest.fixture(scope="session")
def offline_lm():
    import dspy

    from dspy_mlflow.lm import offline

    offline.setup(MODEL_CFG)
    lm = dspy.LM("offline/nn", cache=False)
    dspy.configure(lm=lm)
    return lm


@pytest.fixture(scope="session")
def examples():
    from projects import sentiment

    ex = sentiment.load_examples()
    return {"train": ex[:120], "test": ex[200:220]}


@pytest.fixture(scope="session")
def sqlite_uri(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("sqlite_store")
    return f"sqlite:///{path}/mlflow.db"


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@dataclass
class UiServer:
    url: str
    line: str
    proc: subprocess.Popen


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> UiServer:
    """`python -m dspy_mlflow ui` on a fresh sqlite store: an mlflow server on loopback."""
    root = tmp_path_factory.mktemp("server_store")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)  # the ui command must set it for the child itself
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "dspy_mlflow", "ui", "--port", "0",
           "--tracking-uri", f"sqlite:///{root}/server.db", "--artifacts-destination", str(root / "artifacts"),
           "--timeout", "150"]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 170
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("MLflow UI: ") or not line and proc.poll() is not None:
            break
    if not line.startswith("MLflow UI: "):
        _kill_group(proc)
        pytest.fail(f"ui command did not report an address (exit {proc.poll()}): {line!r}")
    url = line.split()[2]
    # keep draining: the server logs every request to this pipe and would block once it is full
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    yield UiServer(url=url, line=line.strip(), proc=proc)
    _kill_group(proc)


@pytest.fixture(params=["sqlite", pytest.param("server", marks=[pytest.mark.server, pytest.mark.slow])])
def store(request) -> str:
    """A tracking+registry URI, set as the process's MLflow URI for the test."""
    uri = request.getfixturevalue("sqlite_uri") if request.param == "sqlite" else request.getfixturevalue(
        "mlflow_server").url
    with _using_store(uri):
        yield uri


@pytest.fixture
def sqlite_store(sqlite_uri) -> str:
    with _using_store(sqlite_uri):
        yield sqlite_uri


@contextlib.contextmanager
def _using_store(uri: str):
    """Point MLflow's tracking and registry URIs at ``uri``; restore the previous ones after."""
    import mlflow

    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])


@pytest.fixture
def model_name() -> str:
    return f"sentiment_{uuid.uuid4().hex[:8]}"


def score(program, test) -> float:
    from projects import sentiment

    return sum(sentiment.metric(e, program(**e.inputs())) for e in test) / len(test)


def _set_experiment(experiment: str) -> None:
    """On a sqlite store, keep artifacts next to the database (MLflow's default is ./mlruns)."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(experiment) is None:
        root = Path(uri[len("sqlite:///"):]).parent / "artifacts" / experiment
        mlflow.create_experiment(experiment, artifact_location=root.as_uri())
    mlflow.set_experiment(experiment)


def job(
    name: str,
    examples: dict,
    *,
    optimizer: str = "none",
    k: int = 0,
    program=None,
    parent: str | None = None,
    signature_hash: str | None = None,
    pickle_model: bool = False,
    experiment: str = "registry_tests",
    sweep_id: str | None = None,
    strategy: str = "predict",
    state: bool = True,
):
    """What a job does, in small: build/optimize, evaluate, record a run, log the program, register it.
    Returns (ModelVersion, program, test_score)."""
    import dspy
    import mlflow
    import yaml

    from dspy_mlflow.project.loader import signature_hash as sig_hash
    from dspy_mlflow.registry.register import register_program
    from dspy_mlflow.registry.serving import provider_restore
    from projects import sentiment

    strategy_cfg = {"name": strategy}
    program = program if program is not None else sentiment.make_program(strategy_cfg)
    if optimizer != "none":
        program = dspy.LabeledFewShot(k=k).compile(program, trainset=examples["train"])
    test_score = score(program, examples["test"])
    cfg = {"model": MODEL_CFG, "optimizer": {"name": optimizer, "k": k}, "strategy": strategy_cfg,
           "project": PROJECT_CFG}
    mlflow.clear_active_model()  # log_model makes its LoggedModel active for the whole process
    _set_experiment(experiment)
    with mlflow.start_run() as run:
        mlflow.log_params({"model": "offline", "optimizer": optimizer, "strategy": strategy, "project": "sentiment"})
        metrics = {"test/score": test_score, "dev/score": test_score, "cost/total_usd": 0.001 * (k + 1),
                   "eval/tokens_in": 100.0 * (k + 1), "eval/tokens_out": 20.0}
        mlflow.log_metrics(metrics)
        mlflow.set_tag("dspy_mlflow.config_hash", f"cfg{optimizer}{k}")
        if sweep_id:
            mlflow.set_tag("dspy_mlflow.sweep_id", sweep_id)
        mlflow.log_text(yaml.safe_dump(cfg), "config.yaml")
        import tempfile

        if state:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "program.json"
                program.save(str(path))
                mlflow.log_artifact(str(path), "program")
        if pickle_model:
            with provider_restore(MODEL_CFG):
                model_uri = mlflow.dspy.log_model(program, name="program").model_uri
        else:  # a LoggedModel without files: enough for the registry and the JSON load path
            logged = mlflow.initialize_logged_model(name="program", source_run_id=run.info.run_id)
            mlflow.finalize_logged_model(logged.model_id, "READY")
            model_uri = f"models:/{logged.model_id}"
    mv = register_program(
        run_id=run.info.run_id, model_uri=model_uri, name=name, cfg=cfg, metrics=metrics,
        signature_hash=signature_hash or sig_hash(sentiment.signature), parent=parent,
    )
    return mv, program, test_score


def registry_snapshot(uri: str, name: str):
    """Everything a refused command must leave unchanged."""
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    rm = c.get_registered_model(name)
    versions = c.search_model_versions(f"name = '{name}'")
    return (
        dict(rm.aliases), dict(rm.tags),
        sorted((v.version, v.current_stage, tuple(sorted(v.tags.items())), v.description) for v in versions),
    )
