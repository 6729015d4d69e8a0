"""``plan`` forecasts a job before it runs, within 25% of what the job then spends; a sweep whose
forecast is over ``budget.sweep_max_cost_usd`` does not start."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from dspy_mlflow.job.run import run
from dspy_mlflow.lm.offline import OfflineOptions
from dspy_mlflow.lm.offline.server import serving
from dspy_mlflow.plan.forecast import forecast_job, job_configs

pytestmark = [pytest.mark.slow, pytest.mark.server]


def overrides(base_url, workdir):
    return ["model=openai_compatible", f"model.api_base={base_url}", "model.litellm_model=openai/offline",
            "model.pricing.input_per_1m=0.15", "model.pricing.output_per_1m=0.60", "project.split.limit=60",
            f"tracking.uri=sqlite:///{workdir}/mlflow.db", "eval.progress=false", "tracking.autolog=false",
            "tracking.log_model=false", "optimizer=bootstrap_few_shot", "cache.mode=off"]


def test_forecast_is_within_a_quarter_of_the_run(workdir):
    with serving(options=OfflineOptions(latency_ms=20)) as url:
        ((label, cfg),) = job_configs(overrides(url, workdir), multirun=False)
        forecast = forecast_job(cfg, label)
        assert forecast.source == "probe"
        result = run(cfg, output_dir=workdir / "out")
        again = forecast_job(cfg, label)  # now a FINISHED run of the same identity exists
    m = result.metrics
    actual_in = m["eval/tokens_in"] + m["compile/tokens_in"]
    actual_out = m["eval/tokens_out"] + m["compile/tokens_out"]
    assert forecast.tokens_in == pytest.approx(actual_in, rel=0.25)
    assert forecast.tokens_out == pytest.approx(actual_out, rel=0.25)
    assert forecast.cost_usd == pytest.approx(m["cost/total_usd"], rel=0.25)
    assert forecast.calls == pytest.approx(m["lm/calls"], rel=0.25)
    assert again.source.startswith("history") and again.cost_usd == pytest.approx(m["cost/list_usd"])


def test_a_sweep_forecast_over_budget_does_not_start(cli, workdir):
    with serving() as url:
        args = ["-m", *overrides(url, workdir)[:-1], "optimizer=none,labeled_few_shot", "budget.sweep_max_cost_usd=0.0001"]
        proc = cli([a for a in args if not a.startswith("tracking.uri")], cwd=workdir)
        plan = cli(["plan", *[a for a in args if not a.startswith("tracking.uri")]], cwd=workdir)
    assert proc.returncode == 1
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "budget.sweep_max_cost_usd=0.0001" in line and "forecast at $" in line
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    assert not client.search_experiments() or not client.search_runs(
        [e.experiment_id for e in client.search_experiments()]), "no parent run, no job run"
    assert plan.returncode == 0 and "optimizer=labeled_few_shot" in plan.stdout and "is over it" in plan.stdout


def test_plan_json_carries_each_jobs_mde_from_the_bound_then_from_its_finished_run(cli, workdir):
    import json

    import numpy as np

    from dspy_mlflow.compare.power import mde

    args = ["optimizer=none", "project.split.limit=60", "eval.progress=false", "tracking.autolog=false",
            "tracking.log_model=false", "registry.register=false"]
    before = cli(["plan", "--json", "--target-diff", "0.1", *args], cwd=workdir)
    assert before.returncode == 0, before.stderr[-2000:]
    (job,) = json.loads(before.stdout)["jobs"]
    assert job["test_examples"] == 15 and job["mde_source"] == "bound"  # 60 examples, a quarter for test
    assert job["mde"] == pytest.approx(mde(0.5, 15)) and 0.3 < job["mde"] < 0.45
    assert job["test_examples_needed"] > 15 and mde(0.5, job["test_examples_needed"]) <= 0.1
    assert cli(args, cwd=workdir).returncode == 0
    after = cli(["plan", "--json", *args], cwd=workdir)
    (job,) = json.loads(after.stdout)["jobs"]
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    (finished,) = client.search_runs([client.get_experiment_by_name("dspy_mlflow").experiment_id],
                                     "tags.`dspy_mlflow.evaluates` IS NULL")
    assert job["mde_source"] == f"history ({finished.info.run_id[:8]})"
    path = client.download_artifacts(finished.info.run_id, "raw_outputs.jsonl", str(workdir))
    scores = [json.loads(line)["score"] for line in Path(path).read_text().splitlines()]
    assert job["mde"] == pytest.approx(mde(float(np.std(scores, ddof=1)), 15))
    table = cli(["plan", "--target-diff", "0.1", *args], cwd=workdir)
    assert f"to detect a difference of 0.1: {examples_needed_text(job)}" in table.stdout, table.stdout


def examples_needed_text(job) -> str:
    from dspy_mlflow.compare.power import examples_needed

    n = examples_needed(0.1, job["sd_diff"])
    return f"{n} test examples (it has 15: {n - 15} more)"
