"""Cost maths, price resolution, and the per-phase / per-example ledger."""

from __future__ import annotations

import threading

import pytest

from dspy_mlflow.errors import BudgetExceeded
from dspy_mlflow.lm.ledger import Call, Ledger
from dspy_mlflow.lm.pricing import Price, resolve_price


def test_price_cost_is_per_million_tokens():
    assert Price(2.5, 10.0, "config").cost(1_000_000, 0) == pytest.approx(2.5)
    assert Price(2.5, 10.0, "config").cost(200, 50) == pytest.approx((200 * 2.5 + 50 * 10.0) / 1e6)


def test_configured_price_wins_over_litellm():
    price = resolve_price({"litellm_model": "openai/gpt-4o", "pricing": {"input_per_1m": 1.0, "output_per_1m": 2.0}})
    assert (price.input_per_1m, price.output_per_1m, price.source) == (1.0, 2.0, "config")


def test_null_pricing_comes_from_litellm_price_map():
    import litellm

    price = resolve_price({"litellm_model": "openai/gpt-4o", "pricing": {"input_per_1m": None, "output_per_1m": None}})
    assert price.source == "litellm"
    assert price.input_per_1m == pytest.approx(litellm.model_cost["gpt-4o"]["input_cost_per_token"] * 1e6)
    assert price.output_per_1m == pytest.approx(litellm.model_cost["gpt-4o"]["output_cost_per_token"] * 1e6)


def test_half_configured_price_takes_the_other_half_from_litellm():
    price = resolve_price({"litellm_model": "openai/gpt-4o-mini", "pricing": {"input_per_1m": 0.0, "output_per_1m": None}})
    assert price.input_per_1m == 0.0 and price.output_per_1m > 0 and price.source == "config+litellm"


def test_unknown_model_costs_zero_and_says_so():
    price = resolve_price({"litellm_model": "offline/nn", "pricing": {}})
    assert (price.input_per_1m, price.output_per_1m, price.source) == (0.0, 0.0, "unknown")


def test_ledger_splits_phases_and_prices_cache_hits_at_list_only():
    ledger = Ledger(price=Price(1.0, 2.0, "config"))
    with ledger.in_phase("compile"):
        ledger.record(Call(100, 10))
    with ledger.in_phase("eval"):
        ledger.record(Call(40, 4, cache_hit=True))  # the usage the stored response carried
        ledger.record(Call(50, 5, estimated=True, retries=2))
        ledger.record(Call(error=True, retries=1))
    compile_, eval_ = ledger.phases["compile"], ledger.phases["eval"]
    assert (compile_.tokens_in, compile_.tokens_out, compile_.calls) == (100, 10, 1)
    assert (eval_.tokens_in, eval_.calls, eval_.cache_hits, eval_.errors) == (50, 1, 1, 1)
    assert (eval_.retries, eval_.estimated) == (3, 1)
    assert eval_.cost_usd == pytest.approx((50 * 1.0 + 5 * 2.0) / 1e6)
    assert (eval_.list_tokens_in, eval_.list_tokens_out) == (90, 9)
    assert eval_.list_cost_usd == pytest.approx((90 * 1.0 + 9 * 2.0) / 1e6)
    assert ledger.total.cost_usd == pytest.approx((150 * 1.0 + 15 * 2.0) / 1e6)
    assert ledger.total.list_cost_usd == pytest.approx((190 * 1.0 + 19 * 2.0) / 1e6)


def test_example_scope_is_per_thread():
    ledger = Ledger(price=Price(1.0, 1.0, "config"))
    seen = {}

    def worker(name, tokens):
        with ledger.example() as usage:
            ledger.record(Call(tokens, 0))
        seen[name] = usage.tokens_in

    threads = [threading.Thread(target=worker, args=(f"t{i}", 10 * (i + 1))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"t0": 10, "t1": 20, "t2": 30, "t3": 40}
    assert ledger.total.tokens_in == 100


def test_budget_check_raises_once_spent():
    ledger = Ledger(price=Price(1e6, 0.0, "config"), max_cost_usd=2.5)
    ledger.record(Call(2, 0))
    ledger.check_budget()  # 2.0 <= 2.5
    ledger.record(Call(1, 0))
    with pytest.raises(BudgetExceeded, match=r"budget.max_cost_usd=2.5 exceeded: spent \$3"):
        ledger.check_budget()
