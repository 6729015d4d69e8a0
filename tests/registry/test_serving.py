"""`mlflow models serve -m models:/NAME@production --env-manager local` answers over HTTP with the
offline model: the pickled program carries a ProviderRestore callback that re-registers the
`offline` LiteLLM provider in the serving process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.registry.conftest import _kill_group, job

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.usefixtures("offline_lm")]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def test_models_serve_answers_with_the_production_program(store, model_name, examples, tmp_path):
    from dspy_mlflow.registry import promote

    _, program, _ = job(model_name, examples, optimizer="labeled_few_shot", k=4, pickle_model=True)
    promote(model_name, "1")
    # a test review the 4-shot program labels "negative" (the no-demo fallback would say "positive")
    example = next(e for e in examples["test"] if e.sentiment == "negative" and program(text=e.text).sentiment == "negative")

    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{model_name}@production",
         "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "--workers", "1"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping"
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        answer = _post(f"{base}/invocations", {"dataframe_records": [{"text": example.text}]})
        assert answer == {"predictions": {"sentiment": "negative"}}, answer
        other = next(e for e in examples["test"] if e.sentiment == "positive" and program(text=e.text).sentiment == "positive")
        assert _post(f"{base}/invocations", {"dataframe_records": [{"text": other.text}]})["predictions"] == {
            "sentiment": "positive"
        }
        # a batch of records in one request: each answered, in order
        batch = _post(f"{base}/invocations", {"dataframe_records": [{"text": example.text}, {"text": other.text},
                                                                     {"text": example.text}]})
        assert batch == {"predictions": [{"sentiment": "negative"}, {"sentiment": "positive"},
                                         {"sentiment": "negative"}]}, batch
    finally:
        _kill_group(proc)
        log.close()
