"""Studies end to end: real offline model, sqlite MLflow store, Optuna storages in tmp_path."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from .conftest import complete_trials, popen

SEARCH = ["optimizer=labeled_few_shot", "search=optuna", "search.sampler=random", "project.split.limit=80"]


def _client(tmp_path: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


def test_study_finds_a_better_k_and_logs_nested_trial_runs(run_job, tmp_path):
    result, cfg = run_job([*SEARCH, "search.n_trials=5"])
    assert result.status == "FINISHED"
    trials = complete_trials(f"sqlite:///{tmp_path}/optuna.db")  # default: beside mlflow.db
    assert len(trials) == 5
    scores = {t.number: t.values[0] for t in trials}
    best, worst = max(scores.values()), min(scores.values())
    print(f"k and dev score per trial: {[(t.params['k'], t.values[0]) for t in trials]}")
    assert best > worst

    client = _client(tmp_path)
    job = client.get_run(result.run_id)
    # the trials nest under the study's one run (its id in the study's user attrs), not the job's
    study_run = client.get_run(job.data.tags["dspy_mlflow.study_run_id"])
    assert study_run.info.status == "FINISHED" and study_run.data.tags["dspy_mlflow.study_run"] == "true"
    assert study_run.info.run_name == f"study-{job.data.params['search.study']}"
    assert study_run.data.metrics["search/n_trials"] == 5
    children = client.search_runs([job.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{study_run.info.run_id}'")
    assert len(children) == 5
    # a repeated draw is pruned before it runs (no child run): the numbers are the COMPLETE trials'
    assert sorted(int(r.data.tags["dspy_mlflow.trial"]) for r in children) == sorted(t.number for t in trials)
    for child in children:
        n = int(child.data.tags["dspy_mlflow.trial"])
        assert child.info.run_name == f"trial-{n}"
        assert int(child.data.params["optimizer.k"]) == next(t.params["k"] for t in trials if t.number == n)
        assert child.data.metrics["dev/score"] == scores[n]
        assert {"trial/tokens_in", "trial/tokens_out", "trial/cost_usd"} <= set(child.data.metrics)
        assert [a.path for a in client.list_artifacts(child.info.run_id, "program")] == [f"program/{n}.json"]
    m, p = job.data.metrics, job.data.params
    assert m["search/best_dev_score"] == best and m["search/n_trials"] == 5
    assert int(p["search.best.k"]) == next(t.params["k"] for t in trials if t.values[0] == best)
    assert p["search.study"].startswith("sentiment-labeled_few_shot-")
    assert p["search.storage_url"] == f"sqlite:///{tmp_path}/optuna.db"
    arts = {a.path for a in client.list_artifacts(result.run_id, "search")}
    assert {"search/optimization_history.html", "search/param_importances.html",
            "search/optimization_history.png"} <= arts
    assert (tmp_path / "job" / "trials" / f"{max(scores)}.json").exists()
    # the job's program is the chosen trial's: its dev score is that trial's
    assert result.metrics["dev/score"] == pytest.approx(best)

    # same command again (tracking.rerun: the first FINISHED): the study already has 5 trials,
    # nothing is redone and the chosen program comes from the saved trial file
    again, _ = run_job([*SEARCH, "search.n_trials=5", "tracking.rerun=true"], name="again")
    assert len(complete_trials(f"sqlite:///{tmp_path}/optuna.db")) == 5
    rerun = _client(tmp_path).get_run(again.run_id)
    assert rerun.data.tags["dspy_mlflow.search.program_source"] == "file"
    assert rerun.data.metrics["search/trials_this_run"] == 0
    assert again.metrics["dev/score"] == pytest.approx(best)


def test_multi_objective_logs_pareto_front_and_picks_by_rule(run_job, tmp_path):
    result, _ = run_job([*SEARCH, "search.n_trials=4", "search.objectives=[dev_score,cost]", "model.cache=false",
                         "search.select=best_score"])
    assert result.status == "FINISHED"
    trials = complete_trials(f"sqlite:///{tmp_path}/optuna.db")
    assert len(trials) == 4 and all(len(t.values) == 2 for t in trials)
    client = _client(tmp_path)
    arts = {a.path for a in client.list_artifacts(result.run_id, "search")}
    assert {"search/pareto_front.html", "search/pareto_front.png"} <= arts
    top = max(t.values[0] for t in trials)
    chosen = int(client.get_run(result.run_id).data.tags["dspy_mlflow.search.chosen_trial"])
    chosen_trial = next(t for t in trials if t.number == chosen)
    assert chosen_trial.values[0] == top
    assert chosen_trial.values[1] == min(t.values[1] for t in trials if t.values[0] == top)


def _synthetic(objectives, values, *, select, budget):
    """A _Search over an in-memory study with given (score, cost) trials, to test the select rules."""
    import optuna

    from dspy_mlflow.search.study import _Search

    study = optuna.create_study(directions=["maximize", "minimize"][: len(objectives)])
    for v in values:
        trial = study.ask()
        trial.suggest_int("k", 0, 16)
        study.tell(trial, list(v) if len(objectives) > 1 else v[0])
    search = _Search.__new__(_Search)
    search.study, search.objectives, search.name = study, objectives, "synthetic"
    search.search = {"select": select}
    search.job = type("J", (), {"conf": {"budget": {"max_cost_usd": budget}}})()
    return search


@pytest.mark.parametrize(("select", "budget", "expected"), [
    ("best_score_under_budget", None, 2),
    ("best_score_under_budget", 0.02, 1),   # 2 costs too much: best score among those within budget
    ("best_score_under_budget", 0.001, 0),  # nothing within budget: the cheapest
    ("best_score", 0.001, 2),
    ("lowest_cost", None, 0),
])
def test_select_rules_over_the_pareto_front(select, budget, expected):
    values = [(0.5, 0.01), (0.7, 0.02), (0.9, 0.05), (0.6, 0.03)]  # trial 3 is dominated by 1
    search = _synthetic(["dev_score", "cost"], values, select=select, budget=budget)
    assert search.choose().number == expected


def _wait_for(predicate, timeout: float, proc=None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"timed out; log:\n{log.read_text()[-3000:] if log else ''}")


def _count(url: str) -> int:
    try:
        return len(complete_trials(url))
    except Exception:  # storage or study not created yet
        return 0


def test_killed_study_resumes_to_exactly_n_trials(tmp_path):
    storage = f"sqlite:///{tmp_path}/study.db"
    args = [*SEARCH, "search.n_trials=4", f"search.storage={storage}", "project.split.limit=60",
            "eval.progress=false", "eval.num_threads=1", "tracking.log_model=false", "registry.register=false",
            "tracking.autolog=false", "model.cache=false", "model.provider_options.latency_ms=100",
            "search.heartbeat_s=1", "search.grace_s=3"]  # the killed worker's trial is stale 3 s after its last beat
    log1 = tmp_path / "first.log"
    first = popen(args, tmp_path, log1)
    try:
        _wait_for(lambda: _count(storage) >= 2, 120, first, log1)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    killed_at = _count(storage)
    assert 2 <= killed_at < 4, log1.read_text()[-2000:]
    log2 = tmp_path / "second.log"
    second = popen(args, tmp_path, log2)
    assert second.wait(180) == 0, log2.read_text()[-3000:]
    trials = complete_trials(storage)
    assert len(trials) == 4
    assert len({t.number for t in trials}) == 4
    text = log2.read_text()
    assert f"{killed_at}/4 trials complete" in text
    assert text.count("search: trial ") - text.count("marked FAIL") == 4 - killed_at


def test_two_processes_share_a_journal_study(tmp_path):
    journal = tmp_path / "shared" / "study.log"
    storage = f"journal://{journal}"
    procs, logs = [], []
    for i in range(2):
        (tmp_path / f"w{i}").mkdir()
        logs.append(tmp_path / f"w{i}.log")
        args = [*SEARCH, "search.n_trials=6", f"search.storage={storage}", "project.split.limit=60",
                "eval.progress=false", "eval.num_threads=1", "tracking.log_model=false", "registry.register=false",
                # 300 ms per call: one worker alone needs ~30 s, far longer than the other's start-up
                "tracking.autolog=false", "model.cache=false", "model.provider_options.latency_ms=300",
                f"tracking.uri=sqlite:///{tmp_path}/w{i}/mlflow.db"]
        procs.append(popen(args, tmp_path / f"w{i}", logs[-1]))
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(240) == 0, log.read_text()[-3000:]
    trials = complete_trials(storage)
    assert len(trials) == 6
    workers = {t.user_attrs["worker"] for t in trials}
    print(f"trials per worker: {[(w, sum(t.user_attrs['worker'] == w for t in trials)) for w in workers]}")
    assert len(workers) == 2, "both processes should have run trials"


def test_multirun_over_two_models_makes_two_studies(tmp_path):
    model_dir = tmp_path / "conf" / "model"
    model_dir.mkdir(parents=True)
    from dspy_mlflow.config.paths import conf_dir

    text = (Path(conf_dir()) / "model" / "offline.yaml").read_text().replace("name: offline", "name: offline_b")
    (model_dir / "offline_b.yaml").write_text(text)
    log = tmp_path / "multirun.log"
    proc = popen(["-m", "model=offline,offline_b", *SEARCH, "search.n_trials=2", "project.split.limit=60",
                  "eval.progress=false", "tracking.log_model=false", "registry.register=false",
                  "tracking.autolog=false"], tmp_path, log)
    assert proc.wait(240) == 0, log.read_text()[-3000:]
    import optuna

    from dspy_mlflow.search.storage import make_storage

    storage = f"sqlite:///{tmp_path}/optuna.db"
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(make_storage(storage)))
    assert len(names) == 2, log.read_text()[-3000:]
    assert len(complete_trials(storage)) == 4


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_dead_workers_trial_is_failed_by_optunas_heartbeat_and_queued_again(kind, tmp_path):
    """Optuna's own heartbeat (RDB natively, the journal file through HeartbeatJournalStorage):
    a RUNNING trial without a beat for grace_s is failed by fail_stale_trials and its params are
    queued again by RetryFailedTrialCallback."""
    import optuna
    from optuna.trial import TrialState

    from dspy_mlflow.search.storage import open_study

    url = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else f"journal://{tmp_path}/s.log"
    seen = []
    storage, study = open_study(url, "s", ["maximize"], heartbeat_s=1, grace_s=2,
                                on_stale=lambda study, trial: seen.append(trial.number))
    dead = study.ask({"k": optuna.distributions.IntDistribution(1, 4)})
    storage.record_heartbeat(dead._trial_id)  # a worker that beat once, then died
    never = study.ask({"k": optuna.distributions.IntDistribution(1, 4)})  # killed before its first beat
    alive = study.ask({"k": optuna.distributions.IntDistribution(1, 4)})
    time.sleep(3.5)  # the database's clock decides, to the second
    storage.record_heartbeat(alive._trial_id)  # still beating
    optuna.storages.fail_stale_trials(study)
    states = {t.number: t.state for t in study.get_trials()}
    assert states[dead.number] == states[never.number] == TrialState.FAIL
    assert states[alive.number] == TrialState.RUNNING
    assert sorted(seen) == [dead.number, never.number]
    queued = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert sorted(t.params["k"] for t in queued) == sorted([dead.params["k"], never.params["k"]])


def test_workers_starting_together_on_a_fresh_storage_share_one_study(tmp_path):
    """The schema and study are created under a lock: 4 processes at once, no crash, one study."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/fresh.db"
    code = ("from dspy_mlflow.search.storage import open_study; import sys;"
            "_, s = open_study(sys.argv[1], 'shared', ['maximize'], heartbeat_s=5, grace_s=10);"
            "print(s._study_id)")
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    assert len({o[0].strip() for o in outs}) == 1


def test_no_two_trials_share_a_parameter_set(run_job, tmp_path):
    """A random sampler over 4 values draws a repeat in 4 trials 91% of the time: each repeat is
    pruned before it costs anything and an unused value is queued, so 4 trials try 4 values."""
    result, _ = run_job([*SEARCH, "search.n_trials=4", "optimizer.search_space.k.low=1",
                         "optimizer.search_space.k.high=4"])
    assert result.status == "FINISHED"
    trials = complete_trials(f"sqlite:///{tmp_path}/optuna.db")
    assert sorted(t.params["k"] for t in trials) == [1, 2, 3, 4]
