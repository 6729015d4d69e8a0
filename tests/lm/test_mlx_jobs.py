"""MLX through whole jobs: a two-model multirun (mlx_tiny and offline) and
model=openai_compatible pointed at mlx_lm.server, checked in MLflow."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from dspy_mlflow.job.run import run
from tests.conftest import EVERY_OPTIMIZER, NOT_EVALUATIONS

pytestmark = [pytest.mark.mlx, pytest.mark.slow]

FAST = ["project.split.limit=24", "eval.progress=false", "tracking.log_model=false", "optimizer=none"]


def runs(workdir):
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    return client.search_runs([client.get_experiment_by_name("dspy_mlflow").experiment_id], NOT_EVALUATIONS)


def test_multirun_over_mlx_tiny_and_offline(cli, workdir, mlx_tiny_path):
    proc = cli(["-m", "model=mlx_tiny,offline", *FAST], cwd=workdir,
               env={"DSPY_MLFLOW_MLX_TINY": str(mlx_tiny_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    children = {r.data.params["model"]: r for r in runs(workdir) if "mlflow.parentRunId" in r.data.tags}
    assert set(children) == {"mlx_tiny", "offline"}
    mlx = children["mlx_tiny"]
    assert mlx.info.status == "FINISHED"
    # noise from random weights: every test example fails to parse, counted, nothing crashes
    assert mlx.data.metrics["eval/errors"] == mlx.data.metrics["data/test"]
    assert mlx.data.metrics["eval/tokens_in"] > 0 and mlx.data.metrics["cost/total_usd"] == 0.0
    assert mlx.data.tags["dspy_mlflow.hw.backend"] in ("cpu", "metal")
    assert children["offline"].data.metrics["eval/errors"] == 0


def test_mlx_tiny_as_the_readme_shows_it_finishes_with_parse_errors_counted(cli, workdir, mlx_tiny_path):
    """`python -m dspy_mlflow model=mlx_tiny` (bootstrap_few_shot): noise never bootstraps a trace (the
    compile keeps labeled demos only), and every test example is a counted parse error, not a crash."""
    proc = cli(["model=mlx_tiny", "project.split.limit=16", "eval.progress=false", "tracking.log_model=false"],
               cwd=workdir, env={"DSPY_MLFLOW_MLX_TINY": str(mlx_tiny_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs(workdir)
    m = run.data.metrics
    assert run.info.status == "FINISHED" and m["eval/parse_errors"] == m["data/test"] == m["eval/errors"]
    assert m["eval/lost"] == 0


def test_openai_compatible_entry_against_mlx_lm_server(cli, workdir, mlx_server):
    proc = cli(["model=openai_compatible", f"model.api_base={mlx_server}/v1", "model.max_tokens=24",
                "model.num_retries=0", *FAST], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs(workdir)
    m = run.data.metrics
    assert run.info.status == "FINISHED" and run.data.params["model"] == "openai_compatible"
    assert m["eval/tokens_in"] > 0 and m["eval/tokens_out"] > 0  # usage came back over HTTP
    assert m["cost/total_usd"] == 0.0  # self-hosted: free unless priced


@pytest.mark.parametrize(("optimizer", "budget"), EVERY_OPTIMIZER.items(), ids=list(EVERY_OPTIMIZER))
def test_every_optimizer_finishes_on_mlx_tiny(compose_cfg, workdir, mlx_tiny_path, monkeypatch, optimizer, budget):
    """Random weights answer noise: every optimizer still runs its loop (proposals included) and ends
    FINISHED, with the noise counted as errors rather than raised."""
    monkeypatch.setenv("DSPY_MLFLOW_MLX_TINY", str(mlx_tiny_path))
    cfg = OmegaConf.to_container(compose_cfg(
        f"tracking.uri=sqlite:///{workdir}/mlflow.db", "model=mlx_tiny", f"optimizer={optimizer}", *budget,
        "model.max_tokens=8", "project.split.limit=12", "eval.progress=false", "tracking.autolog=false", "tracking.log_model=false",
        "registry.register=false"), resolve=True)
    result = run(cfg, output_dir=workdir / "out")
    r = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(result.run_id)
    m, warning = r.data.metrics, r.data.tags.get("dspy_mlflow.warning", "")
    assert result.status == "FINISHED" and m["lm/calls"] > 0 and m["eval/errors"] == m["data/test"]
    assert not warning or warning.startswith(f"optimizer={optimizer} changed nothing"), warning
