"""The Hydra application: ``main(cfg)`` is thin and calls :func:`dspy_mlflow.job.run.run`.

``run_hydra()`` runs it the way the command line wants: Hydra's errors as one ``error:`` line
(``HYDRA_FULL_ERROR=1`` shows Hydra's own report), Ctrl-C as exit 130 with the run ended KILLED.
"""

from __future__ import annotations

import os
import sys
import warnings

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dspy_mlflow.config.hydra_errors import describe
from dspy_mlflow.config.paths import conf_dir
from dspy_mlflow.errors import DspyMlflowError
from dspy_mlflow.job.result import JobResult
from dspy_mlflow.job.run import run
from dspy_mlflow.job.validation import register_config_schemas
from dspy_mlflow.sweep import callback
from dspy_mlflow.sweep.failed import record_failed_run
from dspy_mlflow.sweep.state import record_job, sweep_context

register_config_schemas()
# the user's ./conf search path is optional; set here so joblib workers, which import this module, agree
warnings.filterwarnings("ignore", message=r".*hydra\.searchpath in main.*is not available")


def _summary(result: JobResult) -> str:
    m = result.metrics
    if result.status == "SKIPPED":
        return f"skipped (run {result.run_id}): test/score={m.get('test/score', float('nan')):.3f}"
    return (
        f"run {result.run_id} {result.status}: optimizer={result.optimizer} "
        f"dev/baseline={m.get('dev/baseline_score', 0):.3f} dev={m.get('dev/score', 0):.3f} "
        f"test={m.get('test/score', 0):.3f} | tokens in/out {int(m.get('eval/tokens_in', 0) + m.get('compile/tokens_in', 0))}"
        f"/{int(m.get('eval/tokens_out', 0) + m.get('compile/tokens_out', 0))} "
        f"cost ${m.get('cost/total_usd', 0):.4f} (list ${m.get('cost/list_usd', 0):.4f}) | "
        f"lm calls {int(m.get('lm/calls', 0))}, cache hits "
        f"{int(m.get('eval/cache_hits', 0) + m.get('compile/cache_hits', 0))}, retries {int(m.get('lm/retries', 0))}"
        f" | test errors {int(m.get('eval/errors', 0))}"
        + (f" | registered version {result.model_version}" if result.model_version else "")
    )


def _record_failure(hc, cfg: DictConfig, sweep, exc: DspyMlflowError) -> None:
    """A sweep job that failed: its FAILED run (made now if it failed before its run existed) and its record."""
    run_id = getattr(exc, "run_id", None)
    if run_id is None and sweep is not None:
        run_id = record_failed_run(OmegaConf.to_container(cfg, resolve=True), sweep_id=sweep.sweep_id,
                                   parent_run_id=sweep.parent_run_id, error=str(exc))
    record_job(hc.sweep.dir, hc.job.num, run_id=run_id, status="FAILED", error=str(exc),
               overrides=list(hc.overrides.task))


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
def main(cfg: DictConfig):
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    sweep = sweep_context(hc.sweep.dir, flushes_traces=callback.open_sweep() is not None) if multirun else None
    try:
        result = run(cfg, sweep=sweep, output_dir=hc.runtime.output_dir)
    except DspyMlflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if not multirun:
            sys.exit(1)
        _record_failure(hc, cfg, sweep, exc)
        return None
    print(_summary(result))
    if multirun:
        record_job(hc.sweep.dir, hc.job.num, run_id=result.run_id, status=result.status, error=None,
                   overrides=list(hc.overrides.task))
    return result.objective


def run_hydra() -> int:
    """Hydra raises its errors instead of printing them over several lines: we print one line."""
    hydra_reports = "HYDRA_FULL_ERROR" in os.environ
    if not hydra_reports:
        os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
        return 0
    except KeyboardInterrupt as exc:
        run_id = getattr(exc, "run_id", None)
        print("interrupted" + (f": run {run_id} ended KILLED, partial results kept" if run_id else ""),
              file=sys.stderr)
        return 130
    except Exception as exc:
        line = None if hydra_reports else describe(exc, sys.argv[1:])
        if line is None:
            raise
        callback.fail_open_sweep(line)  # a sweep that stops on a config error: its parent ends FAILED
        print(f"error: {line}", file=sys.stderr)
        return 1
    finally:
        if not hydra_reports:
            os.environ.pop("HYDRA_FULL_ERROR", None)
