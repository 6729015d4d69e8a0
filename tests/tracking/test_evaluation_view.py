"""The test evaluation in MLflow's GenAI evaluation view: traces, assessments, and the UI itself.

The UI test runs a real ``mlflow server`` on loopback and Debian's headless Chromium on it; it
looks at two jobs of a sweep compared example by example, as a user would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from dspy_mlflow.tracking.evaluation import (
    EVALUATES_TAG,
    EVALUATION_RUN_TAG,
    log_evaluation,
    log_test_evaluation,
)


def rows(n: int, wrong_every: int) -> list[dict]:
    """A job's test rows in completion order (not by index); every ``wrong_every``-th answer wrong."""
    out = []
    for i in reversed(range(n)):
        right = i % wrong_every != 0
        out.append({"split": "test", "index": i, "inputs": {"question": f"What is {i} plus {i}?"},
                    "gold": {"answer": str(2 * i)}, "prediction": {"answer": str(2 * i if right else i)},
                    "score": 1.0 if right else 0.0, "latency_ms": 1.0, "error": None, "error_kind": None})
    return out


def job_run(name: str, parent: str | None = None) -> str:
    tags = {"mlflow.parentRunId": parent} if parent else {}
    with mlflow.start_run(run_name=name, tags=tags) as run:
        mlflow.log_param("model", "offline")
    return run.info.run_id


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("evalview")
    return uri


def test_each_example_is_a_trace_with_inputs_outputs_expectation_and_score(store):
    job = job_run("job-a")
    logged = log_evaluation(rows(5, wrong_every=3), run_id=job)
    assert logged.examples == 5
    client = MlflowClient()
    evaluation = client.get_run(logged.run_id)
    assert evaluation.data.tags["mlflow.runType"] == "genai_evaluate"
    assert evaluation.data.tags[EVALUATES_TAG] == job == evaluation.data.tags["mlflow.parentRunId"]  # nested under it
    assert client.get_run(job).data.tags[EVALUATION_RUN_TAG] == logged.run_id
    assert "model" not in evaluation.data.params  # not a job run for `runs` and the leaderboard
    assert evaluation.info.status == "FINISHED"
    assert evaluation.data.metrics == {"score/mean": pytest.approx(3 / 5), "examples": 5}
    traces = mlflow.search_traces(locations=[evaluation.info.experiment_id], run_id=logged.run_id,
                                  return_type="list", order_by=["timestamp_ms DESC"])
    assert [t.data.spans[0].inputs["question"] for t in traces] == [f"What is {i} plus {i}?" for i in range(5)]
    first = traces[0]  # index 0: the newest, so the view lists it first
    assert first.data.spans[0].outputs == {"answer": "0"}  # objects, not JSON strings
    assessments = {a.name: a for a in first.info.assessments}
    assert assessments["expected_response"].expectation.value == {"answer": "0"}
    assert assessments["score"].feedback.value == 0.0
    assert first.info.trace_metadata["mlflow.sourceRun"] == logged.run_id


def test_traces_go_to_the_jobs_experiment_whatever_experiment_is_active(store):
    job = job_run("job-a")
    mlflow.set_experiment("another")
    logged = log_evaluation(rows(2, wrong_every=2), run_id=job)
    experiment = MlflowClient().get_run(job).info.experiment_id
    traces = mlflow.search_traces(locations=[experiment], run_id=logged.run_id, return_type="list")
    assert len(traces) == 2


def test_a_sweep_jobs_evaluation_nests_under_the_job_and_the_cap_keeps_the_first_examples(store):
    with mlflow.start_run(run_name="sweep") as sweep:
        pass
    job = job_run("job-a", parent=sweep.info.run_id)
    logged = log_evaluation(rows(8, wrong_every=2), run_id=job, max_examples=3)
    assert logged.examples == 3
    evaluation = MlflowClient().get_run(logged.run_id)
    assert evaluation.data.tags["mlflow.parentRunId"] == job  # the sweep parent's children are its jobs
    traces = mlflow.search_traces(run_id=logged.run_id, return_type="list")
    assert sorted(t.data.spans[0].attributes["dspy_mlflow.index"] for t in traces) == [0, 1, 2]


def test_the_job_call_reads_the_tracking_config(store):
    job = job_run("job-a")
    assert log_test_evaluation(rows(4, 2), {"evaluation_view": False}, run_id=job).run_id is None
    assert log_test_evaluation(rows(4, 2), {"evaluation_max_examples": 2}, run_id=job).examples == 2
    assert log_test_evaluation(rows(4, 2), {"evaluation_max_examples": None}, run_id=job).examples == 4
    assert log_test_evaluation([], {}, run_id=job).run_id is None


def test_raw_outputs_table_reads_index_inputs_gold_prediction_score_error_first(store, tmp_path):
    from dspy_mlflow.tracking.run_logging import log_raw_outputs

    raw = tmp_path / "raw_outputs.jsonl"
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows(3, 2)))
    with mlflow.start_run() as run:
        log_raw_outputs(raw)
    table = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="raw_outputs_table.json")).read_text())
    assert table["columns"][:6] == ["index", "question", "gold", "prediction", "score", "error"]
    assert [row[0] for row in table["data"]] == [0, 1, 2]
    assert table["data"][1][1:5] == ["What is 1 plus 1?", "2", "2", 1.0]


# -- the UI ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(store, tmp_path):
    """``mlflow server`` on loopback over the test's store; LITELLM_LOCAL_MODEL_COST_MAP keeps it
    from hanging offline (see FACTS.md)."""
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                              start_new_session=True)  # its workers share its process group
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the group this fixture started, by its id
        server.wait(timeout=20)
        log.close()


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("needs Debian's chromium package (apt-get install -y chromium)")
    return found


def open_page(url: str, screenshot: Path, wanted: str, *, timeout_s: float = 40) -> str:
    """Headless Chromium on ``url``, driven over the DevTools protocol: the page's text once it
    shows ``wanted`` (or at the timeout), and a PNG of the window then."""
    return asyncio.run(_devtools_page(url, screenshot, wanted, timeout_s))


async def _devtools_page(url: str, screenshot: Path, wanted: str, timeout_s: float) -> str:
    import aiohttp  # a dependency of mlflow and litellm: a websocket client

    profile, log_path = screenshot.parent / "chromium-profile", screenshot.parent / "chromium.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    # port 0: Chromium picks a free port and writes it to DevToolsActivePort (no race for a port)
    browser = subprocess.Popen([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                "--remote-debugging-port=0", "--window-size=2200,1200",
                                f"--user-data-dir={profile}", "about:blank"],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        port = await _devtools_port(browser, profile / "DevToolsActivePort", log_path)
        async with aiohttp.ClientSession() as http:
            pages = await _retry(lambda: http.get(f"http://127.0.0.1:{port}/json/list"))
            socket_url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
            async with http.ws_connect(socket_url, max_msg_size=0) as ws:
                calls = iter(range(1, 10**6))

                async def call(method: str, **params):
                    ident = next(calls)
                    await ws.send_json({"id": ident, "method": method, "params": params})
                    while (reply := await ws.receive_json()).get("id") != ident:
                        pass
                    return reply.get("result", {})

                await call("Page.navigate", url=url)
                deadline, text = time.monotonic() + timeout_s, ""
                while time.monotonic() < deadline:
                    found = await call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''")
                    text = re.sub(r"\s+", " ", found.get("result", {}).get("value") or "")
                    if wanted in text:
                        await asyncio.sleep(1.0)  # let the row's cells finish rendering
                        found = await call("Runtime.evaluate", expression="document.body.innerText")
                        text = re.sub(r"\s+", " ", found["result"]["value"])
                        break
                    await asyncio.sleep(0.5)
                shot = await call("Page.captureScreenshot", format="png")
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                return text
    finally:
        browser.terminate()
        browser.wait(timeout=20)
        log.close()


async def _devtools_port(browser: subprocess.Popen, active_port: Path, log: Path, timeout_s: float = 90) -> int:
    """The DevTools port Chromium chose, once it has written it (a loaded machine can take a while)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if browser.poll() is not None:
            pytest.fail(f"chromium exited with {browser.returncode}: {log.read_text()[-2000:]}")
        lines = active_port.read_text().splitlines() if active_port.exists() else []
        if lines and lines[0].strip().isdigit():
            return int(lines[0])
        await asyncio.sleep(0.2)
    pytest.fail(f"chromium wrote no DevToolsActivePort in {timeout_s} s: {log.read_text()[-2000:]}")


async def _retry(request, attempts: int = 50):
    for attempt in range(attempts):
        try:
            async with request() as response:
                return await response.json()
        except OSError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.server
@pytest.mark.timeout(300)
def test_the_evaluation_view_compares_two_jobs_example_by_example(mlflow_server, tmp_path):
    chromium()
    with mlflow.start_run(run_name="sweep") as sweep:
        pass
    a = log_evaluation(rows(6, wrong_every=3), run_id=job_run("job-a", parent=sweep.info.run_id))
    b = log_evaluation(rows(6, wrong_every=2), run_id=job_run("job-b", parent=sweep.info.run_id))
    experiment = MlflowClient().get_run(a.run_id).info.experiment_id
    url = (f"{mlflow_server}/#/experiments/{experiment}/evaluation-runs"
           f"?selectedRunUuid={a.run_id}&compareToRunUuid={b.run_id}")
    shot = tmp_path / "evaluation_view.png"
    text = open_page(url, shot, wanted="What is 4 plus 4?")
    assert shot.stat().st_size > 10_000
    assert "Comparing" in text and "job-a (test)" in text and "job-b (test)" in text, text[:2000]
    # one row per example, index 0 first: its input, both runs' answers, then both scores (a, then b)
    examples = re.findall(r'\{ ?"question": "What is (\d) plus \d\?" ?\}(.*?)(?=\{ ?"question"|$)', text)
    assert [int(i) for i, _ in examples] == list(range(6)), text[:3000]
    row4 = dict(examples)["4"]
    assert '{"answer": "8"} {"answer": "4"}' in row4  # job-a right, job-b wrong
    assert re.search(r"\b1 0\b", row4), row4  # the score feedback: 1 for job-a, 0 for job-b
