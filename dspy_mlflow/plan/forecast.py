"""``plan``: forecast a job's or a sweep's tokens, dollars and time before spending them.

Per job, from the best source available:

* **history**: a FINISHED run of the same identity (config, data, code): its list-price
  tokens and cost (what the work costs with no cache) and its duration;
* **probe**: a few real calls of the unoptimized program to the job's model (cache
  off) measure its completion tokens, latency and tokenizer; then a dry run of the
  whole job (baseline, compile, dev, test) against the offline stand-in, which sends
  the same prompts, counts the calls of each phase and their prompt tokens. Prompt
  tokens are scaled by the model's tokens per offline token (from the probe),
  completion tokens are the probe's mean per call, time is calls x latency / threads.

The compile forecast assumes the model succeeds as often as the stand-in does (a
bootstrap that keeps more or fewer traces makes more or fewer calls).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dspy_mlflow.config.hydra_errors import describe
from dspy_mlflow.config.paths import conf_dir
from dspy_mlflow.errors import DspyMlflowError
from dspy_mlflow.job.run import run
from dspy_mlflow.job.validation import register_config_schemas
from dspy_mlflow.lm import ledger as ledger_mod
from dspy_mlflow.lm.pricing import resolve_price
from dspy_mlflow.lm.providers import build_lm, preflight
from dspy_mlflow.lm.usage import content_text, count_tokens
from dspy_mlflow.plan.power import job_power
from dspy_mlflow.project.loader import load_project
from dspy_mlflow.project.splits import split_examples
from dspy_mlflow.steps.prepare import Prepared, prepare
from dspy_mlflow.tracking.finished import find_finished

PROBES = 3


@dataclass
class Forecast:
    job: str
    source: str  # "history" or "probe"
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    duration_s: float
    test_examples: int = 0
    mde: float = math.nan  # the smallest test-score difference its test split detects (plan/power.py)
    mde_source: str = ""
    sd_diff: float = math.nan  # the spread of paired differences the mde assumes


def forecast_job(conf: dict, label: str) -> Forecast:
    """The forecast of one job (a resolved config as ``run`` takes it), with its power."""
    prepared = prepare(json.loads(json.dumps(conf)))  # the project loaded and hashed once, for both
    forecast = _from_history(prepared, label) or _from_probe(conf, label)
    power = job_power(conf, prepared)
    forecast.test_examples, forecast.mde, forecast.mde_source = power.test_examples, power.mde, power.source
    forecast.sd_diff = power.sd_diff
    return forecast


def _from_history(prepared: Prepared, label: str) -> Forecast | None:
    import mlflow

    conf = prepared.conf
    mlflow.set_tracking_uri(conf["tracking"]["uri"])
    experiment = mlflow.get_experiment_by_name(str(conf["tracking"]["experiment"]))
    if experiment is None:
        return None
    found, _ = find_finished(experiment.experiment_id, prepared.hashes)
    if found is None:
        return None
    m = found.data.metrics
    tokens_in = int(m.get("eval/list_tokens_in", 0) + m.get("compile/list_tokens_in", 0))
    tokens_out = int(m.get("eval/list_tokens_out", 0) + m.get("compile/list_tokens_out", 0))
    calls = int(m.get("lm/calls", 0) + m.get("eval/cache_hits", 0) + m.get("compile/cache_hits", 0))
    duration = (found.info.end_time - found.info.start_time) / 1000.0 if found.info.end_time else 0.0
    return Forecast(label, f"history ({found.info.run_id[:8]})", calls, tokens_in, tokens_out,
                    float(m.get("cost/list_usd", m.get("cost/total_usd", 0.0))), duration)


@dataclass
class _Probe:
    tokens_per_offline_token: float
    completion_tokens: float
    latency_s: float


def _probe(conf: dict) -> _Probe:
    """A few real calls (cache off) of the unoptimized program on dev examples."""
    import dspy

    model = conf["model"]
    preflight(model)
    lm = build_lm({**model, "cache": False})
    project = load_project(conf["project"])
    _, dev, _ = split_examples(project.load_examples(), conf["project"]["split"])
    program = project.make_program(conf["strategy"])
    ledger = ledger_mod.Ledger(price=resolve_price(model))
    ledger_mod.activate(ledger)
    t0 = time.perf_counter()
    try:
        with dspy.context(lm=lm, adapter=None):
            for example in dev[:PROBES]:
                with contextlib.suppress(Exception):  # a parse error still measured the call
                    program(**example.inputs())
    finally:
        ledger_mod.activate(None)
    elapsed = time.perf_counter() - t0
    usage = ledger.total
    calls = usage.calls or 1
    offline_in = sum(count_tokens(content_text(m.get("content"))) for e in lm.history for m in e["messages"] or [])
    return _Probe(usage.tokens_in / offline_in if offline_in else 1.0, usage.tokens_out / calls, elapsed / calls)


def _dry_run(conf: dict) -> Any:
    """The whole job against the offline stand-in, in a scratch store: the ledger of what it sent."""

    with tempfile.TemporaryDirectory(prefix="dspy-mlflow-plan-") as tmp:
        stand_in = {"name": "offline", "litellm_model": "offline/plan", "pricing": {"input_per_1m": 0.0,
                                                                                    "output_per_1m": 0.0},
                    "temperature": conf["model"].get("temperature", 0.0), "max_tokens": conf["model"]["max_tokens"],
                    "num_retries": 0, "timeout_s": 60.0, "cache": False, "provider_options": {}}
        dry = {**conf, "model": stand_in,
               "tracking": {**conf["tracking"], "uri": f"sqlite:///{tmp}/plan.db", "autolog": False,
                            "log_model": False, "rerun": True},
               "registry": {**conf["registry"], "register": False}, "cache": {"dir": None, "mode": "off"},
               "eval": {**conf["eval"], "progress": False, "max_error_rate": 1.0},
               "budget": {**conf["budget"], "max_cost_usd": None}}
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = run(dry, output_dir=Path(tmp) / "job")
        return result.metrics


def _from_probe(conf: dict, label: str) -> Forecast:
    probe = _probe(conf)
    m = _dry_run(conf)
    calls = int(m.get("lm/calls", 0))
    tokens_in = round((m.get("eval/tokens_in", 0) + m.get("compile/tokens_in", 0)) * probe.tokens_per_offline_token)
    tokens_out = round(calls * probe.completion_tokens)
    price = resolve_price(conf["model"])
    duration = calls * probe.latency_s / max(1, int(conf["eval"]["num_threads"]))
    return Forecast(label, "probe", calls, int(tokens_in), int(tokens_out), price.cost(tokens_in, tokens_out), duration)


def format_plan(forecasts: list[Forecast], budget: float | None = None) -> str:
    import pandas as pd

    frame = pd.DataFrame([vars(f) for f in forecasts]).drop(columns=["mde_source", "sd_diff"])
    total = {"job": "total", "source": "", "calls": int(frame["calls"].sum()),
             "tokens_in": int(frame["tokens_in"].sum()), "tokens_out": int(frame["tokens_out"].sum()),
             "cost_usd": float(frame["cost_usd"].sum()), "duration_s": float(frame["duration_s"].sum()),
             "test_examples": int(frame["test_examples"].sum()), "mde": math.nan}
    frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True).rename(columns={"test_examples": "test_n"})
    frame["mde"] = ["" if math.isnan(v) else f"{v:.3f}" for v in frame["mde"]]
    text = frame.to_string(index=False, formatters={"cost_usd": "${:.4f}".format, "duration_s": "{:.1f}".format})
    text += ("\nmde: the smallest test/score difference each job's test split detects (paired test, alpha 0.05, "
             "80% power; the spread of a finished run of the same identity, else the bound of a score in [0, 1])")
    if budget is not None:
        text += f"\nbudget.sweep_max_cost_usd={budget}: forecast ${total['cost_usd']:.4f} " + (
            "is within it" if total["cost_usd"] <= budget else "is over it")
    return text


def job_configs(overrides: list[str], multirun: bool) -> list[tuple[str, dict]]:
    """(label, resolved config) per job: one, or one per combination of a sweep's overrides."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    register_config_schemas()
    if multirun:
        parsed = OverridesParser.create().parse_overrides(overrides)
        batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
        jobs = [list(job) for batch in batches for job in batch]
    else:
        jobs = [list(overrides)]
    out = []
    warnings.filterwarnings("ignore", message=r".*hydra\.searchpath in main.*is not available")  # ./conf is optional
    inside_app = GlobalHydra.instance().is_initialized()  # a sweep checking its budget: compose with its loader
    with contextlib.nullcontext() if inside_app else initialize_config_dir(config_dir=str(conf_dir()),
                                                                           version_base="1.3"):
        for job in jobs:
            try:
                cfg = OmegaConf.to_container(compose(config_name="config", overrides=job), resolve=True)
            except Exception as exc:  # Hydra's composition errors, as the job would print them
                line = describe(exc, job)
                if line is None:
                    raise
                raise DspyMlflowError(line) from None
            cfg.pop("hydra", None)
            out.append((_label(job, jobs), cfg))
    return out


def _label(job: list[str], jobs: list[list[str]]) -> str:
    """The overrides that tell this job from the sweep's others (all of them for a single job)."""
    varying = [o for o in job if any(o not in other for other in jobs)]
    return " ".join(varying or job) or "(defaults)"


def sweep_cost(configs: list[tuple[str, Mapping]]) -> tuple[list[Forecast], float]:
    forecasts = [forecast_job(dict(cfg), label) for label, cfg in configs]
    return forecasts, sum(f.cost_usd for f in forecasts)


def refuse_over_budget(task_overrides: list[str], budget: float) -> str | None:
    """The one-line reason a sweep must not start (its forecast is over budget), else None."""
    forecasts, total = sweep_cost(job_configs(task_overrides, multirun=True))
    if total <= budget:
        print(f"plan: sweep of {len(forecasts)} jobs forecast at ${total:.4f}, within "
              f"budget.sweep_max_cost_usd={budget}")
        return None
    return (f"budget.sweep_max_cost_usd={budget} is not allowed to be exceeded: the sweep's {len(forecasts)} jobs are "
            f"forecast at ${total:.4f} (python -m dspy_mlflow plan -m ... shows each)")
