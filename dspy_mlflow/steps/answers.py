"""What the evaluations answered: a provider that answered nothing fails the job, lost test examples
beyond ``eval.max_error_rate`` fail the run, and a killed run's answered rows are reused."""

from __future__ import annotations

import mlflow

from dspy_mlflow import names
from dspy_mlflow.errors import LostExamples, ProviderError
from dspy_mlflow.steps.context import JobContext
from dspy_mlflow.tracking.resume import answered_rows


def check_provider_answers(ctx: JobContext, baseline) -> None:
    """Parse errors are counted per example; a provider that answered nothing at all fails the job."""
    usage = ctx.ledger.phases.get("eval")
    if usage and usage.errors and not usage.calls and not usage.cache_hits:
        first = next((r for r in baseline.records if r.get("error")), {})
        raise ProviderError(f"model={ctx.model_cfg['name']}: every LM call failed: "
                            f"{first.get('error', 'no answer')}")


def check_losses(ctx: JobContext, test_result, n_test: int) -> None:
    """A FINISHED run answered every test example, or as many as eval.max_error_rate allows."""
    allowed = float(ctx.conf["eval"].get("max_error_rate", 0.0))
    if n_test and test_result.lost / n_test > allowed:
        first = next((r for r in sorted(test_result.records, key=lambda r: (r["index"], r.get("repeat", 0)))
                      if r.get("error_kind") in ("provider", "program")), {})
        raise LostExamples(f"eval.max_error_rate={allowed} exceeded: {test_result.lost} of {n_test} test "
                           f"examples were not answered after retries (first: index {first.get('index')}: "
                           f"{first.get('error')}); raw_outputs.jsonl names them all")


def resumable_rows(ctx: JobContext, state: str) -> dict[tuple[int, int], dict]:
    """The killed run's answered test rows, if its compiled program is this one."""
    if ctx.killed is None or ctx.killed.data.tags.get(names.PROGRAM_HASH) != state:
        return {}
    rows = answered_rows(mlflow.MlflowClient(), ctx.killed.info.run_id)
    if rows:
        mlflow.set_tag(names.RESUMED_FROM, ctx.killed.info.run_id)
        print(f"resuming killed run {ctx.killed.info.run_id}: {len(rows)} test examples already answered "
              f"there are not sent again")
        for row in rows.values():  # their work counts at list price, as if done here
            ctx.ledger.add_list_only(int(row.get("list_tokens_in") or 0), int(row.get("list_tokens_out") or 0))
    return rows
