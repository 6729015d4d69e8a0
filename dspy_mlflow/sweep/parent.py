"""A sweep's MLflow parent run: opened before its jobs, given the leaderboard and ended after them.

``open`` creates the parent run and writes its id into the sweep dir, where every job (in this
process or another launcher's) finds it. ``close`` builds the leaderboard from the jobs' records,
logs it on the parent (MLflow table + CSV), prints it, ends the parent, and exits non-zero when a
job failed. If the sweep dies first, the parent is ended KILLED.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

from omegaconf import DictConfig

from dspy_mlflow import names
from dspy_mlflow.errors import DspyMlflowError, one_line
from dspy_mlflow.plan.forecast import refuse_over_budget
from dspy_mlflow.quiet import quiet_environment, quiet_libraries
from dspy_mlflow.sweep.leaderboard import COMPARED, build_leaderboard, format_board, log_leaderboard
from dspy_mlflow.sweep.state import read_jobs, write_sweep
from dspy_mlflow.tracking.evaluation import log_run_evaluation, max_examples_of
from dspy_mlflow.tracking.store import check_reachable
from dspy_mlflow.tracking.traces import flush_pending_traces


class SweepParent:
    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.tracking_uri: str | None = None

    def open(self, config: DictConfig) -> None:
        """Create the sweep's parent run (or adopt `mlflow run`'s) and write its id into the sweep dir."""
        quiet_environment()
        quiet_libraries()
        import mlflow
        from mlflow import MlflowClient

        self.tracking_uri = str(config.tracking.uri)
        try:
            check_reachable(self.tracking_uri)
            budget = config.budget.get("sweep_max_cost_usd")
            if budget is not None:
                reason = refuse_over_budget(list(config.hydra.overrides.task), float(budget))
                if reason:
                    print(f"error: {reason}", file=sys.stderr)
                    sys.exit(1)
        except DspyMlflowError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        mlflow.set_tracking_uri(self.tracking_uri)
        client = MlflowClient(self.tracking_uri)
        sweep_id = time.strftime("%Y%m%d-%H%M%S") + f"-{abs(hash(str(config.hydra.sweep.dir))) % 10_000:04d}"
        tags = {names.SWEEP_ID: sweep_id, names.SWEEP_PARENT: "true",
                names.SWEEP_OVERRIDES: " ".join(config.hydra.overrides.task)[:5000]}
        # under `mlflow run`, the run it created is the parent; jobs must not inherit its id
        launched = os.environ.pop("MLFLOW_RUN_ID", None)
        if launched:
            run = client.get_run(launched)
            for key, value in tags.items():
                client.set_tag(launched, key, value)
        else:
            experiment = mlflow.set_experiment(str(config.tracking.experiment))
            run = client.create_run(experiment.experiment_id, run_name=names.sweep_run_name(sweep_id), tags=tags)
        self.parent_run_id = run.info.run_id
        write_sweep(config.hydra.sweep.dir, sweep_id=sweep_id, parent_run_id=self.parent_run_id,
                    experiment_id=run.info.experiment_id)
        print(f"sweep {sweep_id}: parent run {self.parent_run_id} (experiment {run.info.experiment_id})")
        atexit.register(self.end_if_open, "KILLED")

    def end_if_open(self, status: str, reason: str | None = None) -> None:
        if not self.parent_run_id:
            return
        from mlflow import MlflowClient

        client = MlflowClient(self.tracking_uri)
        if client.get_run(self.parent_run_id).info.status == "RUNNING":
            if reason:
                client.set_tag(self.parent_run_id, names.ERROR, reason[:5000])
            client.set_terminated(self.parent_run_id, status)

    def close(self, config: DictConfig) -> None:
        """Log the leaderboard on the parent, end it, and exit non-zero when a job failed."""
        if not self.parent_run_id:
            return
        from mlflow import MlflowClient

        flush_pending_traces(config.tracking)  # the traces its jobs left to the sweep's end
        jobs = read_jobs(config.hydra.sweep.dir)
        board = build_leaderboard(self.tracking_uri, jobs)
        log_leaderboard(self.tracking_uri, self.parent_run_id, board, config.hydra.sweep.dir)
        failed = [j for j in jobs if j.get("status") == "FAILED"]
        client = MlflowClient(self.tracking_uri)
        client.log_metric(self.parent_run_id, "sweep/jobs", len(jobs))
        client.log_metric(self.parent_run_id, "sweep/failed", len(failed))
        if failed:
            client.set_tag(self.parent_run_id, names.ERROR, f"{len(failed)} of {len(jobs)} jobs failed")
        _log_best_views(client, board, config.tracking)
        client.set_terminated(self.parent_run_id, "FAILED" if failed else "FINISHED")
        print(f"\nleaderboard (sweep parent run {self.parent_run_id})\n{format_board(board)}")
        if failed:
            for job in failed:
                print(f"FAILED job {job['job']} ({' '.join(job.get('overrides') or [])}): {job.get('error')}",
                      file=sys.stderr)
            sys.exit(1)


def _log_best_views(client, board, tracking) -> None:
    """The evaluation view of the sweep's ``tracking.sweep_evaluation_views`` best jobs (their jobs
    logged none: a trace per example costs ~25 ms CPU). A job whose view cannot be logged costs a
    printed line, not the sweep."""
    top = tracking.get("sweep_evaluation_views")
    if top is None or not tracking.get("evaluation_view", True):
        return

    best = board[board["status"].isin(COMPARED) & board["run_id"].notna()].head(int(top))
    logged = []
    for run_id in best["run_id"]:
        try:
            log_run_evaluation(client, run_id, max_examples=max_examples_of(tracking))
            logged.append(run_id[:8])
        except Exception as exc:  # the view is a convenience: the sweep's records are complete without it
            print(f"evaluation view not logged for run {run_id}: {one_line(exc)}")
    if logged:
        print(f"evaluation view: the best {len(logged)} jobs ({', '.join(logged)}); add others with "
              f"python -m dspy_mlflow view RUN_ID")
