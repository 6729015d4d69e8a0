"""``search_compile``: an Optuna study over the optimizer's hyperparameters, inside the job.

Each trial samples the params (:mod:`.space`), compiles with
:func:`dspy_mlflow.job.optimizers.compile_program`, scores the program on dev, and is
logged as a nested MLflow run ``trial-<n>`` under the job's run (params
``optimizer.<name>``, metrics ``dev/score``, ``trial/tokens_in``, ``trial/tokens_out``,
``trial/cost_usd``, tag ``dspy_mlflow.trial``). Its DSPy state is saved to
``<workdir>/trials/<n>.json`` (and logged to the trial run as ``program/<n>.json``).

Resumable and shareable: the study lives in a storage (:mod:`.storage`) under a
name derived from the config, so the same command run again — or several processes
at once — continue one study until exactly ``search.n_trials`` trials are COMPLETE:
before each trial a worker counts COMPLETE plus live RUNNING trials and waits or
stops; a trial that finds ``n_trials`` trials ahead of it is PRUNED (marked
``surplus``) without running. RUNNING trials of dead workers (same host, pid gone, or
no heartbeat for ``STALE_S``) are marked FAIL and do not count.

The job's program is the trial picked by ``search.select`` (over the Pareto front when
there are several objectives): ``best_score_under_budget`` (highest dev score whose
trial cost <= budget.max_cost_usd, else the cheapest), ``best_score``, ``lowest_cost``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dspy_mlflow.errors import BudgetExceeded, ConfigError, DspyMlflowError

TAG = "dspy_mlflow"
STALE_S = 120.0  # a RUNNING trial whose heartbeat is older than this is dead
HEARTBEAT_S = 10.0
WORKER = f"{socket.gethostname()}:{os.getpid()}"


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(trial, now: float | None = None) -> bool:
    """A RUNNING trial whose worker is gone."""
    from optuna.trial import TrialState

    if trial.state != TrialState.RUNNING:
        return False
    worker = str(trial.user_attrs.get("worker") or "")
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
        return True
    now = time.time() if now is None else now
    beat = trial.user_attrs.get("heartbeat")
    if beat is None and trial.datetime_start is not None:
        # a live worker names itself within milliseconds of starting a trial
        limit = STALE_S if worker else 2 * HEARTBEAT_S
        return now - trial.datetime_start.timestamp() > limit
    return beat is not None and now - float(beat) > STALE_S


class _Heartbeat:
    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="optuna-trial-heartbeat")

    def _run(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                self.storage.set_trial_user_attr(self.trial_id, "heartbeat", time.time())
            except Exception:
                return

    def __enter__(self):
        self.storage.set_trial_user_attr(self.trial_id, "heartbeat", time.time())
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def _usage_snapshot(ledger) -> tuple[int, int, float]:
    total = ledger.total
    return total.tokens_in, total.tokens_out, total.cost_usd


class _Search:
    def __init__(self, job, entry: Mapping, program, trainset, devset, lm):
        import optuna

        from dspy_mlflow.search.space import OBJECTIVES, merged_space
        from dspy_mlflow.search.storage import make_storage, storage_url, study_name

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
        self.storage = make_storage(self.url)
        self.study = optuna.create_study(storage=self.storage, study_name=self.name, directions=directions,
                                         load_if_exists=True)
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

        from dspy_mlflow.job.evaluate import evaluate
        from dspy_mlflow.job.optimizers import compile_program
        from dspy_mlflow.search.space import apply, suggest

        trial.set_user_attr("worker", WORKER)
        n = trial.number
        ahead = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
                 if t.number < n and not is_stale(t)]
        if len(ahead) >= self.n_trials:
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned(f"search.n_trials={self.n_trials} already reached by other workers")
        conf, job = self.job.conf, self.job
        values = suggest(trial, self.space)
        self._skip_duplicate(trial, values)
        before = _usage_snapshot(job.ledger)
        t0 = time.perf_counter()
        # no dspy_mlflow.config_hash tag here: the job's "already FINISHED" lookup must not find trials
        tags = {f"{TAG}.trial": str(n), f"{TAG}.study": self.name}
        with _Heartbeat(self.storage, trial._trial_id), \
                mlflow.start_run(nested=True, run_name=f"trial-{n}", tags=tags) as child:
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
                                  trace_sampling=job.trace_sampling)
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

        from dspy_mlflow.search.space import unused_point

        live = (TrialState.COMPLETE, TrialState.RUNNING)
        taken = [t.params for t in self.study.get_trials(deepcopy=False, states=live)
                 if t.number != trial.number and not is_stale(t)]
        if values not in taken:
            return
        fresh = unused_point(self.space, taken, seed=int(self.search.get("seed") or 0) + trial.number)
        if fresh is None:
            return
        self.study.enqueue_trial(fresh)
        trial.set_user_attr("duplicate", True)
        raise optuna.TrialPruned(f"parameters {values} already tried; queued unused {fresh}")

    # -- the loop ------------------------------------------------------------
    def fail_stale(self) -> None:
        from optuna.trial import TrialState

        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if is_stale(t):
                try:
                    self.storage.set_trial_user_attr(t._trial_id, "stale", True)
                    self.storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                    print(f"search: trial {t.number} of a dead worker ({t.user_attrs.get('worker')}) marked FAIL")
                except Exception:
                    pass  # finished meanwhile

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
        from dspy_mlflow.job.optimizers import compile_program
        from dspy_mlflow.search.space import apply

        conf = self.job.conf
        print(f"search: program of trial {trial.number} not found; recompiling {trial.params}")
        program = compile_program(apply(self.entry, trial.params), self.program.deepcopy(),
                                  metric=self.job.project.metric, trainset=self.trainset, devset=self.devset,
                                  lm=self.lm, num_threads=int(conf["eval"]["num_threads"]), seed=int(conf["seed"]))
        return program, "recompiled"

    def log_summary(self, chosen) -> None:
        import mlflow

        from dspy_mlflow.search.plots import log_figures

        complete = self.complete_trials()
        mlflow.log_params({f"search.best.{k}": v for k, v in chosen.params.items()})
        mlflow.log_metrics({
            "search/best_dev_score": max(self.score(t) for t in complete),
            "search/chosen_dev_score": self.score(chosen),
            "search/chosen_trial": chosen.number,
            "search/n_trials": len(complete),
            "search/trials_this_run": len(self.ran),
        })
        mlflow.set_tag(f"{TAG}.search.chosen_trial", str(chosen.number))
        log_figures(self.study, self.objectives)


def search_compile(job, entry, program, *, trainset, devset, lm):
    """Run (or continue) the study; log its summary to the job's run; return the chosen program."""
    import mlflow

    from dspy_mlflow.search.storage import display_url

    search = _Search(job, entry, program, trainset, devset, lm)
    mlflow.log_params({"search.study": search.name, "search.storage_url": display_url(search.url)})
    mlflow.set_tag(f"{TAG}.study", search.name)
    print(f"search: study {search.name} in {display_url(search.url)}: "
          f"{len(search.complete_trials())}/{search.n_trials} trials complete")
    try:
        search.run()
    finally:
        if search.complete_trials():
            try:
                search.log_summary(search.choose())
            except Exception as exc:  # the summary must not hide the search's own error
                print(f"search: summary not fully logged: {type(exc).__name__}: {exc}")
    chosen = search.choose()
    program_out, source = search.program_of(chosen)
    mlflow.set_tag(f"{TAG}.search.program_source", source)
    print(f"search: chose trial {chosen.number} {chosen.params} (dev={search.score(chosen):.3f}, "
          f"rule {search.search.get('select') or 'best_score_under_budget'}, program from {source})")
    return program_out
