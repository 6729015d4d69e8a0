"""Real Hydra multiruns in subprocesses: parent run, children, leaderboard, failures, resume."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import NOT_EVALUATIONS

pytestmark = pytest.mark.slow

FAST = ["project.split.limit=40", "eval.progress=false", "tracking.log_model=false"]


def sweep_runs(workdir):
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    (exp,) = [e for e in client.search_experiments() if e.name == "dspy_mlflow"]
    runs = client.search_runs([exp.experiment_id], NOT_EVALUATIONS)
    parents = [r for r in runs if r.data.tags.get("dspy_mlflow.sweep_parent") == "true"]
    return client, runs, parents


def test_sweep_with_a_failing_job_then_resume(cli, workdir):
    args = ["-m", "model=offline,gpt4o_mini", "optimizer=none,labeled_few_shot", *FAST]
    proc = cli(args, cwd=workdir)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "leaderboard" in proc.stdout
    client, runs, (parent,) = sweep_runs(workdir)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4
    assert {c.data.tags["dspy_mlflow.sweep_id"] for c in children} == {parent.data.tags["dspy_mlflow.sweep_id"]}
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(failed) == 2 and all(c.data.params["model"] == "gpt4o_mini" for c in failed)
    assert all("OPENAI_API_KEY" in c.data.tags["dspy_mlflow.error"] for c in failed)
    assert sum(c.info.status == "FINISHED" for c in children) == 2
    assert parent.info.status == "FAILED" and parent.data.metrics["sweep/failed"] == 2
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.csv", "leaderboard.json"} <= files
    board = pd.read_csv(client.download_artifacts(parent.info.run_id, "leaderboard.csv", str(workdir)))
    assert len(board) == 4 and list(board["status"][:2]) == ["FINISHED", "FINISHED"]
    assert list(board["rank"]) == [1, 2, 3, 4] and board["test/score"].iloc[0] >= board["test/score"].iloc[1]

    # the same command again: finished jobs are skipped, the failed ones run (and fail) again
    again = cli(args, cwd=workdir)
    assert again.returncode == 1
    assert again.stdout.count("skipped: config, data and code identical to FINISHED run") == 2
    _, runs2, parents2 = sweep_runs(workdir)
    assert len(parents2) == 2
    assert len([r for r in runs2 if r.info.status == "FINISHED" and "dspy_mlflow.sweep_parent" not in r.data.tags]) == 2


def test_sweep_job_with_a_bad_param_is_a_failed_run_not_a_missing_one(cli, workdir):
    proc = cli(["-m", "optimizer=labeled_few_shot,bootstrap_few_shot", "++optimizer.k=4", *FAST], cwd=workdir)
    assert proc.returncode == 1
    client, runs, (parent,) = sweep_runs(workdir)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    statuses = sorted((c.data.params["optimizer"], c.info.status) for c in children)
    assert statuses == [("bootstrap_few_shot", "FAILED"), ("labeled_few_shot", "FINISHED")]
    bad = next(c for c in children if c.info.status == "FAILED")
    assert "optimizer.k=4" in bad.data.tags["dspy_mlflow.error"]


def test_joblib_launcher_runs_jobs_in_processes_under_one_parent(cli, workdir):
    proc = cli(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optimizer=none,labeled_few_shot", *FAST],
               cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "is not available" not in proc.stderr, proc.stderr[-3000:]  # the workers hide it too
    client, runs, (parent,) = sweep_runs(workdir)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.data.params["optimizer"] for c in children) == ["labeled_few_shot", "none"]
    assert parent.info.status == "FINISHED" and all(c.info.status == "FINISHED" for c in children)


def test_sweep_hydra_cannot_compose_ends_its_parent_failed_with_the_reason(cli, workdir):
    proc = cli(["-m", "model=offline,gpt5", *FAST], cwd=workdir)
    assert proc.returncode == 1
    line = "model='gpt5' is not allowed: one of claude_sonnet"
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {line}"), proc.stderr
    _, runs, (parent,) = sweep_runs(workdir)
    assert parent.info.status == "FAILED" and parent.data.tags["dspy_mlflow.error"].startswith(line)


def test_list_cost_is_the_same_on_a_warm_and_a_cold_cache(cli, workdir, tmp_path_factory):
    """The same 4-job sweep three times: cold here, warm here (every answer cached), cold elsewhere.
    What each job spends differs; what its work costs at list price does not."""
    args = ["-m", "optimizer=none,labeled_few_shot", "strategy=predict,chain_of_thought", *FAST]
    elsewhere = tmp_path_factory.mktemp("fresh_machine")
    assert cli(args, cwd=workdir).returncode == 0
    assert cli([*args, "tracking.rerun=true"], cwd=workdir).returncode == 0
    assert cli(args, cwd=elsewhere).returncode == 0

    def jobs(where):
        _, runs, _ = sweep_runs(where)
        return [r for r in runs if "model" in r.data.params]

    def key(r):
        return r.data.params["optimizer"], r.data.params["strategy"]

    first_cold, warm = {}, {}
    for r in sorted(jobs(workdir), key=lambda r: r.info.start_time):
        (warm if key(r) in first_cold else first_cold)[key(r)] = r.data.metrics
    other_cold = {key(r): r.data.metrics for r in jobs(elsewhere)}
    assert len(first_cold) == len(warm) == len(other_cold) == 4
    for job, cold in first_cold.items():
        assert warm[job]["lm/calls"] == 0 and warm[job]["cost/total_usd"] == 0, job
        assert cold["cost/total_usd"] > 0
        assert warm[job]["cost/list_usd"] == pytest.approx(cold["cost/list_usd"], rel=0.01), job
        assert other_cold[job]["cost/list_usd"] == pytest.approx(cold["cost/list_usd"], rel=0.01), job


def test_a_sweep_logs_the_evaluation_view_of_its_best_two_jobs_and_view_adds_others(cli, workdir):
    proc = cli(["-m", "optimizer=none,labeled_few_shot,bootstrap_few_shot", *FAST], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, runs, (parent,) = sweep_runs(workdir)
    board = pd.read_csv(client.download_artifacts(parent.info.run_id, "leaderboard.csv", str(workdir)))
    by_id = {r.info.run_id: r for r in runs}
    best, second, third = (by_id[run_id] for run_id in board["run_id"])
    evaluations = client.search_runs([parent.info.experiment_id], "tags.`dspy_mlflow.evaluates` != ''")
    assert sorted(e.data.tags["dspy_mlflow.evaluates"] for e in evaluations) == sorted(
        [best.info.run_id, second.info.run_id])
    assert all(e.data.tags["mlflow.parentRunId"] == e.data.tags["dspy_mlflow.evaluates"] for e in evaluations)
    assert all(e.data.metrics["examples"] == best.data.metrics["data/test"] for e in evaluations)
    assert "dspy_mlflow.evaluation_run" not in third.data.tags
    assert f"evaluation view: the best 2 jobs ({best.info.run_id[:8]}, {second.info.run_id[:8]})" in proc.stdout

    added = cli(["view", third.info.run_id], cwd=workdir)
    assert added.returncode == 0, added.stderr[-2000:]
    assert f"run {third.info.run_id}: evaluation run" in added.stdout and "examples)" in added.stdout
    again = cli(["view", third.info.run_id, "--max-examples", "3"], cwd=workdir)
    assert "had one already" in again.stdout
    assert client.get_run(third.info.run_id).data.tags["dspy_mlflow.evaluation_run"] in added.stdout
    bad = cli(["view", "no-such-run"], cwd=workdir)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
