"""`mlflow run` through MLproject: the run MLflow creates is the one the job fills."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import NOT_EVALUATIONS

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def mlflow_run(entry: str, overrides: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/mlflow.db"
    overrides += f" hydra.run.dir={tmp_path}/out hydra.sweep.dir={tmp_path}/multi"
    return subprocess.run([sys.executable, "-m", "mlflow", "run", str(REPO), "-e", entry, "-P",
                           f"overrides={overrides}", "--env-manager", "local"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_mlflow_run_main_and_sweep_entry_points(tmp_path):
    fast = "project.split.limit=40 eval.progress=false tracking.log_model=false"
    proc = mlflow_run("main", f"optimizer=none {fast}", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs(["0"], NOT_EVALUATIONS)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.entryPoint"] == "main"
    assert run.data.params["optimizer"] == "none" and "test/score" in run.data.metrics

    proc = mlflow_run("sweep", f"optimizer=none,labeled_few_shot {fast} tracking.rerun=true", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (parent,) = [r for r in client.search_runs(["0"]) if r.data.tags.get("mlflow.project.entryPoint") == "sweep"]
    children = [r for r in client.search_runs(["0"], NOT_EVALUATIONS) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.data.params["optimizer"] for c in children) == ["labeled_few_shot", "none"]
    assert parent.data.tags["dspy_mlflow.sweep_parent"] == "true"
