"""A hosted-model entry (gpt4o) pointed at the offline model served over HTTP on loopback.

The request travels DSPy -> LiteLLM/lm15 -> HTTP -> OpenAI-compatible server, is
costed at LiteLLM's gpt-4o prices, and the API key must never reach MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from dspy_mlflow.job.run import run
from dspy_mlflow.lm.offline.rules import parse_rules
from dspy_mlflow.lm.offline.server import serving
from tests.conftest import EVERY_OPTIMIZER, NOT_EVALUATIONS

pytestmark = [pytest.mark.slow, pytest.mark.server]

SECRET = "sk-test-DO-NOT-LEAK-7d1e0c"


def all_files(root: Path):
    return [p for p in root.rglob("*") if p.is_file()]


def test_gpt4o_against_a_local_openai_compatible_server(cli, workdir):
    import litellm

    with serving(api_key=SECRET) as base_url:
        proc = cli(["model=gpt4o", f"model.api_base={base_url}", "optimizer=labeled_few_shot", "optimizer.k=4",
                    "project.split.limit=40", "eval.progress=false", "tracking.autolog=true", "tracking.trace_sampling=1.0"],
                   cwd=workdir, env={"OPENAI_API_KEY": SECRET})
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    (exp,) = [e for e in client.search_experiments() if e.name == "dspy_mlflow"]
    (run,) = client.search_runs([exp.experiment_id], NOT_EVALUATIONS)
    m, params = run.data.metrics, run.data.params
    assert run.info.status == "FINISHED" and m["eval/errors"] == 0 and m["lm/calls"] > 0
    price = litellm.model_cost["gpt-4o"]
    tokens_in = m["eval/tokens_in"] + m["compile/tokens_in"]
    tokens_out = m["eval/tokens_out"] + m["compile/tokens_out"]
    assert tokens_in > 0 and tokens_out > 0
    assert params["pricing.source"] == "litellm"
    assert m["cost/total_usd"] == pytest.approx(
        tokens_in * price["input_cost_per_token"] + tokens_out * price["output_cost_per_token"])

    # the key is nowhere: params, tags, metrics, artifacts, the pickled model, traces
    assert all(SECRET not in f"{k}={v}" for k, v in {**params, **run.data.tags}.items())
    local = Path(client.download_artifacts(run.info.run_id, "", str(workdir / "artifacts")))
    files = all_files(local)
    assert any(f.name == "raw_outputs.jsonl" for f in files)
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    (logged,) = mlflow.search_logged_models(experiment_ids=[exp.experiment_id], output_format="list")
    model_dir = Path(mlflow.artifacts.download_artifacts(logged.model_uri, dst_path=str(workdir / "model")))
    files += all_files(model_dir)
    assert any(f.suffix in (".pkl", ".cloudpickle") or "model" in f.name for f in all_files(model_dir))
    for f in files:
        assert SECRET.encode() not in f.read_bytes(), f
    # nor the store itself, Hydra's output folder or the LM cache: every file the job left behind
    for f in all_files(workdir):
        assert SECRET.encode() not in f.read_bytes(), f
    traces = mlflow.search_traces(locations=[exp.experiment_id], run_id=run.info.run_id, return_type="list")
    assert traces, "autolog traces are linked to the run"
    blob = json.dumps([t.to_dict() for t in traces], default=str)
    assert "gpt-4o" in blob and SECRET not in blob


@pytest.mark.parametrize("optimizer", list(EVERY_OPTIMIZER))
def test_every_optimizer_finishes_on_a_hosted_entry_against_the_offline_server(compose_cfg, workdir, monkeypatch,
                                                                                optimizer):
    """The rules live in the model: over HTTP (a hosted entry, LiteLLM's OpenAI route) every optimizer
    finishes and changes the program; GEPA's reflection writes rules its candidates carry."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    # the offline server answers in milliseconds: the shipped budgets, but GEPA's (800 metric calls)
    budget = ["optimizer.max_metric_calls=200", "optimizer.reflection_minibatch_size=6"] if optimizer == "gepa" else []
    with serving(api_key=SECRET) as base_url:
        cfg = OmegaConf.to_container(compose_cfg(
            f"tracking.uri=sqlite:///{workdir}/mlflow.db", "model=gpt4o", f"model.api_base={base_url}",
            f"optimizer={optimizer}", *budget, "project.split.limit=40", "eval.progress=false",
            "tracking.autolog=false", "tracking.log_model=false", "registry.register=false"), resolve=True)
        result = run(cfg, output_dir=workdir / "out")
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    r = client.get_run(result.run_id)
    assert result.status == "FINISHED" and r.data.metrics["eval/errors"] == 0
    assert "dspy_mlflow.warning" not in r.data.tags, r.data.tags["dspy_mlflow.warning"]
    if optimizer == "gepa":
        path = client.download_artifacts(result.run_id, "compile/candidates.json", str(workdir))
        later = [c["instructions"] for c in json.loads(Path(path).read_text())[1:]]
        assert later and all(parse_rules(text) for c in later for text in c.values()), later
