"""The skip check asked of the store without MLflow (sqlite query, REST call) agrees with MLflow's search.

Runs are made with MLflow's own client in a real store (sqlite file, and a real server on loopback).
"""

from __future__ import annotations

import math
import subprocess
import sys
import uuid

from mlflow import MlflowClient

from dspy_mlflow.tracking.finished import find_finished, lookup


def _run(client, experiment_id, hashes, status="FINISHED", score=0.5):
    run = client.create_run(experiment_id, tags={f"dspy_mlflow.{k}_hash": v for k, v in hashes.items()})
    client.log_batch(run.info.run_id, params=[], metrics=[])
    client.log_metric(run.info.run_id, "test/score", score)
    client.log_metric(run.info.run_id, "test/nan", math.nan)
    client.log_param(run.info.run_id, "optimizer.resolved", "labeled_few_shot")
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_lookup_agrees_with_mlflow_search(store):
    client = MlflowClient(store)
    name = f"lookup-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    hashes = {"config": uuid.uuid4().hex[:16], "data": "d1", "code": "c1"}
    assert lookup(store, hashes, experiment=name) is None  # nothing yet

    _run(client, experiment_id, hashes, status="FAILED")
    _run(client, experiment_id, {**hashes, "data": "d2"})  # same config, other data
    assert lookup(store, hashes, experiment=name) is None
    assert find_finished(experiment_id, hashes)[0] is None

    older = _run(client, experiment_id, hashes, score=0.25)
    newer = _run(client, experiment_id, hashes, score=0.75)
    found = lookup(store, hashes, experiment=name)
    assert found.run_id == newer == find_finished(experiment_id, hashes)[0].info.run_id
    assert found.metrics["test/score"] == 0.75 and math.isnan(found.metrics["test/nan"])
    assert found.optimizer == "labeled_few_shot"
    assert lookup(store, hashes, experiment=name, experiment_id=experiment_id).run_id == newer
    assert lookup(store, hashes, experiment="another") is None

    client.delete_run(newer)  # a deleted run is not one to skip to
    assert lookup(store, hashes, experiment=name).run_id == older == find_finished(experiment_id, hashes)[0].info.run_id


def test_a_stale_running_run_sends_the_job_down_the_path_that_ends_it(store):
    """A skip asked of the store directly must not leave a crashed run RUNNING: with a stale one in
    the experiment the lookup answers None, the job's full path ends it KILLED, and then skips."""
    import json
    import time

    from dspy_mlflow.tracking.heartbeat import TAG as HEARTBEAT

    client = MlflowClient(store)
    name = f"stale-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    hashes = {"config": uuid.uuid4().hex[:16], "data": "d", "code": "c"}
    done = _run(client, experiment_id, hashes)
    live = client.create_run(experiment_id).info.run_id  # a job running now in another process
    client.set_tag(live, HEARTBEAT, json.dumps({"host": "elsewhere", "pid": 1, "time": time.time(), "interval_s": 5}))
    assert lookup(store, hashes, experiment=name).run_id == done
    dead = client.create_run(experiment_id).info.run_id  # a job that stopped beating a minute ago
    client.set_tag(dead, HEARTBEAT, json.dumps({"host": "elsewhere", "pid": 1, "time": time.time() - 60,
                                                "interval_s": 5}))
    assert lookup(store, hashes, experiment=name) is None
    from dspy_mlflow.tracking.heartbeat import end_stale_runs

    assert [run_id for run_id, _ in end_stale_runs(client, [experiment_id])] == [dead]  # what the full path does
    assert client.get_run(dead).info.status == "KILLED" and client.get_run(live).info.status == "RUNNING"
    assert lookup(store, hashes, experiment=name).run_id == done  # and then the skip is cheap again


def test_lookup_answers_none_when_it_cannot_ask(tmp_path):
    hashes = {"config": "a", "data": "b", "code": "c"}
    assert lookup(f"sqlite:///{tmp_path}/absent.db", hashes, experiment="x") is None  # not created either
    assert not (tmp_path / "absent.db").exists()
    (tmp_path / "junk.db").write_text("not a database")
    assert lookup(f"sqlite:///{tmp_path}/junk.db", hashes, experiment="x") is None
    assert lookup("http://127.0.0.1:9", hashes, experiment="x") is None  # nothing listening
    assert lookup(f"file://{tmp_path}/mlruns", hashes, experiment="x") is None  # not asked without MLflow


def test_a_skipped_job_imports_neither_mlflow_nor_litellm(workdir):
    args = [sys.executable, "-m", "dspy_mlflow", "optimizer=none", "project.split.limit=40", "eval.progress=false",
            "tracking.autolog=false", "tracking.log_model=false", "registry.register=false"]
    first = subprocess.run(args, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    code = ("import runpy, sys; sys.argv = ['dspy_mlflow', *sys.argv[1:]]\n"
            "try: runpy.run_module('dspy_mlflow', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "print('IMPORTED', sorted(m for m in ('mlflow', 'litellm', 'sqlalchemy') if m in sys.modules))")
    again = subprocess.run([sys.executable, "-c", code, *args[3:]], cwd=workdir, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "skipped: config, data and code identical to FINISHED run" in again.stdout
    assert "IMPORTED []" in again.stdout, again.stdout
