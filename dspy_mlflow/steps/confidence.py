"""95% intervals of each score, the compiled program against the baseline (paired, on dev), and
with ``compare.to=production`` the test rows against the production version's."""

from __future__ import annotations

import contextlib

import mlflow

from dspy_mlflow import names
from dspy_mlflow.compare.gate import production_rows
from dspy_mlflow.compare.intervals import interval_metrics
from dspy_mlflow.compare.paired import paired_metrics
from dspy_mlflow.errors import DspyMlflowError
from dspy_mlflow.steps.context import JobContext


def confidence(ctx: JobContext, baseline, dev_result, test_result) -> dict[str, float]:
    seed = int(ctx.conf["seed"])
    base = interval_metrics(baseline.records, "dev", seed=seed)
    out = {**{k.replace(names.DEV_SCORE, names.DEV_BASELINE): v for k, v in base.items()},
           **interval_metrics(dev_result.records, "dev", seed=seed),
           **interval_metrics(test_result.records, "test", seed=seed)}
    with contextlib.suppress(DspyMlflowError):  # examples that do not pair: no comparison
        out.update(paired_metrics(baseline.records, dev_result.records, names.VS_BASELINE, seed=seed))
    if (ctx.conf.get("compare") or {}).get("to") == "production":
        out.update(against_production(ctx, test_result.records, seed))
    return out


def against_production(ctx: JobContext, rows: list[dict], seed: int) -> dict[str, float]:
    """The test rows paired with the production version's (same examples, by inputs)."""
    name = ctx.conf["registry"].get("name") or ctx.project.name
    found = production_rows(mlflow.MlflowClient(), name)
    if found is None:
        print(f"compare.to=production: {name} has no production version yet; nothing to compare")
        return {}
    label, production = found
    mlflow.set_tag(names.COMPARED_TO, f"{name} {label}")
    try:
        return paired_metrics(production, rows, names.VS_PRODUCTION, seed=seed)
    except DspyMlflowError as exc:
        print(f"compare.to=production: not compared with {name} {label}: {exc}")
        return {}
