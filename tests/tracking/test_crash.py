"""kill -9 halfway through the test split, then the same command: nothing is lost or sent twice.

The job reaches the offline model over HTTP through a logging proxy (slow enough to be
caught mid-split); its heartbeat uploads the partial rows as it goes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from dspy_mlflow.lm.offline import OfflineOptions
from dspy_mlflow.lm.offline.server import serving
from tests.conftest import NOT_EVALUATIONS

from .proxy import Tally, logging_proxy

pytestmark = [pytest.mark.slow, pytest.mark.server]


def job_args(base_url: str) -> list[str]:
    return ["model=openai_compatible", f"model.api_base={base_url}", "model.litellm_model=openai/offline",
            "optimizer=labeled_few_shot", "project.split.limit=80", "eval.num_threads=2", "eval.progress=false",
            "tracking.heartbeat_s=0.5", "tracking.autolog=false", "tracking.log_model=false",
            "registry.register=false"]


def start(args, cwd, out_dir: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.Popen([sys.executable, "-m", "dspy_mlflow", *args, f"hydra.run.dir={out_dir}"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_kill_9_then_the_same_command_resumes(workdir):
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    with serving(options=OfflineOptions(latency_ms=500)) as upstream, logging_proxy(upstream) as proxy:
        args = job_args(proxy.base_url)
        proc = start(args, workdir, "first")
        raw = workdir / "first" / "raw_outputs.jsonl"
        deadline = time.monotonic() + 180
        while not (raw.exists() and raw.read_text().count("\n") >= 8):  # 8 of the 20 test examples
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(1.0)  # a heartbeat or two: the rows so far are uploaded
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        (killed,) = client.search_runs([client.get_experiment_by_name("dspy_mlflow").experiment_id], NOT_EVALUATIONS)
        assert killed.info.status == "RUNNING"  # nobody ended it: the process is gone

        proxy.wait_idle()  # the killed job's in-flight calls still reach the provider: not the new job's
        proxy.tally = Tally()
        again = start(args, workdir, "second")
        out, err = again.communicate(timeout=300)
        assert again.returncode == 0, err[-3000:]
        sent = proxy.tally

    old = client.get_run(killed.info.run_id)
    assert old.info.status == "KILLED"
    assert old.data.tags["dspy_mlflow.error"].startswith("stale run ended KILLED by the next job: its process is gone")
    uploaded = client.download_artifacts(old.info.run_id, "raw_outputs.jsonl", str(workdir))
    partial = [json.loads(line) for line in Path(uploaded).read_text(encoding="utf-8").splitlines()]
    assert 8 <= len(partial) < 20, "the partial rows reached MLflow before the kill"

    (new,) = [r for r in client.search_runs([old.info.experiment_id], NOT_EVALUATIONS) if r.info.run_id != old.info.run_id]
    m = new.data.metrics
    assert new.info.status == "FINISHED" and new.data.tags["dspy_mlflow.resumed_from"] == old.info.run_id
    assert m["eval/resumed_examples"] == len(partial)
    assert f"resuming killed run {old.info.run_id}: {len(partial)} test examples" in out
    rows = [json.loads(line) for line in (workdir / "second" / "raw_outputs.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(20)) and m["eval/errors"] == 0
    assert sum(bool(r.get("resumed")) for r in rows) == len(partial)
    # only the remaining test examples were sent (everything before the test split is in the cache, and so
    # is any answer the killed run got after its last upload)
    cached = sum(r["cache_hits"] for r in rows if not r.get("resumed"))
    assert sent.answered == m["lm/calls"] == 20 - len(partial) - cached
