"""The job's LM: priced, booked in a ledger, cached where the cache section says, traced by autolog."""

from __future__ import annotations

from pathlib import Path

import dspy
import mlflow

from dspy_mlflow import names
from dspy_mlflow.lm import ledger as ledger_mod
from dspy_mlflow.lm.pricing import resolve_price
from dspy_mlflow.lm.providers import build_lm
from dspy_mlflow.steps.context import JobContext
from dspy_mlflow.tracking import lm_cache
from dspy_mlflow.tracking.traces import configure_autolog


def configure_lm(ctx: JobContext):
    """Build the job's LM from ``ctx.model_cfg``, make it DSPy's, and return it."""
    conf = ctx.conf
    price = resolve_price(ctx.model_cfg)
    mlflow.log_params({names.PARAM_PRICE_IN: price.input_per_1m, names.PARAM_PRICE_OUT: price.output_per_1m,
                       names.PARAM_PRICE_SOURCE: price.source})
    ctx.ledger = ledger_mod.Ledger(price=price, max_cost_usd=conf["budget"]["max_cost_usd"])
    ledger_mod.activate(ctx.ledger)
    cache = conf["cache"]
    lm_cache.install(cache["mode"], Path(cache["dir"]) if cache["dir"] else None)
    lm = build_lm({**ctx.model_cfg, "cache": cache["mode"] != "off"})
    dspy.configure(lm=lm, adapter=None)
    configure_autolog(bool(conf["tracking"]["autolog"]))
    return lm
