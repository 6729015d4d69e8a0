"""An 8-job sweep on a real Ray cluster (a head and one more node), tracked by a real
`mlflow server` on PostgreSQL with proxied artifacts; then the extra node is killed mid-sweep."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import NOT_EVALUATIONS

pytestmark = [pytest.mark.server, pytest.mark.slow]

GRID = ["optimizer=none,labeled_few_shot", "strategy=predict,chain_of_thought",
        "project=sentiment,contact_extraction"]
FAST = ["project.split.limit=30", "eval.progress=false", "eval.num_threads=2"]


def sweep(cluster, server, cwd: Path, *args: str, wait: bool = True):
    cwd.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "dspy_mlflow", "-m", "hydra/launcher=ray",
           f"hydra.launcher.address={cluster.address}", "tracking=server", f"tracking.uri={server.uri}", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    return subprocess.run(cmd, cwd=cwd, env=cluster.env, capture_output=True, text=True, timeout=900)


def children_of(client: MlflowClient, parent_id: str):
    parent = client.get_run(parent_id)
    return client.search_runs([parent.info.experiment_id], max_results=100,
                              filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}' and {NOT_EVALUATIONS}")


def parent_ids(client: MlflowClient, experiment: str = "dspy_mlflow") -> list[str]:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`dspy_mlflow.sweep_parent` = 'true'",
                              order_by=["attributes.start_time ASC"])
    return [r.info.run_id for r in runs]


def test_eight_job_sweep_on_two_ray_nodes_with_a_postgres_tracking_server(ray_cluster, mlflow_server, postgres,
                                                                          tmp_path):
    proc = sweep(ray_cluster, mlflow_server, tmp_path / "driver", *GRID, *FAST, "tracking.log_model=true")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(mlflow_server.uri)
    (parent_id,) = parent_ids(client)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/jobs"] == 8
    children = children_of(client, parent_id)
    assert len(children) == 8 and all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags["dspy_mlflow.sweep_id"] for c in children} == {parent.data.tags["dspy_mlflow.sweep_id"]}
    # the leaderboard, and every artifact, come back through the server (nothing on a shared disk)
    board = pd.read_csv(client.download_artifacts(parent_id, "leaderboard.csv", str(tmp_path)))
    assert len(board) == 8 and set(board["status"]) == {"FINISHED"} and board["test/score"].notna().all()
    raw = client.download_artifacts(children[0].info.run_id, "raw_outputs.jsonl", str(tmp_path))
    assert Path(raw).read_text().count("\n") >= 1
    assert any(mlflow_server.artifacts.rglob("raw_outputs.jsonl"))  # stored by the server, uploaded over HTTP
    # both nodes ran jobs (the job records carry the worker's host; on loopback both are this host,
    # so the Ray worker pids of the runs' heartbeats tell the processes apart)
    pids = {c.data.tags["dspy_mlflow.heartbeat"].split('"pid": ')[1].split(",")[0] for c in children}
    assert len(pids) >= 2
    # 8 jobs writing to one PostgreSQL at once: no duplicate key but those MLflow itself makes and
    # catches (an INSERT tried, the conflict handled): its trace export (a trace's spans and its start
    # arriving together) and a registered model's creation when two jobs register a project's first
    # program at the same moment (later jobs look it up first). Model.log copies no metric again:
    # the program is logged at a step no metric has (steps/program_log.py)
    import re

    duplicates = postgres.errors("duplicate key", "already exists", database="mlflow")
    kinds = [m.group(1) if (m := re.search(r'constraint "(\w+)"', d)) else d for d in duplicates]
    assert set(kinds) <= {"trace_info_pk", "registered_model_pk"}, duplicates
    assert kinds.count("registered_model_pk") <= 2, duplicates  # at most the first of each project
    # registry versions 1..4 of each project's program
    for name in ("sentiment", "contact_extraction"):
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        assert versions == [1, 2, 3, 4], (name, versions)


def test_killing_the_extra_node_mid_sweep_reruns_its_jobs_on_the_head(ray_cluster, mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server.uri)
    before = set(parent_ids(client))
    args = ["optimizer=none,labeled_few_shot", "strategy=predict,chain_of_thought", "project=sentiment", *FAST,
            "tracking.log_model=false", "registry.register=false", "tracking.rerun=true",
            "model.provider_options.latency_ms=150", "tracking.heartbeat_s=2"]
    driver = sweep(ray_cluster, mlflow_server, tmp_path / "driver", *args, wait=False)
    try:
        deadline = time.monotonic() + 240
        parent_id = None
        while time.monotonic() < deadline:  # wait until both nodes run a job (1 CPU each)
            new = [p for p in parent_ids(client) if p not in before]
            if new:
                parent_id = new[0]
                running = [c for c in children_of(client, parent_id) if c.info.status == "RUNNING"]
                if len(running) >= 2:
                    break
            assert driver.poll() is None, driver.stdout.read()[-3000:]
            time.sleep(0.5)
        assert parent_id is not None
        assert ray_cluster.kill_extra_node() == 1
        out, _ = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, out[-4000:]
    children = children_of(client, parent_id)
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert len(finished) == 4, [(c.info.status, c.data.tags.get("dspy_mlflow.error")) for c in children]
    assert not [c for c in children if c.info.status == "RUNNING"]
    lost = [c for c in children if c.info.status == "KILLED"]
    assert lost, "the extra node's job was not interrupted"
    assert client.get_run(parent_id).info.status == "FINISHED"
    board = pd.read_csv(io.StringIO(Path(client.download_artifacts(parent_id, "leaderboard.csv",
                                                                   str(tmp_path))).read_text()))
    assert len(board) == 4 and set(board["status"]) == {"FINISHED"}
