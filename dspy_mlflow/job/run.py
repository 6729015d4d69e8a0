"""``run(cfg)``: one job as one MLflow run.

validate -> load the project and hash the job -> skip it if an identical job FINISHED -> execute
its steps in an MLflow run (job/execute.py). Everything before the skip is asked of the store
without MLflow, so a skipped job costs little.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dspy_mlflow.job.result import JobResult, skipped
from dspy_mlflow.job.sweep_context import SweepContext
from dspy_mlflow.job.validation import validate_job
from dspy_mlflow.project.loader import check_program, load_project
from dspy_mlflow.quiet import quiet_environment
from dspy_mlflow.steps.prepare import prepare
from dspy_mlflow.tracking.finished import lookup
from dspy_mlflow.tracking.store import check_reachable

__all__ = ["JobResult", "SweepContext", "run", "skipped"]


def plain_config(cfg) -> dict[str, Any]:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return json.loads(json.dumps(cfg, default=str))


def run(cfg, *, sweep: SweepContext | None = None, output_dir: str | Path | None = None) -> JobResult:
    """Run one job described by a composed config (DictConfig or plain dict)."""
    quiet_environment()
    conf = plain_config(cfg)
    validate_job(conf)  # ConfigError before anything runs
    project = load_project(conf["project"])
    if not conf["program"].get("init_from"):
        check_program(project, conf["strategy"])  # a factory that raises fails before any run exists
    prepared = prepare(conf, project)
    launched_by_mlflow_run = "MLFLOW_RUN_ID" in os.environ  # that run exists already: fill it, never skip
    may_skip = not (conf["tracking"]["rerun"] or launched_by_mlflow_run)
    uri = str(conf["tracking"]["uri"])
    server = uri.startswith(("http://", "https://"))
    if server:  # a server that does not answer: its one-line error first, not after the lookup's wait
        check_reachable(uri)
    if may_skip:  # asked of the store before MLflow is imported: a skip costs little
        done = lookup(uri, prepared.hashes, experiment=str(conf["tracking"]["experiment"]),
                      experiment_id=sweep.experiment_id if sweep else None)
        if done is not None:
            return skipped(done.run_id, prepared.hashes, done.metrics, done.optimizer)
    if not server:
        check_reachable(uri)
    # the lazy boundary of a job: MLflow, DSPy's LM and the steps load only for a job that runs
    from dspy_mlflow.job import execute

    return execute.execute(prepared, sweep=sweep, output_dir=output_dir, may_skip=may_skip)
