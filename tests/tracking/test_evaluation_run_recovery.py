"""A job killed with SIGKILL while it writes its evaluation view leaves no run RUNNING: the
evaluation run carries its writer's heartbeat, and the next job ends it KILLED with the reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from mlflow import MlflowClient

from dspy_mlflow import names
from dspy_mlflow.tracking.heartbeat import end_stale_runs

# a real process writing a real store; only its trace writer is slowed, so the kill lands mid-write
WRITER = textwrap.dedent("""
    import sys, time
    import mlflow
    from dspy_mlflow import names
    from dspy_mlflow.tracking import evaluation
    from dspy_mlflow.tracking.heartbeat import beat_value
    mlflow.set_tracking_uri(sys.argv[1])
    client = mlflow.MlflowClient()
    job = client.create_run(client.create_experiment("recovery")).info.run_id
    client.set_tag(job, names.HEARTBEAT, beat_value(10))  # as the job's Heartbeat stamps it
    def slow_write(*args, **kwargs):
        print("writing", flush=True)
        time.sleep(120)
    evaluation.write_traces = slow_write
    rows = [{"split": "test", "index": 0, "inputs": {"text": "a"}, "gold": {"label": "b"},
             "prediction": {"label": "b"}, "score": 1.0}]
    evaluation.log_evaluation(rows, run_id=job)
""")


def _running(client, experiment_ids):
    return client.search_runs(experiment_ids, "attributes.status = 'RUNNING'")


def test_an_evaluation_run_killed_mid_write_is_ended_killed_by_the_next_job(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, uri], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("recovery").experiment_id
    left = _running(client, [experiment])
    assert len(left) == 2 and any(names.EVALUATES in r.data.tags for r in left)  # the job's run and its view's

    ended = dict(end_stale_runs(client, [experiment]))
    assert not _running(client, [experiment])
    evaluation = next(r for r in client.search_runs([experiment]) if names.EVALUATES in r.data.tags)
    assert evaluation.info.status == "KILLED"
    assert "its process is gone" in evaluation.data.tags[names.ERROR]
    assert evaluation.info.run_id in ended


def test_an_evaluation_run_of_an_older_release_without_heartbeat_is_ended_once_its_job_is_not(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("old")
    job = client.create_run(experiment).info.run_id
    client.set_terminated(job, "KILLED")
    view = client.create_run(experiment, tags={names.EVALUATES: job}).info.run_id

    end_stale_runs(client, [experiment])
    run = client.get_run(view)
    assert run.info.status == "KILLED"
    assert f"its job run {job} is no longer running" in run.data.tags[names.ERROR]
