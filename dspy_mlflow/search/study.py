"""``search_compile``: an Optuna study over the optimizer's hyperparameters, inside the job.

Each trial samples the params (:mod:`.space`), compiles with
:func:`dspy_mlflow.steps.optimizers.compile_program`, scores the program on dev, and is
logged as a nested MLflow run ``trial-<n>`` under the job's run (params
``optimizer.<name>``, metrics ``dev/score``, ``trial/tokens_in``, ``trial/tokens_out``,
``trial/cost_usd``, tag ``dspy_mlflow.trial``). Its DSPy state is saved to
``<workdir>/trials/<n>.json`` (and logged to the trial run as ``program/<n>.json``).

Resumable and shareable: the study lives in a storage (:mod:`.storage`) under a
name derived from the config, so the same command run again — or several processes
(on several machines, with a PostgreSQL storage) at once — continue one study until exactly
``search.n_trials`` trials are COMPLETE: before each trial a worker counts COMPLETE plus
RUNNING trials and waits or stops; a trial that finds ``n_trials`` trials ahead of it is
PRUNED (marked ``surplus``) without running. A dead worker's RUNNING trial is found by
Optuna's heartbeat (``search.heartbeat_s``, ``search.grace_s``), failed by
``optuna.storages.fail_stale_trials`` and queued again by ``RetryFailedTrialCallback``.

One MLflow run per study: the first worker creates ``study-<name>`` (tag
``dspy_mlflow.study_run``) and stores its id in the study's user attr ``mlflow_run_id``;
every worker's trial runs are nested under it (each job's own run keeps the summary).

The job's program is the trial picked by ``search.select`` (over the Pareto front when
there are several objectives): ``best_score_under_budget`` (highest dev score whose
trial cost <= budget.max_cost_usd, else the cheapest), ``best_score``, ``lowest_cost``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dspy_mlflow import names
from dspy_mlflow.errors import BudgetExceeded, ConfigError, DspyMlflowError
from dspy_mlflow.search.plots import log_figures
from dspy_mlflow.search.space import OBJECTIVES, apply, merged_space, suggest, unused_point
from dspy_mlflow.search.storage import display_url, open_study, storage_url, study_lock, study_name
from dspy_mlflow.steps.evaluate import evaluate
from dspy_mlflow.steps.optimizers import compile_program

HEARTBEAT_S = 10  # Optuna's heartbeat interval (search.heartbeat_s)
GRACE_S = 60      # a RUNNING trial without a beat for this long is stale (search.grace_s)
WORKER = f"{socket.gethostname()}:{os.getpid()}"
STUDY_RUN_ATTR = "mlflow_run_id"


def make_sampler(name: str, seed: int | None):
    import optuna.samplers as s

    factories = {
        "tpe": lambda: s.TPESampler(seed=seed),
        "random": lambda: s.RandomSampler(seed=seed),
        "cmaes": lambda: s.CmaEsSampler(seed=seed, warn_independent_sampling=False),
        "gp": lambda: s.GPSampler(seed=seed),
        "qmc": lambda: s.QMCSampler(seed=seed, warn_independent_sampling=False),
        "nsga2": lambda: s.NSGAIISampler(seed=seed),
    }
    return factories[name]()


def _usage_snapshot(ledger) -> tuple[int, int, float]:
    total = ledger.total
    return total.tokens_in, total.tokens_out, total.cost_usd


class _Search:
    def __init__(self, job, entry: Mapping, program, trainset, devset, lm):
        import optuna

        self.job, self.entry, self.program = job, dict(entry), program
        self.trainset, self.devset, self.lm = trainset, devset, lm
        conf = job.conf
        self.search = dict(conf["search"])
        self.space = merged_space(conf)
        self.objectives = list(self.search.get("objectives") or ["dev_score"])
        self.n_trials = int(self.search.get("n_trials", 10))
        self.url = storage_url(conf)
        self.name = study_name(conf)
        directions = [OBJECTIVES[o] for o in self.objectives]
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage, self.study = open_study(
            self.url, self.name, directions, heartbeat_s=int(self.search.get("heartbeat_s") or HEARTBEAT_S),
            grace_s=int(self.search.get("grace_s") or GRACE_S), on_stale=self._on_stale)
        self.study_run_id: str | None = None
        have = [d.name.lower() for d in self.study.directions]
        if have != directions:
            raise ConfigError("search.study_name", self.name,
                              f"a study whose directions match objectives {self.objectives} "
                              f"(this one has {have}); pick another study_name")
        self.programs: dict[int, Any] = {}
        self.ran: list[int] = []
        self.failures = 0
        self.stop_error: BaseException | None = None

    # -- one trial -----------------------------------------------------------
    def objective(self, trial):
        import mlflow
        import optuna
        from optuna.trial import TrialState

        trial.set_user_attr("worker", WORKER)
        n = trial.number
        ahead = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
                 if t.number < n]
        if len(ahead) >= self.n_trials:
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned(f"search.n_trials={self.n_trials} already reached by other workers")
        conf, job = self.job.conf, self.job
        values = suggest(trial, self.space)
        self._skip_duplicate(trial, values)
        before = _usage_snapshot(job.ledger)
        t0 = time.perf_counter()
        # no dspy_mlflow.config_hash tag here: the job's "already FINISHED" lookup must not find trials
        tags = {names.TRIAL: str(n), names.STUDY: self.name}
        # Optuna's HeartbeatThread beats for this trial while study.optimize runs it
        with mlflow.start_run(run_id=self._trial_run(n, tags), nested=True) as child:
            trial.set_user_attr("mlflow_run_id", child.info.run_id)
            mlflow.log_params({f"optimizer.{k}": v for k, v in values.items()} |
                              {"optimizer": self.entry["name"], "trial": n})
            try:
                compiled = compile_program(apply(self.entry, values), self.program.deepcopy(),
                                           metric=job.project.metric, trainset=self.trainset, devset=self.devset,
                                           lm=self.lm, num_threads=int(conf["eval"]["num_threads"]),
                                           seed=int(conf["seed"]))
                if job.ledger.exceeded:
                    raise BudgetExceeded(job.ledger.total.cost_usd, job.ledger.max_cost_usd)
                result = evaluate(compiled, self.devset, job.project.metric, ledger=job.ledger, split=f"trial{n}",
                                  num_threads=int(conf["eval"]["num_threads"]), progress=False,
                                  trace_sampling=job.trace_sampling, max_traced=job.max_traced)
            except BudgetExceeded as exc:
                self.stop_error = exc
                raise
            except Exception as exc:
                self.failures += 1
                print(f"search: trial {n} {values} failed: {type(exc).__name__}: {exc}")
                raise
            after = _usage_snapshot(job.ledger)
            tokens_in, tokens_out, cost = after[0] - before[0], after[1] - before[1], after[2] - before[2]
            path = Path(job.workdir) / "trials" / f"{n}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            compiled.save(str(path))
            mlflow.log_artifact(str(path), artifact_path="program")
            mlflow.log_metrics({"dev/score": result.score, "trial/tokens_in": tokens_in,
                                "trial/tokens_out": tokens_out, "trial/cost_usd": cost,
                                "cost/total_usd": cost, "trial/duration_s": time.perf_counter() - t0,
                                "eval/errors": result.errors})
        for key, value in {"program_path": str(path.resolve()), "dev_score": result.score, "cost_usd": cost,
                           "tokens_in": tokens_in, "tokens_out": tokens_out}.items():
            trial.set_user_attr(key, value)
        self.programs[n] = compiled
        self.ran.append(n)
        print(f"search: trial {n} {values} dev={result.score:.3f} tokens {tokens_in}/{tokens_out} cost ${cost:.6f}")
        scores = {"dev_score": result.score, "cost": cost, "tokens": float(tokens_in + tokens_out)}
        out = [scores[o] for o in self.objectives]
        return out[0] if len(out) == 1 else out

    def _skip_duplicate(self, trial, values: dict) -> None:
        """Optuna's own recipe for duplicated samples (its FAQ): prune the trial before it costs
        anything. Here an unused point of a finite space is queued for the next trial; once the
        space is exhausted a repeat runs."""
        import optuna
        from optuna.trial import TrialState

        live = (TrialState.COMPLETE, TrialState.RUNNING)
        taken = [t.params for t in self.study.get_trials(deepcopy=False, states=live)
                 if t.number != trial.number]
        if values not in taken:
            return
        fresh = unused_point(self.space, taken, seed=int(self.search.get("seed") or 0) + trial.number)
        if fresh is None:
            return
        self.study.enqueue_trial(fresh)
        trial.set_user_attr("duplicate", True)
        raise optuna.TrialPruned(f"parameters {values} already tried; queued unused {fresh}")

    # -- the loop ------------------------------------------------------------
    def _on_stale(self, study, trial) -> None:
        print(f"search: trial {trial.number} of a dead worker ({trial.user_attrs.get('worker')}) marked FAIL "
              f"(no Optuna heartbeat for {self.search.get('grace_s') or GRACE_S} s); queued again")

    def fail_stale(self) -> None:
        import warnings

        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)

    # -- the study's MLflow run ------------------------------------------------
    def study_run(self) -> str:
        """The study's one MLflow run (created by the first worker; its id in a study user attr)."""
        import mlflow

        client = mlflow.MlflowClient()
        for _ in range(2):
            run_id = self.study.user_attrs.get(STUDY_RUN_ATTR)
            if run_id:
                try:
                    run = client.get_run(run_id)
                    if run.info.lifecycle_stage == "active":
                        if run.info.status != "RUNNING" and self._trials_to_run():
                            client.update_run(run_id, "RUNNING")
                        self.study_run_id = run_id
                        return run_id
                except Exception:  # another tracking store, or deleted: make one here
                    pass
            with study_lock(self.url, f"{names.STUDY_RUN}.{self.name}"):
                if self.study.user_attrs.get(STUDY_RUN_ATTR) not in (None, run_id):
                    continue  # another worker made it meanwhile
                experiment_id = mlflow.active_run().info.experiment_id
                run = client.create_run(experiment_id, run_name=names.study_run_name(self.name),
                                        tags={names.STUDY: self.name, names.STUDY_RUN: "true"})
                client.log_batch(run.info.run_id, params=[
                    mlflow.entities.Param("search.study", self.name),
                    mlflow.entities.Param("search.storage_url", display_url(self.url)),
                    mlflow.entities.Param("search.objectives", ",".join(self.objectives))])
                self.study.set_user_attr(STUDY_RUN_ATTR, run.info.run_id)
                self.study_run_id = run.info.run_id
                return run.info.run_id
        raise DspyMlflowError(f"search: no MLflow run for study {self.name}")

    def _trials_to_run(self) -> bool:
        return len(self.complete_trials()) < self.n_trials

    def _trial_run(self, n: int, tags: dict) -> str:
        """A trial's MLflow run, nested under the study's run (not the job's)."""
        import mlflow

        client = mlflow.MlflowClient()
        parent = self.study_run_id or self.study_run()
        experiment_id = client.get_run(parent).info.experiment_id
        run = client.create_run(experiment_id, run_name=f"trial-{n}",
                                tags={**tags, "mlflow.parentRunId": parent})
        return run.info.run_id

    def end_study_run(self) -> None:
        """Once the study has its n_trials, its run is FINISHED with the study's best score."""
        import mlflow

        if not self.study_run_id or self._trials_to_run():
            return
        client = mlflow.MlflowClient()
        run = client.get_run(self.study_run_id)
        if run.info.status != "RUNNING":
            return
        complete = self.complete_trials()
        now = int(time.time() * 1000)
        client.log_batch(self.study_run_id, metrics=[
            mlflow.entities.Metric("search/best_dev_score", max(self.score(t) for t in complete), now, 0),
            mlflow.entities.Metric("search/n_trials", len(complete), now, 0)])
        client.set_terminated(self.study_run_id, "FINISHED")

    def run(self) -> None:
        from optuna.trial import TrialState

        timeout = self.search.get("timeout_s")
        deadline = time.monotonic() + float(timeout) if timeout else None
        seed = self.search.get("seed", 0)
        while True:
            self.fail_stale()
            trials = self.study.get_trials(deepcopy=False)
            complete = sum(t.state == TrialState.COMPLETE for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if complete >= self.n_trials:
                break
            if deadline is not None and time.monotonic() > deadline:
                print(f"search: search.timeout_s={timeout} reached with {complete}/{self.n_trials} trials")
                break
            if self.failures >= self.n_trials:
                print(f"search: {self.failures} trials failed in this process; stopping")
                break
            if complete + running >= self.n_trials:  # the rest are running elsewhere: wait for them
                time.sleep(1.0)
                continue
            # reseeded per trial: a resumed or second worker does not replay the same points
            self.study.sampler = make_sampler(str(self.search.get("sampler", "tpe")),
                                              None if seed is None else int(seed) + len(trials))
            self.study.optimize(self.objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
            if self.stop_error is not None:
                raise self.stop_error

    # -- the result ----------------------------------------------------------
    def complete_trials(self):
        from optuna.trial import TrialState

        return self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def score(self, t) -> float:
        return float(t.values[self.objectives.index("dev_score")])

    def cost(self, t) -> float:
        if "cost" in self.objectives:
            return float(t.values[self.objectives.index("cost")])
        return float(t.user_attrs.get("cost_usd") or 0.0)

    def choose(self):
        complete = self.complete_trials()
        if not complete:
            raise DspyMlflowError(f"search: no trial of study {self.name} completed")
        candidates = self.study.best_trials if len(self.objectives) > 1 else complete
        candidates = candidates or complete
        rule = self.search.get("select") or "best_score_under_budget"
        by_score = lambda t: (-self.score(t), self.cost(t), t.number)  # noqa: E731
        by_cost = lambda t: (self.cost(t), -self.score(t), t.number)  # noqa: E731
        if rule == "best_score":
            return min(candidates, key=by_score)
        if rule == "lowest_cost":
            return min(candidates, key=by_cost)
        limit = self.job.conf.get("budget", {}).get("max_cost_usd")
        under = [t for t in candidates if limit is None or self.cost(t) <= float(limit)]
        return min(under, key=by_score) if under else min(candidates, key=by_cost)

    def program_of(self, trial):
        import mlflow

        if trial.number in self.programs:
            return self.programs[trial.number], "memory"
        path = trial.user_attrs.get("program_path")
        if path and Path(path).exists():
            program = self.program.deepcopy()
            program.load(path)
            return program, "file"
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            try:
                local = mlflow.artifacts.download_artifacts(run_id=run_id,
                                                            artifact_path=f"program/{trial.number}.json")
                program = self.program.deepcopy()
                program.load(local)
                return program, "artifact"
            except Exception:
                pass

        conf = self.job.conf
        print(f"search: program of trial {trial.number} not found; recompiling {trial.params}")
        program = compile_program(apply(self.entry, trial.params), self.program.deepcopy(),
                                  metric=self.job.project.metric, trainset=self.trainset, devset=self.devset,
                                  lm=self.lm, num_threads=int(conf["eval"]["num_threads"]), seed=int(conf["seed"]))
        return program, "recompiled"

    def log_summary(self, chosen) -> None:
        import mlflow

        complete = self.complete_trials()
        mlflow.log_params({f"search.best.{k}": v for k, v in chosen.params.items()})
        mlflow.log_metrics({
            "search/best_dev_score": max(self.score(t) for t in complete),
            "search/chosen_dev_score": self.score(chosen),
            "search/chosen_trial": chosen.number,
            "search/n_trials": len(complete),
            "search/trials_this_run": len(self.ran),
        })
        mlflow.set_tag(names.SEARCH_CHOSEN_TRIAL, str(chosen.number))
        log_figures(self.study, self.objectives)


def search_compile(job, entry, program, *, trainset, devset, lm):
    """Run (or continue) the study; log its summary to the job's run; return the chosen program."""
    import mlflow

    search = _Search(job, entry, program, trainset, devset, lm)
    study_run = search.study_run()
    mlflow.log_params({"search.study": search.name, "search.storage_url": display_url(search.url)})
    mlflow.set_tags({names.STUDY: search.name, names.STUDY_RUN_ID: study_run})
    print(f"search: study {search.name} in {display_url(search.url)}: "
          f"{len(search.complete_trials())}/{search.n_trials} trials complete")
    try:
        search.run()
        search.end_study_run()
    finally:
        if search.complete_trials():
            try:
                search.log_summary(search.choose())
            except Exception as exc:  # the summary must not hide the search's own error
                print(f"search: summary not fully logged: {type(exc).__name__}: {exc}")
    chosen = search.choose()
    program_out, source = search.program_of(chosen)
    mlflow.set_tag(names.SEARCH_PROGRAM_SOURCE, source)
    print(f"search: chose trial {chosen.number} {chosen.params} (dev={search.score(chosen):.3f}, "
          f"rule {search.search.get('select') or 'best_score_under_budget'}, program from {source})")
    log_chosen_hyperparameters(job)
    return program_out


def log_chosen_hyperparameters(job) -> None:
    """optimizer.<param> = the value of the trial the search chose (logged by it as search.best.*)."""
    import mlflow

    params = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    prefix = names.PARAM_SEARCH_BEST
    chosen = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    mlflow.log_params({f"optimizer.{k}": v for k, v in chosen.items()})
    job.chosen_hyperparameters = chosen
