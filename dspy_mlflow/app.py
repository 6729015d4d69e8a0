"""The Hydra application: ``main(cfg)`` is thin and calls :func:`dspy_mlflow.job.run.run`."""

from __future__ import annotations

import sys
import warnings

import hydra
from omegaconf import DictConfig

from dspy_mlflow.config.paths import conf_dir
from dspy_mlflow.config.schema import register_schemas

register_schemas()
# the user's ./conf search path is optional; set here so joblib workers, which import this module, agree
warnings.filterwarnings("ignore", message=r".*hydra\.searchpath in main.*is not available")


def _summary(result) -> str:
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


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
def main(cfg: DictConfig):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from dspy_mlflow.errors import DspyMlflowError
    from dspy_mlflow.sweep.state import record_job, sweep_context

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    sweep = sweep_context(hc.sweep.dir) if multirun else None
    try:
        from dspy_mlflow.job.run import run

        result = run(cfg, sweep=sweep, output_dir=hc.runtime.output_dir)
    except DspyMlflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if multirun:
            run_id = getattr(exc, "run_id", None)
            if run_id is None and sweep is not None:  # failed before its run existed
                from omegaconf import OmegaConf

                from dspy_mlflow.sweep.failed import record_failed_run

                run_id = record_failed_run(OmegaConf.to_container(cfg, resolve=True), sweep_id=sweep.sweep_id,
                                           parent_run_id=sweep.parent_run_id, error=str(exc))
            record_job(hc.sweep.dir, hc.job.num, run_id=run_id, status="FAILED",
                       error=str(exc), overrides=list(hc.overrides.task))
            return None
        sys.exit(1)
    print(_summary(result))
    if multirun:
        record_job(hc.sweep.dir, hc.job.num, run_id=result.run_id, status=result.status, error=None,
                   overrides=list(hc.overrides.task))
    return result.objective


def hydra_main() -> None:
    main()
