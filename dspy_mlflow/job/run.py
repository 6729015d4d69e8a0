"""``run(cfg)``: one job as one MLflow run.

validate -> load project -> (skip if an identical config FINISHED) -> start run ->
preflight the model -> split -> baseline on dev -> compile -> dev and test ->
log program, metrics, artifacts -> register. Any failure ends the run FAILED
(KILLED on Ctrl-C) with tag ``dspy_mlflow.error`` and keeps what was done.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dspy_mlflow.errors import BudgetExceeded, DspyMlflowError, LostExamples, one_line
from dspy_mlflow.job.result import JobResult
from dspy_mlflow.tracking.finished import find_finished, lookup
from dspy_mlflow.tracking.heartbeat import Heartbeat, end_stale_runs
from dspy_mlflow.tracking.identity import hash_tag
from dspy_mlflow.tracking.resume import PROGRAM_TAG, RESUMED_TAG, answered_rows, killed_run, program_hash
from dspy_mlflow.tracking.traces import flush_pending_traces

TAG = "dspy_mlflow"


@dataclass
class SweepContext:
    sweep_id: str
    parent_run_id: str | None
    experiment_id: str | None = None


def _experiment(conf: dict, sweep: SweepContext | None):
    """The sweep's experiment; else the one of the run `mlflow run` created; else tracking.experiment."""
    import mlflow

    if sweep and sweep.experiment_id:
        return mlflow.set_experiment(experiment_id=sweep.experiment_id)
    if os.environ.get("MLFLOW_RUN_ID"):
        run = mlflow.MlflowClient().get_run(os.environ["MLFLOW_RUN_ID"])
        return mlflow.set_experiment(experiment_id=run.info.experiment_id)
    experiment = mlflow.set_experiment(conf["tracking"]["experiment"])
    # when another process created it a moment before, set_experiment returns it without making it
    # active (mlflow/tracking/fluent.py, RESOURCE_ALREADY_EXISTS) and the run would go to experiment 0
    return mlflow.set_experiment(experiment_id=experiment.experiment_id)


def _plain_cfg(cfg) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return json.loads(json.dumps(cfg, default=str))


def _identity(conf: dict, project) -> dict[str, str]:
    from dspy_mlflow.project_loader import signature_hash
    from dspy_mlflow.tracking.identity import code_hash, config_hash, data_hash

    return {"config": config_hash(conf), "data": data_hash(project.load_examples()),
            "code": code_hash(project.source, signature_hash(project.signature))}


def _name_project(conf: dict, project) -> None:
    """The config names the project as loaded: its name (from the module when not given) and an
    absolute module path, so the logged config loads from any directory."""
    conf["project"]["name"] = project.name
    module = str(conf["project"]["module"])
    if module.endswith(".py"):
        conf["project"]["module"] = project.source


def run(cfg, *, sweep: SweepContext | None = None, output_dir: str | Path | None = None) -> JobResult:
    """Run one job described by a composed config (DictConfig or plain dict)."""
    from dspy_mlflow.config.validate import validate
    from dspy_mlflow.quiet import quiet_environment, quiet_libraries

    quiet_environment()
    conf = _plain_cfg(cfg)
    validate(conf)  # ConfigError before anything runs
    from dspy_mlflow.project_loader import check_program, load_project
    from dspy_mlflow.tracking import cache_section

    project = load_project(conf["project"])
    if not conf["program"].get("init_from"):
        check_program(project, conf["strategy"])  # a factory that raises fails before any run exists
    _name_project(conf, project)
    hashes = _identity(conf, project)
    launched_by_mlflow_run = "MLFLOW_RUN_ID" in os.environ  # that run exists already: fill it, never skip
    may_skip = not (conf["tracking"]["rerun"] or launched_by_mlflow_run)
    from dspy_mlflow.tracking_check import check_reachable

    uri = str(conf["tracking"]["uri"])
    server = uri.startswith(("http://", "https://"))
    if server:  # a server that does not answer: its one-line error first, not after the lookup's wait
        check_reachable(uri)
    if may_skip:  # asked of the store before MLflow is imported: a skip costs little
        done = lookup(uri, hashes, experiment=str(conf["tracking"]["experiment"]),
                      experiment_id=sweep.experiment_id if sweep else None)
        if done is not None:
            return _skipped(done.run_id, hashes, done.metrics, done.optimizer)
    if not server:
        check_reachable(uri)
    import mlflow

    quiet_libraries()

    from dspy_mlflow.config.secrets import scrub, scrub_text
    from dspy_mlflow.tracking.identity import params_of

    workdir = Path(output_dir or ".").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(conf["tracking"]["uri"])
    if str(conf["tracking"]["uri"]).startswith("sqlite"):
        # one trace writer: concurrent exporters on one sqlite file fail with "database is locked"
        os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_WORKERS", "1")
    # spans written in batches of up to 256 (MLflow's default is 5): one log_spans per batch instead
    # of one per few spans; a span waits at most 5 s (MLFLOW_ASYNC_TRACE_LOGGING_MAX_INTERVAL_MILLIS)
    os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_SPAN_BATCH_SIZE", "256")
    mlflow.clear_active_model()  # log_model sets one per process; a new job must not log into it
    experiment = _experiment(conf, sweep)
    client = mlflow.MlflowClient()
    for stale_id, line in end_stale_runs(client, [experiment.experiment_id]):
        print(f"run {stale_id}: {line}")
    killed = None
    if may_skip:
        killed = killed_run(client, experiment.experiment_id, hashes)
        previous, changed = find_finished(experiment.experiment_id, hashes)
        if previous is not None:
            return _skipped(previous.info.run_id, hashes, dict(previous.data.metrics),
                            previous.data.params.get("optimizer.resolved"))
        if changed:
            print(f"running: the config matches a FINISHED run, but its {' and '.join(changed)} changed")
    mode, cache_dir = cache_section.resolve(conf["cache"], uri)
    if not conf["model"].get("cache", True):
        mode, cache_dir = "off", None
    conf["cache"] = {"dir": str(cache_dir) if cache_dir else None, "mode": mode}

    parent = _resolve_init_from(conf, project.name)  # a bad reference fails before any run exists
    tags = {hash_tag(part): value for part, value in hashes.items()} | {f"{TAG}.project": project.name}
    if sweep:
        tags[f"{TAG}.sweep_id"] = sweep.sweep_id
    logged = scrub(conf)  # what MLflow keeps: no secret, nor the value of the variable api_key_env names
    run_name = logged["tracking"].get("run_name") or "-".join(
        str(conf[g]["name"]) for g in ("model", "optimizer", "strategy"))
    active = mlflow.start_run(run_name=run_name, tags=tags,
                              parent_run_id=sweep.parent_run_id if sweep else None)
    run_id = active.info.run_id
    metrics: dict[str, float] = {}
    job = _Job(conf, project, workdir, metrics, parent=parent, killed=killed, in_sweep=sweep is not None)
    try:
        mlflow.log_params(params_of(logged, exclude=_searched_params(conf)))
        mlflow.log_dict(logged, "config.yaml")
        with Heartbeat(client, run_id, float(conf["tracking"]["heartbeat_s"]), job.raw_path):
            job.execute()
        if not _sweep_flushes_traces():
            flush_pending_traces(conf["tracking"])
        mlflow.end_run("FINISHED")
        mlflow.clear_active_model()
        return JobResult(run_id, "FINISHED", metrics, optimizer=job.resolved_optimizer,
                         model_version=job.model_version, output_dir=str(workdir))
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        reason = scrub_text(job.interrupted(exc) if isinstance(exc, KeyboardInterrupt) else one_line(exc), conf)
        try:
            job.log_partial()
            mlflow.set_tag(f"{TAG}.error", reason[:5000])
            flush_pending_traces(conf["tracking"])
        finally:
            mlflow.end_run(status)
        if isinstance(exc, (DspyMlflowError, KeyboardInterrupt)):  # Ctrl-C stops a sweep too
            exc.run_id = run_id  # type: ignore[attr-defined]
            raise
        raise JobFailed(f"{reason} (run {run_id})", run_id) from exc
    finally:
        from dspy_mlflow.lm import ledger as ledger_mod

        ledger_mod.activate(None)  # LM calls after the job (a loaded program) are not the job's


def _skipped(run_id: str, hashes: dict[str, str], metrics: dict[str, float], optimizer: str | None) -> JobResult:
    print(f"skipped: config, data and code identical to FINISHED run {run_id} "
          f"(config {hashes['config']}, data {hashes['data']}, code {hashes['code']}; "
          f"set tracking.rerun=true to run again)")
    return JobResult(run_id, "SKIPPED", metrics, optimizer=optimizer)


def _sweep_flushes_traces() -> bool:
    """A sweep whose callback runs in this process writes the pending traces once, at its end (a
    flush waits up to a second for MLflow's queue): the jobs need not, each."""
    callback = sys.modules.get("dspy_mlflow.sweep.callback")
    return callback is not None and callback.open_sweep() is not None


def _resolve_init_from(conf: dict, project_name: str) -> str | None:
    """program.init_from -> "models:/NAME/VERSION", or a one-line ConfigError."""
    init_from = (conf.get("program") or {}).get("init_from")
    if not init_from:
        return None
    from dspy_mlflow.errors import ConfigError, RegistryError
    from dspy_mlflow.registry.register import resolve_parent

    name = (conf.get("registry") or {}).get("name") or project_name
    try:
        version = resolve_parent(str(init_from), name)
    except RegistryError as exc:
        raise ConfigError("program.init_from", init_from, f"a registered program version ({exc})") from exc
    return f"models:/{version.name}/{version.version}"


def _searched_params(conf: dict) -> set[str]:
    """With search=optuna the chosen values are logged after the search, not the configured ones."""
    if (conf.get("search") or {}).get("name") != "optuna":
        return set()
    from dspy_mlflow.search.space import searched_keys

    return {f"optimizer.{key}" for key in searched_keys(conf)}


def _set_trace_sampling(ratio: float) -> None:
    """MLflow reads the ratio when its tracer starts: set it, then restart the tracer."""
    from mlflow.tracing.provider import reset

    if os.environ.get("MLFLOW_TRACE_SAMPLING_RATIO") != str(ratio):
        os.environ["MLFLOW_TRACE_SAMPLING_RATIO"] = str(ratio)
        reset()


def _state_of(program) -> str:
    return json.dumps(program.dump_state(), sort_keys=True, default=str)


class JobFailed(DspyMlflowError):
    def __init__(self, message: str, run_id: str):
        super().__init__(message)
        self.run_id = run_id


class _Job:
    """The steps of one job, inside an active MLflow run."""

    def __init__(self, conf: dict, project, workdir: Path, metrics: dict[str, float], parent: str | None,
                 killed=None, in_sweep: bool = False):
        self.conf, self.project, self.workdir, self.metrics = conf, project, workdir, metrics
        self.parent = parent  # "models:/NAME/VERSION" this program starts from, or None (a root)
        self.killed = killed  # a KILLED run of the same identity whose test rows may be reused
        self.step, self.done, self.total = "starting", 0, 0  # where an interrupt found the job
        self.ledger = None
        self.model_cfg: dict = conf["model"]  # replaced by the fallback entry if preflight switches
        self.raw_path = workdir / "raw_outputs.jsonl"
        self.raw_path.unlink(missing_ok=True)  # this job's rows only
        self.resolved_optimizer = conf["optimizer"]["name"]
        self.chosen_hyperparameters: dict[str, str] = {}
        self.model_version: str | None = None
        self.logged_raw = False
        self.in_sweep = in_sweep  # a sweep logs its best jobs' evaluation views at its end
        # the share of evaluated examples traced; without autolog there is nothing to leave out
        tracking = conf["tracking"]
        self.trace_sampling = float(tracking.get("trace_sampling", 1.0)) if tracking["autolog"] else 1.0
        cap = tracking.get("max_traces_per_split") if tracking["autolog"] else None
        self.max_traced = None if cap is None else int(cap)

    # -- steps -------------------------------------------------------------
    def execute(self) -> None:
        import dspy
        import mlflow

        from dspy_mlflow.job.evaluate import evaluate
        from dspy_mlflow.job.heap import freeze_loaded_libraries
        from dspy_mlflow.job.logging import log_splits
        from dspy_mlflow.job.optimizers import auto_entry, compile_program
        from dspy_mlflow.job.progress import GepaProgress, log_progress
        from dspy_mlflow.job.splits import split_examples
        from dspy_mlflow.lm import ledger as ledger_mod
        from dspy_mlflow.lm.pricing import resolve_price
        from dspy_mlflow.lm.providers import build_lm
        from dspy_mlflow.tracking import lm_cache

        conf = self.conf
        self.step = "the model's preflight"
        model_cfg = self.model_cfg = self._preflight()
        price = resolve_price(model_cfg)
        mlflow.log_params({"pricing.input_per_1m": price.input_per_1m,
                           "pricing.output_per_1m": price.output_per_1m, "pricing.source": price.source})
        self.ledger = ledger_mod.Ledger(price=price, max_cost_usd=conf["budget"]["max_cost_usd"])
        ledger_mod.activate(self.ledger)
        cache = conf["cache"]
        lm_cache.install(cache["mode"], Path(cache["dir"]) if cache["dir"] else None)
        lm = build_lm({**model_cfg, "cache": cache["mode"] != "off"})
        dspy.configure(lm=lm, adapter=None)
        if conf["tracking"]["autolog"]:
            # the job picks the traced examples (evaluate(trace_sampling=...)); MLflow keeps every trace
            _set_trace_sampling(1.0)
            mlflow.dspy.autolog(log_traces=True, log_traces_from_compile=False, log_traces_from_eval=True,
                                log_compiles=False, log_evals=False, silent=True)
        else:
            mlflow.dspy.autolog(disable=True, silent=True)
        freeze_loaded_libraries()  # full collections then skip the libraries' heap (job/heap.py)

        examples = self.project.load_examples()
        train, dev, test = split_examples(examples, conf["project"]["split"])
        log_splits(self.project.name, {"train": train, "dev": dev, "test": test})
        mlflow.log_metrics({"data/train": len(train), "data/dev": len(dev), "data/test": len(test)})

        program = self._initial_program()
        threads, progress = int(conf["eval"]["num_threads"]), bool(conf["eval"].get("progress", True))
        metric = self.project.metric
        traces = {"trace_sampling": self.trace_sampling, "max_traced": self.max_traced}

        with self.ledger.in_phase("eval"):
            baseline = evaluate(program, dev, metric, ledger=self.ledger, split="dev_baseline",
                                num_threads=threads, progress=progress, keep_records=True, **traces,
                                on_row=self._at("the baseline evaluation on dev"))
        self._metric("dev/baseline_score", baseline.score)
        self._check_provider_answers(baseline)

        entry = dict(conf["optimizer"])
        if entry["name"] == "auto":
            entry = auto_entry(len(train))
            print(f"optimizer=auto picked {entry['name']} for {len(train)} training examples")
        self.resolved_optimizer = entry["name"]
        mlflow.log_param("optimizer.resolved", entry["name"])
        mlflow.set_tag(f"{TAG}.optimizer", entry["name"])
        print(f"compiling with {entry['name']} on {len(train)} train / {len(dev)} dev examples ...")
        self.step = f"compiling with {entry['name']}"
        t0 = time.perf_counter()
        with self.ledger.in_phase("compile"):
            if (conf.get("search") or {}).get("name") == "optuna":
                from dspy_mlflow.search.study import search_compile

                compiled = search_compile(self, entry, program, trainset=train, devset=dev, lm=lm)
                self._log_chosen_hyperparameters()
            else:
                gepa = GepaProgress() if entry["name"] == "gepa" else None
                compiled = compile_program(entry, program, metric=metric, trainset=train, devset=dev, lm=lm,
                                           num_threads=threads, seed=int(conf["seed"]), progress=gepa)
                self.metrics.update(log_progress(gepa, compiled))
        self._metric("compile/duration_s", time.perf_counter() - t0)
        if entry["name"] != "none":
            self._warn_if_unchanged(program, compiled, entry["name"])
        if self.ledger.exceeded:
            raise BudgetExceeded(self.ledger.total.cost_usd, self.ledger.max_cost_usd)

        state = program_hash(_state_of(compiled))
        mlflow.set_tag(PROGRAM_TAG, state)
        with self.ledger.in_phase("eval"):
            dev_result = evaluate(compiled, dev, metric, ledger=self.ledger, split="dev",
                                  num_threads=threads, progress=progress, **traces,
                                  keep_records=True, on_row=self._at("the dev evaluation"))
            self._metric("dev/score", dev_result.score)
            test_result = evaluate(compiled, test, metric, ledger=self.ledger, split="test",
                                   num_threads=threads, raw_path=self.raw_path, progress=progress,
                                   **traces, reuse=self._resumable_rows(state),
                                   keep_records=True, on_row=self._at("the test evaluation"))
        self.step = "logging the results"
        final = {
            "test/score": test_result.score,
            "eval/duration_s": baseline.duration_s + dev_result.duration_s + test_result.duration_s,
            "eval/latency_p50_ms": test_result.percentile_ms(0.5),
            "eval/latency_p95_ms": test_result.percentile_ms(0.95),
            "eval/errors": test_result.errors, "eval/lost": test_result.lost,
            "eval/parse_errors": test_result.parse_errors, "eval/retried_examples": test_result.retried,
            "eval/resumed_examples": test_result.reused,
            **self._confidence(baseline, dev_result, test_result),
            **self._usage_values(n_test=len(test)),
        }
        self.metrics.update({key: float(value) for key, value in final.items()})
        from dspy_mlflow.tracking.evaluation import log_test_evaluation

        try:
            self._log_raw()
            if not self.in_sweep or conf["tracking"].get("sweep_evaluation_views") is None:  # else the sweep's end
                log_test_evaluation(test_result.records, conf["tracking"], run_id=mlflow.active_run().info.run_id)
            self._check_losses(test_result, len(test))
            info = self._log_program(compiled, self._model_example(test, test_result.records))
        finally:
            # after the model: MLflow's Model.log copies every metric logged before it to the model, one
            # query per metric; the ones logged after are linked to it through the run
            self._metrics(final)
        self._register(info)

    def _preflight(self) -> dict:
        import mlflow

        from dspy_mlflow.config.entries import load_model_entry
        from dspy_mlflow.errors import ProviderError
        from dspy_mlflow.lm.providers import preflight

        model_cfg = self.conf["model"]
        try:
            tags = preflight(model_cfg)
        except ProviderError as exc:
            fallback = model_cfg.get("fallback")
            if not fallback:
                raise
            print(f"model {model_cfg['name']} unavailable ({exc}); falling back to model={fallback}")
            mlflow.set_tags({f"{TAG}.fallback_from": model_cfg["name"], f"{TAG}.fallback_to": fallback,
                             f"{TAG}.fallback_reason": str(exc)[:5000]})
            model_cfg = load_model_entry(fallback)
            mlflow.log_param("model.effective", model_cfg["name"])
            tags = preflight(model_cfg)
        if tags:
            mlflow.set_tags(tags)
        return model_cfg

    def _confidence(self, baseline, dev_result, test_result) -> dict[str, float]:
        """95% intervals of each score, and the compiled program against the baseline on dev, paired."""
        from dspy_mlflow.compare.intervals import interval_metrics
        from dspy_mlflow.compare.paired import paired_metrics

        seed = int(self.conf["seed"])
        base = interval_metrics(baseline.records, "dev", seed=seed)
        out = {**{k.replace("dev/score", "dev/baseline_score"): v for k, v in base.items()},
               **interval_metrics(dev_result.records, "dev", seed=seed),
               **interval_metrics(test_result.records, "test", seed=seed)}
        with contextlib.suppress(DspyMlflowError):  # examples that do not pair: no comparison
            out.update(paired_metrics(baseline.records, dev_result.records, "dev/vs_baseline", seed=seed))
        if (self.conf.get("compare") or {}).get("to") == "production":
            out.update(self._against_production(test_result.records, seed))
        return out

    def _against_production(self, rows: list[dict], seed: int) -> dict[str, float]:
        """The test rows paired with the production version's (same examples, by inputs)."""
        import mlflow

        from dspy_mlflow.compare.gate import production_rows
        from dspy_mlflow.compare.paired import paired_metrics

        name = self.conf["registry"].get("name") or self.project.name
        found = production_rows(mlflow.MlflowClient(), name)
        if found is None:
            print(f"compare.to=production: {name} has no production version yet; nothing to compare")
            return {}
        label, production = found
        mlflow.set_tag(f"{TAG}.compared_to", f"{name} {label}")
        try:
            return paired_metrics(production, rows, "test/vs_production", seed=seed)
        except DspyMlflowError as exc:
            print(f"compare.to=production: not compared with {name} {label}: {exc}")
            return {}

    def _at(self, step: str):
        """An evaluation's on_row: remember how far it got, for an interrupt's reason."""
        self.step, self.done, self.total = step, 0, 0

        def on_row(done: int, total: int) -> None:
            self.done, self.total = done, total

        return on_row

    def interrupted(self, exc: BaseException) -> str:
        """Ctrl-C's (or SIGTERM's) reason: what was interrupted and how far it got."""
        signal = str(exc).strip()
        how = {"signal 15": "SIGTERM", "": "Ctrl-C"}.get(signal, signal)
        where = f"during {self.step}"
        if self.total:
            where += f": {self.done} of {self.total} examples answered"
        return f"interrupted by {how} {where}"

    def _resumable_rows(self, state: str) -> dict[int, dict]:
        """The killed run's answered test rows, if its compiled program is this one."""
        import mlflow

        if self.killed is None or self.killed.data.tags.get(PROGRAM_TAG) != state:
            return {}
        rows = answered_rows(mlflow.MlflowClient(), self.killed.info.run_id)
        if rows:
            mlflow.set_tag(RESUMED_TAG, self.killed.info.run_id)
            print(f"resuming killed run {self.killed.info.run_id}: {len(rows)} test examples already answered "
                  f"there are not sent again")
            for row in rows.values():  # their work counts at list price, as if done here
                self.ledger.add_list_only(int(row.get("list_tokens_in") or 0), int(row.get("list_tokens_out") or 0))
        return rows

    def _check_losses(self, test_result, n_test: int) -> None:
        """A FINISHED run answered every test example, or as many as eval.max_error_rate allows."""
        allowed = float(self.conf["eval"].get("max_error_rate", 0.0))
        if n_test and test_result.lost / n_test > allowed:
            first = next((r for r in sorted(test_result.records, key=lambda r: r["index"])
                          if r.get("error_kind") in ("provider", "program")), {})
            raise LostExamples(f"eval.max_error_rate={allowed} exceeded: {test_result.lost} of {n_test} test "
                               f"examples were not answered after retries (first: index {first.get('index')}: "
                               f"{first.get('error')}); raw_outputs.jsonl names them all")

    def _raw_rows(self) -> list[dict]:
        if not self.raw_path.exists():
            return []
        return [json.loads(x) for x in self.raw_path.read_text(encoding="utf-8").splitlines() if x.strip()]

    def _model_example(self, test, records: list[dict]) -> tuple[dict, dict] | None:
        """(inputs, outputs) of the first test example, already answered: the logged model's
        signature, so logging the model calls no LM."""
        if not test:
            return None
        outputs = next((r["prediction"] for r in records if r["index"] == 0), None)
        fields = list(self.project.signature.output_fields)
        return test[0].inputs().toDict(), outputs or {name: "" for name in fields}

    def _warn_if_unchanged(self, before, after, optimizer: str) -> None:
        """A compile that changed nothing (no demos, no instructions) ran in vain: say so."""
        import mlflow

        if _state_of(before) != _state_of(after):
            return
        warning = (f"optimizer={optimizer} changed nothing: the compiled program has the same demos and "
                   f"instructions as the one it started from")
        if "compile/candidates_proposed" in self.metrics:
            warning += (f" ({int(self.metrics['compile/candidates_proposed'])} candidates proposed, "
                        f"{int(self.metrics['compile/candidates_accepted'])} accepted)")
        print(f"warning: {warning}")
        mlflow.set_tag(f"{TAG}.warning", warning)

    def _initial_program(self):
        if not self.parent:
            return self.project.make_program(self.conf["strategy"])
        import mlflow

        from dspy_mlflow.registry.load import load_program

        mlflow.set_tag(f"{TAG}.init_from", self.parent)
        return load_program(self.parent, attach_lm=False)  # the job's LM is configured globally

    def _log_chosen_hyperparameters(self) -> None:
        """optimizer.<param> = the value of the trial the search chose (logged by it as search.best.*)."""
        import mlflow

        params = mlflow.get_run(mlflow.active_run().info.run_id).data.params
        chosen = {k[len("search.best."):]: v for k, v in params.items() if k.startswith("search.best.")}
        mlflow.log_params({f"optimizer.{k}": v for k, v in chosen.items()})
        self.chosen_hyperparameters = chosen

    def _check_provider_answers(self, baseline) -> None:
        """Parse errors are counted per example; a provider that answered nothing at all fails the job."""
        from dspy_mlflow.errors import ProviderError

        usage = self.ledger.phases.get("eval")
        if usage and usage.errors and not usage.calls and not usage.cache_hits:
            first = next((r for r in baseline.records if r.get("error")), {})
            raise ProviderError(f"model={self.model_cfg['name']}: every LM call failed: "
                                f"{first.get('error', 'no answer')}")

    # -- logging -----------------------------------------------------------
    def _metric(self, key: str, value: float) -> None:
        import mlflow

        self.metrics[key] = float(value)
        mlflow.log_metric(key, float(value))

    def _metrics(self, values: dict[str, float]) -> None:
        import mlflow

        values = {key: float(value) for key, value in values.items()}
        self.metrics.update(values)
        mlflow.log_metrics(values)

    def _usage_values(self, n_test: int) -> dict[str, float]:
        from dspy_mlflow.lm.ledger import Usage

        ev = self.ledger.phases.get("eval", Usage())
        co = self.ledger.phases.get("compile", Usage())
        total = self.ledger.total
        values = {
            "eval/tokens_in": ev.tokens_in, "eval/tokens_out": ev.tokens_out,
            "compile/tokens_in": co.tokens_in, "compile/tokens_out": co.tokens_out,
            "eval/cost_usd": ev.cost_usd, "compile/cost_usd": co.cost_usd,
            "cost/total_usd": total.cost_usd,
            "eval/list_tokens_in": ev.list_tokens_in, "eval/list_tokens_out": ev.list_tokens_out,
            "compile/list_tokens_in": co.list_tokens_in, "compile/list_tokens_out": co.list_tokens_out,
            "eval/list_cost_usd": ev.list_cost_usd, "compile/list_cost_usd": co.list_cost_usd,
            "cost/list_usd": total.list_cost_usd,
            "eval/cache_hits": ev.cache_hits, "compile/cache_hits": co.cache_hits,
            "lm/calls": total.calls, "lm/errors": total.errors, "lm/retries": total.retries,
            "lm/usage_estimated": total.estimated,
        }
        test_cost = self._test_cost()
        values["cost/usd_per_example"] = test_cost / n_test if n_test else 0.0
        return values

    def _test_cost(self) -> float:
        if not self.raw_path.exists():
            return 0.0
        return sum(r.get("cost_usd") or 0.0 for r in self._raw_rows() if not r.get("resumed"))

    def _log_raw(self) -> None:
        from dspy_mlflow.job.logging import log_raw_outputs

        if not self.logged_raw:
            self.logged_raw = True
            log_raw_outputs(self.raw_path)

    def _log_program(self, program, example: tuple[dict, dict] | None):
        from dspy_mlflow.job.logging import log_program

        return log_program(program, self.workdir, log_model=bool(self.conf["tracking"]["log_model"]),
                           example=example, model_cfg=self.model_cfg)

    def _register(self, info) -> None:
        import mlflow

        registry = self.conf["registry"]
        if info is None or not registry.get("register"):
            return
        from dspy_mlflow.project_loader import signature_hash
        from dspy_mlflow.registry.register import register_program

        resolved = {**self.conf, "optimizer": {**self.conf["optimizer"], "name": self.resolved_optimizer,
                                               **self.chosen_hyperparameters}}
        version = register_program(
            run_id=mlflow.active_run().info.run_id, model_uri=info.model_uri,
            name=registry.get("name") or self.project.name, cfg=resolved, metrics=dict(self.metrics),
            signature_hash=signature_hash(self.project.signature), parent=self.parent,
        )
        self.model_version = str(version.version)
        mlflow.set_tag(f"{TAG}.model_version", f"{version.name}/{version.version}")

    def log_partial(self) -> None:
        """On failure: whatever usage and raw outputs exist are still logged (best effort)."""
        done = len(self._raw_rows())
        with contextlib.suppress(Exception):
            if self.ledger is not None:
                self._metrics(self._usage_values(n_test=done))
        with contextlib.suppress(Exception):
            self._log_raw()
