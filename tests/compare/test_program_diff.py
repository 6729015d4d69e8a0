"""``diff A B`` on real jobs' runs: what changed in the program, and which test examples it changed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import NOT_EVALUATIONS

pytestmark = pytest.mark.slow
FAST = ["project.split.limit=40", "eval.progress=false", "tracking.autolog=false", "tracking.log_model=false"]
REGISTERED = [*FAST[:-1], "tracking.log_model=true"]  # a version needs the logged model


def job_runs(workdir):
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("dspy_mlflow").experiment_id], NOT_EVALUATIONS,
                              order_by=["attributes.start_time ASC"])
    return client, runs


def rows(client, run_id, workdir):
    path = client.download_artifacts(run_id, "raw_outputs.jsonl", str(workdir / run_id))
    return {json.dumps(r["inputs"], sort_keys=True): r for r in map(json.loads, Path(path).read_text().splitlines())}


def test_diff_of_two_versions_shows_demos_and_the_examples_each_wins(cli, workdir):
    assert cli(["optimizer=none", *REGISTERED], cwd=workdir).returncode == 0
    assert cli(["optimizer=labeled_few_shot", "optimizer.k=4", *FAST], cwd=workdir).returncode == 0
    client, (none, labeled) = job_runs(workdir)
    page = workdir / "diff.html"
    proc = cli(["diff", "models:/sentiment/1", labeled.info.run_id, "--html", str(page), "--examples", "100"],
               cwd=workdir)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]
    out = proc.stdout
    assert out.startswith(f"A: sentiment v1 (run {none.info.run_id[:8]})\nB: run {labeled.info.run_id[:8]}\n")
    assert "predictor self\n  instruction: unchanged\n  demos: 4 added, 0 removed, 0 kept" in out
    # the wins and losses are the examples whose scores differ, as the raw outputs say
    a, b = rows(client, none.info.run_id, workdir), rows(client, labeled.info.run_id, workdir)
    wins = sum(b[k]["score"] > a[k]["score"] for k in a)
    losses = sum(b[k]["score"] < a[k]["score"] for k in a)
    m = re.search(r"B wins (\d+), loses (\d+), ties (\d+); diff ([+-][\d.]+) \[", out)
    assert m and (int(m[1]), int(m[2]), int(m[3])) == (wins, losses, len(a) - wins - losses), out
    diff = labeled.data.metrics["test/score"] - none.data.metrics["test/score"]
    assert float(m[4]) == pytest.approx(diff, abs=5e-4)
    assert out.count("\n    inputs ") == wins + losses
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "<script" not in text and "src=" not in text and "href=" not in text
    assert text.count("<tr><td>") == len(a)  # every paired example: wins, losses, ties


def test_a_changed_instruction_is_a_unified_diff(cli, workdir):
    import mlflow

    assert cli(["optimizer=none", *FAST], cwd=workdir).returncode == 0
    client, (run,) = job_runs(workdir)
    state_path = client.download_artifacts(run.info.run_id, "program/program.json", str(workdir / "a"))
    state = json.loads(Path(state_path).read_text())
    state["signature"]["instructions"] += "\nIf the text mentions \"refund\", the sentiment is negative."
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    with mlflow.start_run(experiment_id=run.info.experiment_id) as other:  # the same program, one rule added
        (workdir / "b" / "program").mkdir(parents=True)
        (workdir / "b" / "program" / "program.json").write_text(json.dumps(state))
        mlflow.log_artifact(str(workdir / "b" / "program" / "program.json"), artifact_path="program")
    proc = cli(["diff", run.info.run_id, other.info.run_id], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '    +If the text mentions "refund", the sentiment is negative.' in proc.stdout
    assert f"examples: run {other.info.run_id[:8]} has no raw_outputs.jsonl, so no example comparison" in proc.stdout


def test_a_bad_reference_or_another_signature_is_one_error_line_and_exit_2(cli, workdir):
    assert cli(["optimizer=none", *REGISTERED], cwd=workdir).returncode == 0
    assert cli(["optimizer=none", "project=contact_extraction", *FAST], cwd=workdir).returncode == 0
    client, (sentiment, contacts) = job_runs(workdir)
    for args, message in [
        (["models:/sentiment/1", "models:/sentiment/9"], r"^error: registered model 'sentiment' has no version 9$"),
        (["models:/sentiment/1", "models:/sentiment@production"],
         r"^error: registered model 'sentiment' has no alias 'production'$"),
        (["models:/sentiment/1", "0123abcd"],
         r"^error: reference='0123abcd' is not allowed: a run id, models:/NAME/VERSION or models:/NAME@ALIAS$"),
        ([sentiment.info.run_id, contacts.info.run_id], r"^error: (the programs have different predictors|"
                                                         r"predictor 'self' has different signatures)"),
    ]:
        proc = cli(["diff", *args], cwd=workdir)
        assert proc.returncode == 2 and proc.stdout == "", (args, proc.stdout[-1000:])
        assert len(proc.stderr.splitlines()) == 1 and re.match(message, proc.stderr), proc.stderr


def test_a_changed_output_prefix_is_listed_not_refused():
    """COPRO rewrites the output field's prefix: the same fields with another prefix still compare."""
    from dspy_mlflow.compare.program_diff import diff_predictors

    def state(prefix):
        return {"signature": {"instructions": "Label it.", "fields": [{"prefix": "Text:"}, {"prefix": prefix}]},
                "demos": []}

    (p,) = diff_predictors(state("Sentiment:"), state("Answer:"))
    assert p.prefixes == ["field 2 prefix: 'Sentiment:' -> 'Answer:'"] and p.instruction == []
    assert diff_predictors(state("Sentiment:"), state("Sentiment:"))[0].prefixes == []
