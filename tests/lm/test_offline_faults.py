"""Fault kinds of the offline model: options, deterministic draws, the wire, the provider.

Real components only: a real loopback server, real httpx/urllib/LiteLLM/DSPy clients.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import contextlib
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from dspy_mlflow.cli.serve_offline import build_parser, main, options_from_args
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.lm import offline
from dspy_mlflow.lm.offline import FAULT_KINDS, FaultInjector, OfflineOptions, check_options
from dspy_mlflow.lm.offline.server import start_server

CONF = Path(__file__).resolve().parents[2] / "conf" / "model" / "offline.yaml"
ERROR_STATUS = {"rate_limit": 429, "server_error": 500, "bad_gateway": 502, "unavailable": 503}


def msgs(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def outcomes(opts: OfflineOptions, prompts: list[str], attempts: int = 1) -> list[str | None]:
    inj = FaultInjector()
    out = []
    for p in prompts:
        for _ in range(attempts):
            fault = inj.draw(msgs(p), opts)
            out.append(fault.kind if fault else None)
    return out


@pytest.fixture
def server_with():
    """start_server(options=...) with cleanup: ``server = server_with(faults={...})``."""
    started = []

    def start(**options):
        server, thread = start_server(options=OfflineOptions(**options))
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(5)


_CLIENT = httpx.Client()  # one client: a fresh one per request costs tens of ms (its SSL context)


def post(server, text: str, timeout: float = 5.0) -> httpx.Response:
    body = {"model": "m", "messages": msgs(text)}
    return _CLIENT.post(server.base_url + "/chat/completions", json=body, timeout=timeout)


# ----------------------------------------------------------------------------- options


def test_conf_defaults_are_valid_and_mean_no_faults():
    raw = yaml.safe_load(CONF.read_text())["provider_options"]
    assert set(raw["faults"]) == set(FAULT_KINDS)
    opts = check_options(raw)
    assert opts == OfflineOptions()  # kinds at 0 are the same as absent
    assert (opts.retry_after_s, opts.hang_s, opts.fault_rates()) == (1.0, 30.0, [])


@pytest.mark.parametrize(
    ("options", "key", "allowed"),
    [
        ({"faults": {"no_usage": 1.5}}, "model.provider_options.faults.no_usage", "a rate in [0, 1]"),
        ({"faults": {"no_usag": 0.1}}, "model.provider_options.faults.no_usag", "not a fault kind"),
        ({"faults": {"hang": True}}, "model.provider_options.faults.hang", "a rate in [0, 1]"),
        ({"faults": [0.1]}, "model.provider_options.faults", "a mapping of fault kind to rate"),
        (
            {"faults": {"rate_limit": 0.6, "reset": 0.5}},
            "model.provider_options.faults",
            "must sum to at most 1",
        ),
        ({"fault_rate": 0.5, "faults": {"garbled": 0.6}}, "model.provider_options.faults", "got 1.1"),
        ({"fault_rate": 2}, "model.provider_options.fault_rate", "a rate in [0, 1]"),
        ({"retry_after_s": -1}, "model.provider_options.retry_after_s", "a number >= 0"),
        ({"hang_s": "soon"}, "model.provider_options.hang_s", "a number >= 0"),
        ({"seed": 1.5}, "model.provider_options.seed", "an integer"),
        ({"latencyms": 3}, "model.provider_options.latencyms", "not an offline option"),
    ],
)
def test_check_options_names_key_value_and_allowed(options, key, allowed):
    with pytest.raises(ConfigError) as info:
        check_options(options)
    err = info.value
    assert err.key == key and allowed in err.allowed
    assert isinstance(err, ValueError) and "\n" not in str(err)
    assert str(err).startswith(f"{key}=")


def test_check_options_accepts_full_mix_summing_to_one():
    rates = dict.fromkeys(FAULT_KINDS, 0.1)
    rates["no_usage"] = 0.3
    opts = check_options({"faults": rates, "retry_after_s": 0, "hang_s": 1, "seed": "4"})
    assert sum(r for _, r in opts.fault_rates()) == pytest.approx(1.0)
    assert opts.seed == 4 and opts.retry_after_s == 0.0
    assert check_options(None) == OfflineOptions()
    with pytest.raises(ConfigError, match="a mapping of offline options"):
        check_options(["faults"])


def test_setup_wraps_bad_faults_in_provider_error():
    from dspy_mlflow.errors import ProviderError

    with pytest.raises(ProviderError, match=r"provider_options\.faults\.garbled=2"):
        offline.setup({"provider_options": {"faults": {"garbled": 2}}})
    offline.setup({})


# ----------------------------------------------------------------------------- draws


def test_draws_are_deterministic_per_seed_and_each_retry_is_fresh():
    prompts = [f"q{i}" for i in range(100)]
    mix = {"rate_limit": 0.2, "server_error": 0.1, "reset": 0.1, "no_usage": 0.2}
    a = outcomes(OfflineOptions(faults=mix, seed=1), prompts, attempts=3)
    assert a == outcomes(OfflineOptions(faults=mix, seed=1), prompts, attempts=3)
    assert a != outcomes(OfflineOptions(faults=mix, seed=2), prompts, attempts=3)
    per_prompt = [tuple(a[i : i + 3]) for i in range(0, len(a), 3)]
    assert any(len(set(t)) > 1 for t in per_prompt)  # attempts of one prompt differ


def test_draws_do_not_depend_on_thread_scheduling():
    opts = OfflineOptions(faults={"rate_limit": 0.3, "garbled": 0.3}, seed=5)
    prompts = [f"p{i}" for i in range(200)]
    expected = dict(zip(prompts, outcomes(opts, prompts), strict=True))
    inj, got, lock = FaultInjector(), {}, threading.Lock()

    def work(chunk):
        for p in chunk:
            fault = inj.draw(msgs(p), opts)
            with lock:
                got[p] = fault.kind if fault else None

    threads = [threading.Thread(target=work, args=(prompts[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_per_kind_rates_are_honoured():
    rates = {
        "rate_limit": 0.1, "server_error": 0.05, "bad_gateway": 0.05, "unavailable": 0.05,
        "hang": 0.05, "reset": 0.05, "no_usage": 0.2, "garbled": 0.05,
    }  # fmt: skip
    n = 4000
    counts = Counter(outcomes(OfflineOptions(faults=rates, seed=3), [f"x{i}" for i in range(n)]))
    for kind, rate in rates.items():
        sd = (rate * (1 - rate) / n) ** 0.5
        assert abs(counts[kind] / n - rate) < 4 * sd, (kind, counts[kind])
    assert abs(counts[None] / n - 0.4) < 4 * (0.24 / n) ** 0.5


def test_rates_summing_to_one_fault_every_attempt():
    opts = OfflineOptions(faults={"server_error": 0.5, "no_usage": 0.5})
    assert None not in outcomes(opts, [f"y{i}" for i in range(200)])


def test_legacy_fault_rate_draws_as_before():
    """fault_rate alone gives the same fail/pass sequence as the single-knob injector did."""

    def old_should_fail(seed, rate, text, k):
        key = hashlib.sha256(json.dumps([seed, [["user", text]]]).encode()).hexdigest()
        h = hashlib.sha256(f"{seed}:{key}:{k}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64 < rate

    opts, inj = OfflineOptions(fault_rate=0.3, seed=11), FaultInjector()
    for i in range(100):
        for k in range(2):
            assert inj.should_fail(msgs(f"q{i}"), opts) == old_should_fail(11, 0.3, f"q{i}", k)


# ----------------------------------------------------------------------------- on the wire


@pytest.mark.server
@pytest.mark.parametrize("kind", sorted(ERROR_STATUS))
def test_error_kinds_send_their_status(server_with, kind):
    server = server_with(faults={kind: 1.0}, retry_after_s=2)
    resp = post(server, "hi")
    assert resp.status_code == ERROR_STATUS[kind]
    assert f"injected fault ({kind})" in resp.json()["error"]["message"]
    assert resp.headers.get("Retry-After") == ("2" if kind == "rate_limit" else None)


@pytest.mark.server
def test_retry_after_header_carries_the_configured_seconds(server_with):
    assert post(server_with(faults={"rate_limit": 1.0}), "a").headers["Retry-After"] == "1"  # default
    assert (
        post(server_with(faults={"rate_limit": 1.0}, retry_after_s=0.5), "a").headers["Retry-After"] == "0.5"
    )
    legacy = server_with(fault_rate=1.0)
    sent = {post(legacy, f"q{i}").headers.get("Retry-After") for i in range(12)}
    assert sent == {"0", None}  # the legacy mix: 429 with Retry-After 0, or 500


@pytest.mark.server
def test_reset_is_a_connection_error_for_httpx_and_urllib(server_with):
    server = server_with(faults={"reset": 1.0})
    with pytest.raises(httpx.TransportError):
        post(server, "hi")
    req = urllib.request.Request(
        server.base_url + "/chat/completions",
        data=json.dumps({"model": "m", "messages": msgs("hi")}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises((ConnectionError, urllib.error.URLError)) as info:
        urllib.request.urlopen(req, timeout=5)
    assert not isinstance(info.value, urllib.error.HTTPError)
    assert server.stats.faults["reset"] == 2 and server.stats.answers == []


@pytest.mark.server
def test_hang_outlasts_a_short_client_timeout_then_answers(server_with):
    server = server_with(faults={"hang": 1.0}, hang_s=3.0)  # bounds far apart: a loaded machine is slow
    t0 = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        post(server, "hi", timeout=0.3)
    assert time.perf_counter() - t0 < 2.5
    t0 = time.perf_counter()
    resp = post(server, "hi again", timeout=10)
    assert resp.status_code == 200 and resp.json()["usage"]["total_tokens"] == 3
    assert time.perf_counter() - t0 >= 3.0
    assert server.stats.faults["hang"] == 2


@pytest.mark.server
def test_no_usage_body_is_a_normal_answer_without_usage(server_with):
    server = server_with(faults={"no_usage": 1.0})
    body = post(server, "hello there").json()
    assert "usage" not in body and body["choices"][0]["message"]["content"] == "unknown"
    assert server.stats.answered_no_usage == 1 and server.stats.answered == 0
    assert server.stats.usage == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}


@pytest.mark.server
def test_garbled_body_is_truncated_json_with_correct_framing(server_with):
    server = server_with(faults={"garbled": 1.0})
    resp = post(server, "hello there")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    assert int(resp.headers["Content-Length"]) == len(resp.content) > 0
    assert resp.content.startswith(b'{"id": "chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)
    assert server.stats.answers == [
        {
            "prompt_tokens": 2,
            "completion_tokens": 1,
            "total_tokens": 3,
            "usage_in_body": False,
            "fault": "garbled",
        }
    ]


def observe(server, prompts: list[str]) -> list[object]:
    """What a client sees per prompt: a status code, or the transport error's name."""
    seen: list[object] = []
    for p in prompts:
        try:
            resp = post(server, p)
        except httpx.TransportError as exc:
            seen.append(type(exc).__name__)
            continue
        if resp.status_code == 200:
            try:
                seen.append("no_usage" if "usage" not in resp.json() else 200)
            except json.JSONDecodeError:
                seen.append("garbled")
        else:
            seen.append(resp.status_code)
    return seen


WIRE_MIX = {
    "rate_limit": 0.1, "server_error": 0.05, "bad_gateway": 0.05, "unavailable": 0.05,
    "reset": 0.05, "no_usage": 0.2, "garbled": 0.05,
}  # fmt: skip


@pytest.mark.server
def test_server_outcomes_are_deterministic_per_seed(server_with):
    prompts = [f"q{i}" for i in range(40)]
    a = observe(server_with(faults=WIRE_MIX, seed=1), prompts)
    assert a == observe(server_with(faults=WIRE_MIX, seed=1), prompts)
    assert a != observe(server_with(faults=WIRE_MIX, seed=2), prompts)


@pytest.mark.server
def test_rates_on_the_wire_and_exact_stats_over_400_prompts(server_with):
    server = server_with(faults=WIRE_MIX, seed=9, retry_after_s=0)
    n = 400
    seen = Counter(observe(server, [f"distinct prompt number {i}" for i in range(n)]))
    wire = {"rate_limit": 429, "server_error": 500, "bad_gateway": 502, "unavailable": 503}
    resets = sum(v for k, v in seen.items() if isinstance(k, str) and k.endswith("Error"))
    observed = {**{k: seen[s] for k, s in wire.items()}, "reset": resets,
                "no_usage": seen["no_usage"], "garbled": seen["garbled"]}  # fmt: skip
    for kind, rate in WIRE_MIX.items():
        assert abs(observed[kind] / n - rate) < 4 * (rate * (1 - rate) / n) ** 0.5 + 1e-9, (kind, observed)

    stats = server.stats.snapshot()
    assert stats["requests"] == n and stats["rejected"] == 0
    assert stats["faults"] == {**dict.fromkeys(FAULT_KINDS, 0), **observed}
    assert stats["answered"] == seen[200] and stats["answered_no_usage"] == seen["no_usage"]
    assert len(stats["answers"]) == seen[200] + seen["no_usage"] + seen["garbled"]
    with urllib.request.urlopen(server.base_url.rsplit("/v1", 1)[0] + "/stats", timeout=5) as resp:
        assert json.loads(resp.read()) == stats


@pytest.mark.server
def test_stats_usage_is_the_true_spend(server_with):
    """Bodies with usage add up to the answers the server counted with usage; the rest it still computed."""
    server = server_with(faults={"no_usage": 0.4, "garbled": 0.2}, seed=4)
    reported = Counter()
    for i in range(30):
        resp = post(server, f"count my tokens please {i} " + "word " * i)
        with contextlib.suppress(json.JSONDecodeError):  # the garbled ones
            reported.update(resp.json().get("usage", {}))
    answers = server.stats.answers
    assert len(answers) == 30 and {a["fault"] for a in answers} == {None, "no_usage", "garbled"}
    in_body = Counter()
    for a in answers:
        if a["usage_in_body"]:
            in_body.update({k: a[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")})
    assert reported == in_body
    assert server.stats.usage["total_tokens"] > in_body["total_tokens"]


@pytest.mark.server
def test_stats_count_exactly_under_concurrent_clients(server_with):
    server = server_with(faults={"server_error": 0.3, "no_usage": 0.3}, seed=2)
    with httpx.Client(timeout=5) as client:

        def work(t):
            for i in range(25):
                client.post(
                    server.base_url + "/chat/completions", json={"model": "m", "messages": msgs(f"{t}-{i}")}
                )

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    stats = server.stats.snapshot()
    assert stats["requests"] == 200
    assert stats["answered"] + stats["answered_no_usage"] + stats["faults"]["server_error"] == 200
    assert (
        stats["faults"]["no_usage"] == stats["answered_no_usage"] == len(stats["answers"]) - stats["answered"]
    )


@pytest.mark.server
def test_bad_requests_are_counted_as_rejected(server_with):
    server = server_with()
    assert httpx.post(server.base_url + "/chat/completions", json={"model": "m"}).status_code == 400
    assert server.stats.rejected == 1 and server.stats.requests == 0


# ----------------------------------------------------------------------------- clients over the wire


@pytest.mark.server
def test_litellm_sees_rate_limit_with_retry_after(server_with):
    import litellm

    server = server_with(faults={"rate_limit": 1.0}, retry_after_s=3)
    with pytest.raises(litellm.RateLimitError) as info:
        litellm.completion(
            model="openai/x", api_base=server.base_url, api_key="k", num_retries=0, messages=msgs("hi")
        )
    assert info.value.response.headers["retry-after"] == "3"


@pytest.mark.server
def test_dspy_retries_a_rate_limit_and_the_server_counts_both_attempts(server_with):
    import dspy

    opts = OfflineOptions(faults={"rate_limit": 0.5}, retry_after_s=0, seed=7)
    prompt = next(
        p
        for p in (f"retry {i}" for i in range(200))
        if outcomes(opts, [p], attempts=2) == ["rate_limit", None]
    )
    server = server_with(faults={"rate_limit": 0.5}, retry_after_s=0, seed=7)
    lm = dspy.LM("openai/x", api_base=server.base_url, api_key="k", cache=False, num_retries=1)
    assert lm(prompt) == ["unknown"]
    assert (
        server.stats.requests == 2 and server.stats.faults["rate_limit"] == 1 and server.stats.answered == 1
    )


@pytest.mark.server
def test_dspy_gives_up_on_a_hang_after_its_timeout(server_with):
    import dspy
    from dspy.utils.exceptions import LMError, is_retryable_lm_error

    server = server_with(faults={"hang": 1.0}, hang_s=6.0)
    lm = dspy.LM("openai/x", api_base=server.base_url, api_key="k", cache=False, num_retries=0, timeout=0.3)
    t0 = time.perf_counter()
    with pytest.raises(LMError) as info:
        lm("hi")
    assert time.perf_counter() - t0 < 4.0 and is_retryable_lm_error(info.value)


# ----------------------------------------------------------------------------- in-process provider


@pytest.fixture
def provider():
    """``setup(**provider_options)`` of the registered in-process provider, reset afterwards."""

    def configure(**options):
        offline.setup({"provider_options": options})

    yield configure
    offline.setup({})


PROVIDER_ERRORS = {
    "rate_limit": ("RateLimitError", 429),
    "server_error": ("InternalServerError", 500),
    "bad_gateway": ("BadGatewayError", 502),
    "unavailable": ("ServiceUnavailableError", 503),
    "reset": ("APIConnectionError", None),
    "garbled": ("InternalServerError", 500),
}


@pytest.mark.parametrize("kind", list(PROVIDER_ERRORS))
def test_provider_raises_what_litellm_raises(provider, kind):
    import litellm

    provider(faults={kind: 1.0}, retry_after_s=2)
    name, status = PROVIDER_ERRORS[kind]
    with pytest.raises(getattr(litellm, name)) as info:
        litellm.completion(model="offline/nn", messages=msgs("hi"))
    assert f"injected fault ({kind})" in str(info.value)
    if status is not None:
        assert info.value.status_code == status
    if kind == "rate_limit":
        assert info.value.response.headers["retry-after"] == "2"


def test_provider_hang_times_out_when_the_call_timeout_is_shorter(provider):
    import asyncio

    import litellm

    provider(faults={"hang": 1.0}, hang_s=5.0)
    t0 = time.perf_counter()
    with pytest.raises(litellm.Timeout):
        litellm.completion(model="offline/nn", messages=msgs("hi"), timeout=0.3)
    with pytest.raises(litellm.Timeout):
        asyncio.run(litellm.acompletion(model="offline/nn", messages=msgs("hi"), timeout=0.3))
    assert time.perf_counter() - t0 < 4.5  # two calls that waited out the hang would take 10 s
    provider(faults={"hang": 1.0}, hang_s=0.3)
    t0 = time.perf_counter()
    resp = litellm.completion(model="offline/nn", messages=msgs("hi"), timeout=5)
    assert resp.choices[0].message.content == "unknown" and time.perf_counter() - t0 >= 0.3


def test_provider_no_usage_answers_with_zero_usage(provider):
    import litellm

    provider(faults={"no_usage": 1.0})
    resp = litellm.completion(model="offline/nn", messages=msgs("hello there"))
    assert resp.choices[0].message.content == "unknown"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (0, 0, 0)


def test_dspy_classifies_provider_faults_and_honours_retry_after(provider):
    import dspy
    from dspy.utils.exceptions import (
        LMRateLimitError,
        LMServerError,
        LMTimeoutError,
        LMTransportError,
        is_retryable_lm_error,
    )

    expected = {
        "rate_limit": LMRateLimitError, "server_error": LMServerError, "bad_gateway": LMServerError,
        "unavailable": LMServerError, "reset": LMTransportError, "garbled": LMServerError, "hang": LMTimeoutError,
    }  # fmt: skip
    lm = dspy.LM("offline/nn", cache=False, num_retries=0, timeout=0.3)
    for kind, cls in expected.items():
        provider(faults={kind: 1.0}, retry_after_s=4, hang_s=1)
        with pytest.raises(cls) as info:
            lm("hi")
        assert is_retryable_lm_error(info.value)
        assert info.value.retry_after == (4.0 if kind == "rate_limit" else None)


def test_dspy_retries_recover_from_each_provider_fault(provider):
    import dspy

    lm = dspy.LM("offline/nn", cache=False, num_retries=1)
    waited = {}
    for kind in ("rate_limit", "reset"):
        opts = OfflineOptions(faults={kind: 0.5}, retry_after_s=0, seed=3)
        prompt = next(
            p for p in (f"{kind} {i}" for i in range(200)) if outcomes(opts, [p], 2) == [kind, None]
        )
        provider(faults={kind: 0.5}, retry_after_s=0, seed=3)
        t0 = time.perf_counter()
        assert lm(prompt) == ["unknown"]
        waited[kind] = time.perf_counter() - t0
    assert waited["rate_limit"] < 0.9  # Retry-After: 0 is honoured (DSPy's own backoff would wait 1 s)
    assert waited["reset"] >= 1.0  # no Retry-After: DSPy waits 2**0 s before retrying


# ----------------------------------------------------------------------------- serve-offline flags


def test_cli_fault_flags_build_options():
    args = build_parser().parse_args(
        [
            "--fault",
            "rate_limit=0.1",
            "--fault",
            "no_usage=0.2",
            "--retry-after-s",
            "0",
            "--hang-s",
            "2",
            "--fault-rate",
            "0.1",
        ]
    )
    opts = options_from_args(args)
    assert opts.faults == {"rate_limit": 0.1, "no_usage": 0.2}
    assert (opts.retry_after_s, opts.hang_s, opts.fault_rate) == (0.0, 2.0, 0.1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fault", "no_usage=2"], "serve-offline.faults.no_usage='2' is not allowed: a rate in [0, 1]"),
        (["--fault", "nope=0.1"], "serve-offline.faults.nope='0.1' is not allowed: not a fault kind"),
        (["--fault", "reset=0.6", "--fault-rate", "0.5"], "must sum to at most 1"),
        (["--fault-rate", "2"], "fault_rate"),
    ],
)
def test_cli_rejects_bad_fault_flags(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_rejects_fault_flag_without_rate(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--fault", "no_usage"])
    assert info.value.code == 2 and "expected KIND=RATE" in capsys.readouterr().err
