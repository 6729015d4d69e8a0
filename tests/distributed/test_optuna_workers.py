"""Three Optuna workers started at the same moment on a fresh PostgreSQL database, tracked by a
real `mlflow server`: no schema race, exactly n_trials COMPLETE, no repeated parameter set, one
MLflow run for the study holding every worker's trials."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow import MlflowClient

pytestmark = [pytest.mark.server, pytest.mark.slow]

N_TRIALS = 6


def test_three_workers_on_a_fresh_postgres_share_one_study_and_one_study_run(postgres, mlflow_server, tmp_path):
    storage = postgres.createdb("optuna")  # empty: the workers race to create Optuna's schema
    args = ["optimizer=labeled_few_shot", "search=optuna", "search.sampler=random", f"search.n_trials={N_TRIALS}",
            f"search.storage={storage}", "search.heartbeat_s=2", "search.grace_s=6",
            "tracking.rerun=true",  # a worker starting after another's job FINISHED must not skip as identical
            "tracking=server", f"tracking.uri={mlflow_server.uri}", "project.split.limit=60",
            "eval.progress=false", "eval.num_threads=1", "tracking.log_model=false", "registry.register=false",
            "tracking.autolog=false", "model.cache=false", "model.provider_options.latency_ms=150"]
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MLFLOW_")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    procs, logs = [], []
    for i in range(3):
        cwd = tmp_path / f"w{i}"
        cwd.mkdir()
        logs.append(open(cwd / "log.txt", "w+"))  # noqa: SIM115 - closed below
        procs.append(subprocess.Popen([sys.executable, "-m", "dspy_mlflow", *args], cwd=cwd, stdout=logs[-1],
                                      stderr=subprocess.STDOUT, env={**env, "DSPY_CACHEDIR": str(cwd / "cache")}))
    try:
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    texts = []
    for log in logs:
        log.seek(0)
        texts.append(log.read())
        log.close()
    assert codes == [0, 0, 0], "\n----\n".join(t[-2500:] for t in texts)
    assert not any("CommandError" in t or "Traceback" in t for t in texts)

    import optuna
    from optuna.trial import TrialState

    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == N_TRIALS
    assert len({tuple(sorted(t.params.items())) for t in complete}) == N_TRIALS  # no repeated parameter set
    workers = {t.user_attrs["worker"] for t in complete}
    assert len(workers) >= 2, workers

    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name("dspy_mlflow")
    study_runs = client.search_runs([exp.experiment_id], "tags.`dspy_mlflow.study_run` = 'true'")
    assert len(study_runs) == 1
    (study_run,) = study_runs
    assert study.user_attrs["mlflow_run_id"] == study_run.info.run_id
    assert study_run.info.status == "FINISHED"
    trials = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{study_run.info.run_id}'")
    assert sorted(int(r.data.tags["dspy_mlflow.trial"]) for r in trials if r.info.status == "FINISHED") == \
        sorted(t.number for t in complete)
    jobs = client.search_runs([exp.experiment_id], "tags.`dspy_mlflow.study_run_id` != ''")
    # every worker that ran a trial points its job run at the study run (one that found all trials taken may not)
    assert len(jobs) >= len(workers) and {j.data.tags["dspy_mlflow.study_run_id"] for j in jobs} == {
        study_run.info.run_id}
    # the schema and the study were created once: PostgreSQL logged no duplicate key in Optuna's database
    # (the MLflow server's database has its own: MLflow's trace export inserts, catches the race and retries)
    assert postgres.errors("duplicate key", "already exists", database="optuna") == []
    assert postgres.errors("ERROR:", database="optuna") == [], "no failed statement in Optuna's database"
