"""kill -9 at each point of a job around its evaluation view (while it answers the test split, while it
writes the view, after the view), then the same command once: no run is left RUNNING, the killed job's
runs are KILLED with a reason, and the rerun resumes from the killed run's answers.

A real job in a subprocess on a real sqlite store; to kill it at a known point, the subprocess
replaces one function of the package with one that announces itself and waits (the only change).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from mlflow import MlflowClient

from dspy_mlflow import names

pytestmark = pytest.mark.slow

ARGS = ["optimizer=labeled_few_shot", "project.split.limit=40", "eval.num_threads=1", "eval.progress=false",
        "tracking.heartbeat_s=0.5", "tracking.autolog=false", "tracking.log_model=false", "registry.register=false"]

STALLED = textwrap.dedent("""
    import runpy, sys, time
    point = sys.argv[1]

    def stall(*args, **kwargs):
        print("KILL ME", flush=True)
        time.sleep(600)

    if point == "answering the test split":  # after 5 of the 10 test rows are written
        from dspy_mlflow.steps import evaluate
        line, written = evaluate.json_line, []
        def json_line(record):
            written.append(record)
            if len(written) == 6:
                stall()
            return line(record)
        evaluate.json_line = json_line
    elif point == "writing the view":
        from dspy_mlflow.tracking import evaluation
        evaluation.write_traces = stall
    else:  # after the view: logging the program
        from dspy_mlflow.steps import program_log
        program_log.log_program = stall
    sys.argv = ["dspy_mlflow", *sys.argv[2:]]
    runpy.run_module("dspy_mlflow", run_name="__main__")
""")


def _env():
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


@pytest.mark.parametrize("point", ["answering the test split", "writing the view", "after the view"])
def test_kill_9_at_each_point_then_one_rerun_leaves_nothing_running(workdir, point):
    proc = subprocess.Popen([sys.executable, "-c", STALLED, point, *ARGS, "hydra.run.dir=first"], cwd=workdir,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while (line := proc.stdout.readline()) and "KILL ME" not in line:
            assert time.monotonic() < deadline
        assert "KILL ME" in line, f"the job ended before {point}"
        time.sleep(1.5)  # a heartbeat or two: the rows so far are uploaded
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("dspy_mlflow").experiment_id
    assert client.search_runs([experiment], "attributes.status = 'RUNNING'")  # the kill left its runs open

    again = subprocess.run([sys.executable, "-m", "dspy_mlflow", *ARGS, "hydra.run.dir=second"], cwd=workdir,
                           env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]

    assert client.search_runs([experiment], "attributes.status = 'RUNNING'") == []
    runs = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    jobs = [r for r in runs if names.EVALUATES not in r.data.tags]
    killed, rerun = jobs
    assert killed.info.status == "KILLED" and "stale run ended KILLED" in killed.data.tags[names.ERROR]
    views = {r.data.tags[names.EVALUATES]: r for r in runs if names.EVALUATES in r.data.tags}
    if point == "writing the view":
        assert views[killed.info.run_id].info.status == "KILLED"
        assert "stale run ended KILLED" in views[killed.info.run_id].data.tags[names.ERROR]
    elif point == "after the view":
        assert views[killed.info.run_id].info.status == "FINISHED"  # it was whole before the kill
    else:
        assert killed.info.run_id not in views
    assert rerun.info.status == "FINISHED" and rerun.data.tags[names.RESUMED_FROM] == killed.info.run_id
    resumed = rerun.data.metrics["eval/resumed_examples"]
    assert resumed == (5 if point == "answering the test split" else rerun.data.metrics["data/test"])
    assert views[rerun.info.run_id].info.status == "FINISHED"
