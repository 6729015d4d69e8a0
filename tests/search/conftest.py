"""Fixtures for the search tests: configs composed like the CLI does, jobs run in-process
(real offline model, sqlite MLflow store and Optuna storage in tmp_path) or as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parents[2]
FAST = ["project.split.limit=60", "eval.progress=false", "eval.num_threads=2", "tracking.log_model=false",
        "registry.register=false", "tracking.autolog=false"]


def compose(overrides: list[str]) -> dict:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from dspy_mlflow.config.paths import conf_dir
    from dspy_mlflow.config.schema import register_schemas

    register_schemas()
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        return OmegaConf.to_container(hydra_compose("config", overrides), resolve=True)  # type: ignore[return-value]


@pytest.fixture
def run_job(tmp_path):
    """Run one job in this process; returns (JobResult, cfg)."""
    from dspy_mlflow.job.run import run

    def _run(overrides: list[str], name: str = "job"):
        cfg = compose([*FAST, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *overrides])
        return run(cfg, output_dir=tmp_path / name), cfg

    return _run


def cli_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def popen(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    out = open(log, "w")  # noqa: SIM115 - closed by the OS when the child exits
    return subprocess.Popen([sys.executable, "-m", "dspy_mlflow", *args], cwd=cwd, env=cli_env(),
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def complete_trials(storage_url: str, study_name: str | None = None) -> list:
    import optuna
    from optuna.trial import TrialState

    from dspy_mlflow.search.storage import make_storage

    storage = make_storage(storage_url)
    names = [study_name] if study_name else [s.study_name for s in optuna.get_all_study_summaries(storage)]
    out = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        out += study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return out
