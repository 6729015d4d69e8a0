"""A job that runs: its MLflow run opened, its steps in order, and the run ended whatever happens.

preflight the model -> the LM -> split -> baseline on dev -> compile (or an Optuna search) ->
dev and test -> raw outputs, evaluation view, program, metrics -> register. Any failure ends the
run FAILED (KILLED on Ctrl-C) with tag ``dspy_mlflow.error`` and keeps what was done.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import mlflow

from dspy_mlflow import names
from dspy_mlflow.config.secrets import scrub, scrub_text
from dspy_mlflow.errors import DspyMlflowError, one_line
from dspy_mlflow.job.heap import freeze_loaded_libraries
from dspy_mlflow.job.result import JobResult, skipped
from dspy_mlflow.job.sweep_context import SweepContext
from dspy_mlflow.lm import ledger as ledger_mod
from dspy_mlflow.project.splits import split_examples
from dspy_mlflow.quiet import quiet_libraries
from dspy_mlflow.search.space import searched_keys
from dspy_mlflow.search.study import search_compile
from dspy_mlflow.steps import answers, compile, confidence, program_log, usage
from dspy_mlflow.steps.context import JobContext
from dspy_mlflow.steps.evaluate import evaluate
from dspy_mlflow.steps.lm_setup import configure_lm
from dspy_mlflow.steps.preflight import preflight_model
from dspy_mlflow.steps.prepare import Prepared
from dspy_mlflow.steps.register import register, resolve_init_from
from dspy_mlflow.tracking import cache_section
from dspy_mlflow.tracking.evaluation import log_test_evaluation
from dspy_mlflow.tracking.experiment import activate_experiment
from dspy_mlflow.tracking.finished import find_finished
from dspy_mlflow.tracking.heartbeat import Heartbeat, end_stale_runs
from dspy_mlflow.tracking.identity import params_of
from dspy_mlflow.tracking.resume import killed_run, program_hash
from dspy_mlflow.tracking.run_logging import log_raw_outputs, log_splits
from dspy_mlflow.tracking.traces import configure_export, flush_pending_traces


class JobFailed(DspyMlflowError):
    def __init__(self, message: str, run_id: str):
        super().__init__(message)
        self.run_id = run_id


def _searched_params(conf: dict) -> set[str]:
    """With search=optuna the chosen values are logged after the search, not the configured ones."""
    if (conf.get("search") or {}).get("name") != "optuna":
        return set()
    return {f"optimizer.{key}" for key in searched_keys(conf)}


def execute(prepared: Prepared, *, sweep: SweepContext | None, output_dir: str | Path | None,
            may_skip: bool) -> JobResult:
    """Open the job's run (or skip it on MLflow's own lookup) and run its steps."""
    conf, project, hashes = prepared.conf, prepared.project, prepared.hashes
    quiet_libraries()
    workdir = Path(output_dir or ".").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(conf["tracking"]["uri"])
    configure_export(conf["tracking"]["uri"])
    mlflow.clear_active_model()  # log_model sets one per process; a new job must not log into it
    experiment = activate_experiment(str(conf["tracking"]["experiment"]), sweep.experiment_id if sweep else None)
    client = mlflow.MlflowClient()
    for stale_id, line in end_stale_runs(client, [experiment.experiment_id]):
        print(f"run {stale_id}: {line}")
    killed = None
    if may_skip:
        killed = killed_run(client, experiment.experiment_id, hashes)
        previous, changed = find_finished(experiment.experiment_id, hashes)
        if previous is not None:
            return skipped(previous.info.run_id, hashes, dict(previous.data.metrics),
                           previous.data.params.get(names.PARAM_OPTIMIZER_RESOLVED))
        if changed:
            print(f"running: the config matches a FINISHED run, but its {' and '.join(changed)} changed")
    mode, cache_dir = cache_section.resolve(conf["cache"], str(conf["tracking"]["uri"]))
    if not conf["model"].get("cache", True):
        mode, cache_dir = "off", None
    conf["cache"] = {"dir": str(cache_dir) if cache_dir else None, "mode": mode}

    parent = resolve_init_from(conf, project.name)  # a bad reference fails before any run exists
    tags = {names.hash_tag(part): value for part, value in hashes.items()} | {names.PROJECT: project.name}
    if sweep:
        tags[names.SWEEP_ID] = sweep.sweep_id
    logged = scrub(conf)  # what MLflow keeps: no secret, nor the value of the variable api_key_env names
    active = mlflow.start_run(run_name=names.run_name(logged), tags=tags,
                              parent_run_id=sweep.parent_run_id if sweep else None)
    run_id = active.info.run_id
    ctx = JobContext(conf, project, workdir, parent=parent, killed=killed, in_sweep=sweep is not None)
    try:
        mlflow.log_params(params_of(logged, exclude=_searched_params(conf)))
        mlflow.log_dict(logged, names.CONFIG_ARTIFACT)
        with Heartbeat(client, run_id, float(conf["tracking"]["heartbeat_s"]), ctx.raw_path):
            run_steps(ctx)
        if not (sweep and sweep.flushes_traces):  # else once, at the sweep's end
            flush_pending_traces(conf["tracking"])
        mlflow.end_run("FINISHED")
        mlflow.clear_active_model()
        return JobResult(run_id, "FINISHED", ctx.metrics, optimizer=ctx.resolved_optimizer,
                         model_version=ctx.model_version, output_dir=str(workdir))
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        reason = scrub_text(ctx.interrupted(exc) if isinstance(exc, KeyboardInterrupt) else one_line(exc), conf)
        try:
            log_partial(ctx)
            mlflow.set_tag(names.ERROR, reason[:5000])
            flush_pending_traces(conf["tracking"])
        finally:
            mlflow.end_run(status)
        if isinstance(exc, (DspyMlflowError, KeyboardInterrupt)):  # Ctrl-C stops a sweep too
            exc.run_id = run_id  # type: ignore[attr-defined]
            raise
        raise JobFailed(f"{reason} (run {run_id})", run_id) from exc
    finally:
        ledger_mod.activate(None)  # LM calls after the job (a loaded program) are not the job's


def run_steps(ctx: JobContext) -> None:
    """The job's steps, in order, inside its active run."""
    conf = ctx.conf
    ctx.step = "the model's preflight"
    preflight_model(ctx)
    lm = configure_lm(ctx)
    freeze_loaded_libraries()  # full collections then skip the libraries' heap (job/heap.py)

    train, dev, test = split_examples(ctx.project.load_examples(), conf["project"]["split"])
    log_splits(ctx.project.name, {"train": train, "dev": dev, "test": test})
    mlflow.log_metrics({"data/train": len(train), "data/dev": len(dev), "data/test": len(test)})

    program = program_log.initial_program(ctx)
    threads, progress = int(conf["eval"]["num_threads"]), bool(conf["eval"].get("progress", True))
    metric = ctx.project.metric
    traces = {"trace_sampling": ctx.trace_sampling, "max_traced": ctx.max_traced}
    with ctx.ledger.in_phase("eval"):
        baseline = evaluate(program, dev, metric, ledger=ctx.ledger, split="dev_baseline", num_threads=threads,
                            progress=progress, keep_records=True, **traces,
                            on_row=ctx.at("the baseline evaluation on dev"))
    ctx.log_metric(names.DEV_BASELINE, baseline.score)
    answers.check_provider_answers(ctx, baseline)

    entry = compile.resolve_optimizer(ctx, len(train))
    compile.announce(ctx, entry, len(train), len(dev))
    t0 = time.perf_counter()
    with ctx.ledger.in_phase("compile"):
        if (conf.get("search") or {}).get("name") == "optuna":
            compiled = search_compile(ctx, entry, program, trainset=train, devset=dev, lm=lm)
        else:
            compiled = compile.compile_plain(ctx, entry, program, trainset=train, devset=dev, lm=lm)
    ctx.log_metric(names.COMPILE_DURATION, time.perf_counter() - t0)
    compile.after_compile(ctx, entry, program, compiled)

    state = program_hash(compile.state_of(compiled))
    mlflow.set_tag(names.PROGRAM_HASH, state)
    with ctx.ledger.in_phase("eval"):
        dev_result = evaluate(compiled, dev, metric, ledger=ctx.ledger, split="dev", num_threads=threads,
                              progress=progress, **traces, keep_records=True, on_row=ctx.at("the dev evaluation"))
        ctx.log_metric(names.DEV_SCORE, dev_result.score)
        test_result = evaluate(compiled, test, metric, ledger=ctx.ledger, split="test", num_threads=threads,
                               raw_path=ctx.raw_path, progress=progress, **traces,
                               reuse=answers.resumable_rows(ctx, state), keep_records=True,
                               on_row=ctx.at("the test evaluation"), repeats=ctx.repeats)
    ctx.step = "logging the results"
    final = {**usage.final_values(ctx, baseline, dev_result, test_result, len(test)),
             **confidence.confidence(ctx, baseline, dev_result, test_result)}
    ctx.metrics.update({key: float(value) for key, value in final.items()})
    info = None
    try:
        _log_raw(ctx)
        if not ctx.in_sweep or conf["tracking"].get("sweep_evaluation_views") is None:  # else the sweep's end
            log_test_evaluation(test_result.records, conf["tracking"], run_id=ctx.run_id)
        answers.check_losses(ctx, test_result, len(test) * ctx.repeats)
        info = program_log.log_program(compiled, ctx.workdir, log_model=bool(conf["tracking"]["log_model"]),
                                       example=program_log.model_example(ctx, test, test_result.records),
                                       model_cfg=ctx.model_cfg)
    finally:
        # after the model, and linked to it: the logged model lists the job's final metrics
        ctx.log_metrics(final, model_id=info.model_id if info else None)
    register(ctx, info, compiled)


def _log_raw(ctx: JobContext) -> None:
    if not ctx.logged_raw:
        ctx.logged_raw = True
        log_raw_outputs(ctx.raw_path)


def log_partial(ctx: JobContext) -> None:
    """On failure: whatever usage and raw outputs exist are still logged (best effort)."""
    done = len(ctx.raw_rows())
    with contextlib.suppress(Exception):
        if ctx.ledger is not None:
            ctx.log_metrics(usage.usage_values(ctx, n_test=done))
    with contextlib.suppress(Exception):
        _log_raw(ctx)
