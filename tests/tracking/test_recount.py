"""An independent recount from the provider's side equals what the run logged.

The offline model is served over HTTP on loopback behind a logging proxy; the job
reaches it as a hosted model (``openai/...`` with ``api_base``), priced like a small
hosted model. Whatever the run says it spent, called, retried and lost, the proxy
counted too: to the call and, where every response carried usage, to the token.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from dspy_mlflow.errors import ProviderError
from dspy_mlflow.job.run import run
from dspy_mlflow.lm.offline import OfflineOptions
from dspy_mlflow.lm.offline.server import serving

from .proxy import Tally, logging_proxy

pytestmark = [pytest.mark.slow, pytest.mark.server]

PRICE_IN, PRICE_OUT = 0.15, 0.60


def hosted_cfg(compose_cfg, workdir, base_url, *overrides):
    cfg = compose_cfg(
        "model=openai_compatible", f"model.api_base={base_url}", "model.litellm_model=openai/offline",
        f"model.pricing.input_per_1m={PRICE_IN}", f"model.pricing.output_per_1m={PRICE_OUT}",
        f"tracking.uri=sqlite:///{workdir}/mlflow.db", f"cache.dir={workdir}/lm_cache",
        "eval.progress=false", "tracking.autolog=false", "registry.register=false",
        "project.split.limit=60", *overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def run_behind_proxy(compose_cfg, workdir, *overrides, options: OfflineOptions | None = None, out="out", proxy=None):
    """One job through a logging proxy (a new one, or ``proxy`` whose tally is reset first)."""
    with contextlib.ExitStack() as stack:
        if proxy is None:
            upstream = stack.enter_context(serving(options=options))
            proxy = stack.enter_context(logging_proxy(upstream))
        proxy.tally = Tally()
        result = run(hosted_cfg(compose_cfg, workdir, proxy.base_url, *overrides), output_dir=workdir / out)
    metrics = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(result.run_id).data.metrics
    return result, metrics, proxy.tally


@pytest.fixture
def proxy():
    """The offline server behind one logging proxy, kept for several jobs (one api_base)."""
    with serving() as upstream, logging_proxy(upstream) as proxy:
        yield proxy


def assert_recount(m: dict, tally, *, exact_tokens: bool = True) -> None:
    assert m["lm/calls"] == tally.answered, (m["lm/calls"], tally)
    assert m["lm/retries"] + m["lm/errors"] == tally.failed, (m["lm/retries"], m["lm/errors"], tally)
    assert m["lm/usage_estimated"] == tally.without_usage
    tokens_in = m["eval/tokens_in"] + m["compile/tokens_in"]
    tokens_out = m["eval/tokens_out"] + m["compile/tokens_out"]
    assert m["cost/total_usd"] == pytest.approx(m["eval/cost_usd"] + m["compile/cost_usd"])
    if exact_tokens:
        assert (tokens_in, tokens_out) == (tally.tokens_in, tally.tokens_out)
        assert m["cost/total_usd"] == pytest.approx(tally.cost(PRICE_IN, PRICE_OUT), rel=1e-9)
    # list price: what was paid plus what the cache answered, never less than what was paid
    assert m["cost/list_usd"] >= m["cost/total_usd"] - 1e-12


CASES = {
    "bootstrap_few_shot": ["optimizer=bootstrap_few_shot"],  # logs the model too: that must call no LM
    "mipro_v2": ["optimizer=mipro_v2", "optimizer.compile.num_trials=3"],
    "best_of_n": ["optimizer=labeled_few_shot", "strategy=best_of_n", "strategy.n=3"],
    "chain_of_thought": ["optimizer=bootstrap_few_shot", "strategy=chain_of_thought"],
    "16_threads": ["optimizer=labeled_few_shot", "eval.num_threads=16"],
    "cache_off": ["optimizer=bootstrap_few_shot", "cache.mode=off"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_provider_recount_equals_the_run(compose_cfg, workdir, case):
    log_model = ["tracking.log_model=true"] if case == "bootstrap_few_shot" else ["tracking.log_model=false"]
    result, m, tally = run_behind_proxy(compose_cfg, workdir, *CASES[case], *log_model)
    assert result.status == "FINISHED"
    assert tally.answered > 0 and m["lm/calls"] > 0
    assert_recount(m, tally)
    if case == "cache_off":
        assert m["eval/cache_hits"] == m["compile/cache_hits"] == 0
        assert m["cost/list_usd"] == pytest.approx(m["cost/total_usd"])


def test_faults_are_recounted_as_retries_and_errors(compose_cfg, workdir):
    """30% of attempts fail, of six kinds: each is a retry or, after the last retry, an error."""
    faults = {"rate_limit": 0.05, "server_error": 0.05, "bad_gateway": 0.05, "unavailable": 0.05, "reset": 0.05,
              "garbled": 0.05}
    options = OfflineOptions(faults=faults, retry_after_s=0, seed=3)
    result, m, tally = run_behind_proxy(compose_cfg, workdir, "optimizer=bootstrap_few_shot", "model.num_retries=3",
                                        "tracking.log_model=false", options=options)
    assert tally.failed > 0.2 * tally.attempts and m["lm/retries"] > 0
    assert_recount(m, tally)


def test_responses_without_usage_are_paid_calls_with_estimated_tokens(compose_cfg, workdir):
    """20% of answers carry no usage: each is still a call, its tokens counted with LiteLLM's counter,
    so the run's cost stays within a cent of what the server really computed (never booked as $0)."""
    options = OfflineOptions(faults={"no_usage": 0.2}, seed=5)
    with serving(options=options) as upstream, logging_proxy(upstream) as proxy:
        result, m, tally = run_behind_proxy(compose_cfg, workdir, "optimizer=bootstrap_few_shot",
                                            "tracking.log_model=false", proxy=proxy)
        true = json.loads(urllib.request.urlopen(upstream.rsplit("/v1", 1)[0] + "/stats").read())["usage"]
    assert tally.without_usage > 0.1 * tally.answered and m["lm/usage_estimated"] == tally.without_usage
    assert_recount(m, tally, exact_tokens=False)
    tokens_in = m["eval/tokens_in"] + m["compile/tokens_in"]
    tokens_out = m["eval/tokens_out"] + m["compile/tokens_out"]
    assert tokens_in > tally.tokens_in and tokens_out > tally.tokens_out  # the estimates were added
    true_cost = (true["prompt_tokens"] * PRICE_IN + true["completion_tokens"] * PRICE_OUT) / 1e6
    assert abs(m["cost/total_usd"] - true_cost) < 0.01
    assert tokens_in == pytest.approx(true["prompt_tokens"], rel=0.1)


def test_a_warm_cache_spends_nothing_and_lists_the_same(compose_cfg, workdir, proxy):
    args = ["optimizer=bootstrap_few_shot", "tracking.log_model=false"]
    _, cold, cold_tally = run_behind_proxy(compose_cfg, workdir, *args, proxy=proxy)
    _, warm, warm_tally = run_behind_proxy(compose_cfg, workdir, *args, "tracking.rerun=true", out="out2", proxy=proxy)
    assert_recount(cold, cold_tally)
    assert warm_tally.attempts == 0, "a warm cache sends nothing"
    assert warm["lm/calls"] == 0 and warm["cost/total_usd"] == 0
    assert warm["eval/cache_hits"] + warm["compile/cache_hits"] == (
        cold["lm/calls"] + cold["eval/cache_hits"] + cold["compile/cache_hits"])
    assert warm["cost/list_usd"] == pytest.approx(cold["cost/list_usd"], rel=1e-9)
    for key in ("eval/list_tokens_in", "eval/list_tokens_out", "compile/list_tokens_in", "compile/list_tokens_out"):
        assert warm[key] == cold[key], key


def test_read_only_cache_answers_but_stores_nothing(compose_cfg, workdir, proxy):
    args = ["optimizer=labeled_few_shot", "tracking.log_model=false", "cache.mode=read_only"]
    _, first, first_tally = run_behind_proxy(compose_cfg, workdir, *args, proxy=proxy)
    _, again, again_tally = run_behind_proxy(compose_cfg, workdir, *args, "tracking.rerun=true", out="out2",
                                             proxy=proxy)
    assert first_tally.answered > 0 and again_tally.answered == first_tally.answered
    assert_recount(again, again_tally)


def test_another_endpoint_never_scores_from_this_ones_answers(compose_cfg, workdir, proxy):
    """Same config, warm cache, a dead endpoint: every call is made afresh, and the job FAILS."""
    import socket

    args = ["optimizer=labeled_few_shot", "tracking.log_model=false", "model.num_retries=0"]
    first, _, _ = run_behind_proxy(compose_cfg, workdir, *args, proxy=proxy)
    assert first.status == "FINISHED"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # bound, never listening: refused
        cfg = hosted_cfg(compose_cfg, workdir, dead, *args, "tracking.rerun=true")
        with pytest.raises(ProviderError, match="every LM call failed"):
            run(cfg, output_dir=workdir / "dead")
    runs = MlflowClient(f"sqlite:///{workdir}/mlflow.db").search_runs(
        [MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_experiment_by_name("dspy_mlflow").experiment_id],
        order_by=["attributes.start_time DESC"], max_results=1)
    assert runs[0].info.status == "FAILED" and runs[0].data.metrics["eval/cache_hits"] == 0
