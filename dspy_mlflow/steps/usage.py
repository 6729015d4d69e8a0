"""The ledger's totals as the run's token, cost, cache and call metrics."""

from __future__ import annotations

from dspy_mlflow import names
from dspy_mlflow.compare.intervals import within_example_sd
from dspy_mlflow.lm.ledger import Usage
from dspy_mlflow.steps.context import JobContext


def usage_values(ctx: JobContext, n_test: int) -> dict[str, float]:
    ev = ctx.ledger.phases.get("eval", Usage())
    co = ctx.ledger.phases.get("compile", Usage())
    total = ctx.ledger.total
    values = {
        "eval/tokens_in": ev.tokens_in, "eval/tokens_out": ev.tokens_out,
        "compile/tokens_in": co.tokens_in, "compile/tokens_out": co.tokens_out,
        "eval/cost_usd": ev.cost_usd, "compile/cost_usd": co.cost_usd,
        names.COST_TOTAL: total.cost_usd,
        "eval/list_tokens_in": ev.list_tokens_in, "eval/list_tokens_out": ev.list_tokens_out,
        "compile/list_tokens_in": co.list_tokens_in, "compile/list_tokens_out": co.list_tokens_out,
        "eval/list_cost_usd": ev.list_cost_usd, "compile/list_cost_usd": co.list_cost_usd,
        names.COST_LIST: total.list_cost_usd,
        "eval/cache_hits": ev.cache_hits, "compile/cache_hits": co.cache_hits,
        "lm/calls": total.calls, "lm/errors": total.errors, "lm/retries": total.retries,
        "lm/usage_estimated": total.estimated,
    }
    test_cost = sum(r.get("cost_usd") or 0.0 for r in ctx.raw_rows() if not r.get("resumed"))
    values[names.COST_PER_EXAMPLE] = test_cost / n_test if n_test else 0.0
    return values


def final_values(ctx: JobContext, baseline, dev_result, test_result, n_test: int) -> dict[str, float]:
    """Every metric the job logs at its end, beside the intervals (steps/confidence.py)."""
    return {
        names.TEST_SCORE: test_result.score,
        "eval/duration_s": baseline.duration_s + dev_result.duration_s + test_result.duration_s,
        "eval/latency_p50_ms": test_result.percentile_ms(0.5),
        "eval/latency_p95_ms": test_result.percentile_ms(0.95),
        "eval/errors": test_result.errors, "eval/lost": test_result.lost,
        "eval/parse_errors": test_result.parse_errors, "eval/retried_examples": test_result.retried,
        "eval/resumed_examples": test_result.reused,
        names.TEST_REPEATS: ctx.repeats, names.TEST_WITHIN_SD: within_example_sd(test_result.records),
        **usage_values(ctx, n_test),
    }
