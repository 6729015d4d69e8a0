"""The offline model behind an OpenAI-compatible loopback server (real HTTP, LiteLLM and DSPy)."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Literal

import dspy
import pytest

from dspy_mlflow.lm.offline import OfflineOptions
from dspy_mlflow.lm.offline.server import serving, start_server

pytestmark = pytest.mark.server


class Sentiment(dspy.Signature):
    """Classify the sentiment of a movie review."""

    text: str = dspy.InputField()
    sentiment: Literal["negative", "positive"] = dspy.OutputField()


DEMOS = [
    dspy.Example(text="a wonderful film with great acting", sentiment="positive").with_inputs("text"),
    dspy.Example(text="a terrible film with awful acting", sentiment="negative").with_inputs("text"),
]


def http(url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def base_url():
    with serving() as url:
        yield url


def test_health_models_and_chat_completion_shape(base_url):
    assert http(base_url.rsplit("/v1", 1)[0] + "/health") == (200, {"status": "ok"})
    status, models = http(base_url + "/models")
    assert status == 200 and models["data"][0]["id"]
    status, body = http(
        base_url + "/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi there"}]}
    )
    assert status == 200
    assert body["object"] == "chat.completion" and body["model"] == "m" and body["id"]
    assert body["choices"][0]["message"]["content"] == "unknown"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
    status, err = http(base_url + "/chat/completions", {"model": "m"})
    assert status == 400 and "error" in err


def test_litellm_completion_through_server(base_url):
    import litellm

    resp = litellm.completion(
        model="openai/x",
        api_base=base_url,
        api_key="dummy",
        messages=dspy.ChatAdapter().format(Sentiment, DEMOS, {"text": "awful acting"}),
    )
    assert "negative" in resp.choices[0].message.content
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_dspy_hosted_path_through_server(base_url, adapter):
    lm = dspy.LM("openai/gpt-4o-mini", api_base=base_url, api_key="dummy", cache=False, num_retries=0)
    prog = dspy.Predict(Sentiment)
    prog.demos = DEMOS
    with dspy.context(lm=lm, adapter=adapter):
        assert prog(text="great acting, wonderful").sentiment == "positive"
        assert prog(text="awful, terrible acting").sentiment == "negative"
    usage = lm.history[-1]["usage"]
    assert (
        usage["prompt_tokens"] > 0
        and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    )


def test_api_key_required_when_set():
    with serving(api_key="s3cret") as url:
        status, err = http(url + "/models")
        assert status == 401 and err["error"]["code"] == "invalid_api_key"
        status, _ = http(url + "/models", headers={"Authorization": "Bearer wrong"})
        assert status == 401
        status, _ = http(url + "/models", headers={"Authorization": "Bearer s3cret"})
        assert status == 200
        import litellm

        with pytest.raises(litellm.AuthenticationError):
            litellm.completion(
                model="openai/x",
                api_base=url,
                api_key="nope",
                num_retries=0,
                messages=[{"role": "user", "content": "hi"}],
            )
        ok = litellm.completion(
            model="openai/x", api_base=url, api_key="s3cret", messages=[{"role": "user", "content": "hi"}]
        )
        assert ok.choices[0].message.content == "unknown"


def test_fault_injection_returns_http_errors():
    server, thread = start_server(options=OfflineOptions(fault_rate=1.0, seed=1))
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        codes = set()
        for i in range(12):
            status, err = http(
                url + "/chat/completions", {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}
            )
            assert "injected fault" in err["error"]["message"]
            codes.add(status)
        assert codes == {429, 500}
        lm = dspy.LM("openai/x", api_base=url, api_key="dummy", cache=False, num_retries=0)
        with pytest.raises(Exception, match="injected fault"):
            lm("hello")
        assert server.requests_served == 13
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_fault_rate_half_is_deterministic_per_seed():
    def outcomes(seed):
        with serving(options=OfflineOptions(fault_rate=0.5, seed=seed)) as url:
            return [
                http(
                    url + "/chat/completions",
                    {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]},
                )[0]
                for i in range(16)
            ]

    a, b = outcomes(3), outcomes(3)
    assert a == b and 200 in a and any(code != 200 for code in a)
    assert outcomes(4) != a


def test_dspy_retries_recover_from_server_fault():
    from dspy_mlflow.lm.offline import FaultInjector

    opts = OfflineOptions(fault_rate=0.5, seed=7)
    for i in range(100):  # a prompt whose first attempt fails and second succeeds
        inj, msgs = FaultInjector(), [{"role": "user", "content": f"retry me {i}"}]
        if inj.should_fail(msgs, opts) and not inj.should_fail(msgs, opts):
            break
    server, thread = start_server(options=opts)
    try:
        lm = dspy.LM("openai/x", api_base=server.base_url, api_key="dummy", cache=False, num_retries=2)
        assert lm(msgs[0]["content"]) == ["unknown"]
        assert server.requests_served == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.slow
def test_main_in_subprocess_prints_url_and_answers():
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from dspy_mlflow.cli.serve_offline import main; sys.exit(main(sys.argv[1:]))",
            "--port",
            "0",
            "--latency-ms",
            "5",
            "--api-key",
            "k1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        status, body = http(
            url + "/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": "Bearer k1"},
        )
        assert status == 200 and body["usage"]["total_tokens"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.stderr.read().count("\n") <= 2  # no per-request logging


def test_main_rejects_bad_options(capsys):
    from dspy_mlflow.cli.serve_offline import main

    assert main(["--fault-rate", "2"]) == 2
    assert "fault_rate" in capsys.readouterr().err
