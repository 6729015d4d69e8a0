"""runs_frame / `runs` (table and CSV) and the `ui` command."""

from __future__ import annotations

import json
import urllib.request

import pandas as pd
import pytest

from dspy_mlflow.errors import ConfigError
from tests.registry.conftest import job

pytestmark = pytest.mark.usefixtures("offline_lm")


def test_runs_frame_and_csv(sqlite_store, model_name, examples, tmp_path, capsys):
    import mlflow

    from dspy_mlflow.cli.runs import main as runs_main
    from dspy_mlflow.report.runs_table import COLUMNS, runs_frame

    exp = f"cmp_{model_name}"
    job(model_name, examples, experiment=exp, sweep_id="sw1")
    job(model_name, examples, experiment=exp, sweep_id="sw1", optimizer="labeled_few_shot", k=4)
    job(model_name, examples, experiment=exp, sweep_id="sw2", strategy="chain_of_thought")
    with mlflow.start_run(run_name="sweep-parent"):  # no `model` param: not a job, left out
        mlflow.set_tag("dspy_mlflow.sweep_id", "sw1")

    frame = runs_frame(exp, tracking_uri=sqlite_store)
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 3
    assert frame["test/score"].is_monotonic_decreasing
    best = frame.iloc[0]
    assert best["optimizer"] == "labeled_few_shot" and best["test/score"] == pytest.approx(0.7)
    assert best["eval/tokens_in"] == 500.0 and best["cost/total_usd"] == pytest.approx(0.005)
    assert best["status"] == "FINISHED" and best["duration_s"] >= 0
    assert best["sweep_id"] == "sw1" and best["start_time"].tzname() == "UTC"
    assert str(frame["eval/tokens_in"].dtype) == "Int64", "counts stay whole numbers"
    sweep = runs_frame(exp, sweep_id="sw1", tracking_uri=sqlite_store)
    assert sorted(sweep["optimizer"]) == ["labeled_few_shot", "none"] and set(sweep["strategy"]) == {"predict"}

    # --limit: the store sorts by test/score and returns the best only
    (top,) = runs_frame(exp, tracking_uri=sqlite_store, limit=1).itertuples()
    assert top.run_id == best["run_id"]
    assert runs_main(["--tracking-uri", sqlite_store, "--experiment", exp, "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "labeled_few_shot" in out and "(the best 2 by test/score; --limit N for more, 0 for all)" in out
    assert runs_main(["--tracking-uri", sqlite_store, "--experiment", exp, "--limit", "-1"]) == 2
    assert capsys.readouterr().err == "error: --limit=-1 is not allowed: a whole number >= 0 (0: all runs)\n"

    csv = tmp_path / "runs.csv"
    assert runs_main(["--tracking-uri", sqlite_store, "--experiment", exp, "--sweep", "sw2", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "chain_of_thought" in out and "labeled_few_shot" not in out and f"wrote 1 run(s) to {csv}" in out
    back = pd.read_csv(csv)
    assert list(back.columns) == list(COLUMNS) and back.loc[0, "strategy"] == "chain_of_thought"

    with pytest.raises(ConfigError, match="experiment='nope_exp' is not allowed: existing experiments:"):
        runs_frame("nope_exp", tracking_uri=sqlite_store)
    assert runs_main(["--tracking-uri", sqlite_store, "--experiment", "nope_exp"]) == 2
    assert capsys.readouterr().err.startswith("error: experiment='nope_exp' is not allowed")


@pytest.mark.server
@pytest.mark.slow
def test_ui_command_serves_the_store_offline(mlflow_server, capsys):
    """The session server was started by `ui` with LITELLM_LOCAL_MODEL_COST_MAP removed from its env."""
    from dspy_mlflow.cli.ui import main as ui_main

    assert mlflow_server.line.startswith("MLflow UI: http://127.0.0.1:")
    with urllib.request.urlopen(mlflow_server.url + "/", timeout=10) as r:
        assert r.status == 200 and b"<html" in r.read().lower()
    req = urllib.request.Request(
        mlflow_server.url + "/api/2.0/mlflow/experiments/search",
        data=json.dumps({"max_results": 5}).encode(), headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert "experiments" in json.loads(r.read())
    # a store that already is a server is just printed
    assert ui_main(["--tracking-uri", mlflow_server.url]) == 0
    assert capsys.readouterr().out.startswith(f"MLflow UI: {mlflow_server.url}")
