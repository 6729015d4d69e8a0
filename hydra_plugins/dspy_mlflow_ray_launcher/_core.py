"""The Ray launcher's engine: one Ray task per job, results back as Hydra ``JobReturn``s.

On the driver, each job's sweep config is composed here (so workers need neither the
driver's config files nor its filesystem), ``tracking.uri`` is resolved once (a relative
sqlite path becomes absolute: only meaningful with ``address=local``), and the sweep's
identity (sweep id, parent run, experiment; :func:`dspy_mlflow.sweep.state.read_sweep`)
travels with the task. On the worker, the job runs with Hydra's own ``run_job`` in a
temporary directory of its own, which is also its sweep dir: the sweep identity is written
there, and the job's records (``sweep/state.read_jobs``) come back with the ``JobReturn``;
the driver writes them into its sweep dir, where the sweep callback's ``on_multirun_end``
reads them. The project comes from the package installed on the worker (or from what
``hydra.launcher.runtime_env`` ships: ``working_dir``, ``py_modules``).

A job whose worker process or node dies is rerun by Ray (``max_retries``); the MLflow run
the lost attempt left RUNNING is ended KILLED here once every task has returned. A job
lost beyond its retries is a FAILED job with a FAILED run, as any job failing before its
run exists.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict

from dspy_mlflow import names
from dspy_mlflow.sweep.failed import record_failed_run
from dspy_mlflow.sweep.state import read_jobs, read_sweep, record_job, write_sweep

log = logging.getLogger(__name__)
LOST_TAG = names.ERROR


def _init_ray(launcher) -> None:
    import ray

    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": True,
                              "configure_logging": False}
    if launcher.runtime_env:
        kwargs["runtime_env"] = OmegaConf.to_container(OmegaConf.create(launcher.runtime_env), resolve=True) \
            if not isinstance(launcher.runtime_env, dict) else dict(launcher.runtime_env)
    if launcher.address == "local":
        ray.init(include_dashboard=False, **kwargs)
    else:
        ray.init(address=launcher.address, **kwargs)


def _pin_tracking(sweep_config: DictConfig) -> str | None:
    """Resolve tracking.uri on the driver (its environment decides), absolute for sqlite."""
    uri = OmegaConf.select(sweep_config, "tracking.uri")
    if uri is None:
        return None
    uri = str(uri)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = uri[len("sqlite:///"):]
        if path and path != ":memory:":
            uri = "sqlite:///" + str(Path(path).resolve())
    sweep_config.tracking.uri = uri
    return uri


def execute_job(sweep_config: DictConfig, task_function, singleton_state: dict, sweep: dict | None):
    """The Ray task: run one job in a temporary directory of its own; return (JobReturn, records)."""

    setup_globals()
    Singleton.set_state(singleton_state)
    old_cwd = os.getcwd()
    workdir = tempfile.mkdtemp(prefix="dspy_mlflow-job-")
    os.chdir(workdir)
    try:
        with open_dict(sweep_config):
            sweep_config.hydra.sweep.dir = workdir
            sweep_config.hydra.runtime.cwd = workdir
        if sweep:
            write_sweep(workdir, **sweep)
        from hydra._internal.callbacks import Callbacks

        context = HydraContext(config_loader=None, callbacks=Callbacks(sweep_config))  # type: ignore[arg-type]
        HydraConfig.instance().set_config(sweep_config)
        ret = run_job(hydra_context=context, task_function=task_function, config=sweep_config,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        if ret.status == JobStatus.FAILED:
            exc = ret._return_value
            try:  # exceptions travel back pickled; one that cannot is replaced by its text
                import pickle

                pickle.dumps(exc)
            except Exception:
                ret._return_value = RuntimeError(f"{type(exc).__name__}: {exc}")
        return ret, read_jobs(workdir), socket.gethostname()
    finally:
        os.chdir(old_cwd)
        shutil.rmtree(workdir, ignore_errors=True)  # what the job keeps is in MLflow


def _lost(sweep_config: DictConfig, overrides: list[str], sweep: dict | None, exc: BaseException) -> tuple:
    """A job Ray could not run to the end (its retries exhausted): a FAILED job with a FAILED run."""

    error = f"the Ray task of this job was lost: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    cfg = OmegaConf.to_container(sweep_config, resolve=False)
    cfg = {k: v for k, v in cfg.items() if k != "hydra"}  # type: ignore[union-attr]
    for group in ("model", "optimizer", "strategy", "project"):
        cfg[group] = {"name": OmegaConf.select(sweep_config, f"{group}.name", default=None)}
    cfg["tracking"] = {"uri": OmegaConf.select(sweep_config, "tracking.uri"),
                       "experiment": str(OmegaConf.select(sweep_config, "tracking.experiment"))}
    run_id = None
    if sweep:
        try:
            run_id = record_failed_run(cfg, sweep_id=sweep["sweep_id"], parent_run_id=sweep["parent_run_id"],
                                       error=error)
        except Exception as err:  # noqa: BLE001 - the tracking server may be what is gone
            log.warning("could not record the lost job's FAILED run: %s", err)
    ret = JobReturn()
    ret.overrides = list(overrides)
    ret.status = JobStatus.FAILED
    ret._return_value = RuntimeError(error)
    ret.working_dir = None  # type: ignore[assignment]
    num = int(sweep_config.hydra.job.num)
    return ret, [{"job": num, "run_id": run_id, "status": "FAILED", "error": error, "overrides": list(overrides)}]


def _end_lost_runs(uri: str | None, sweep: dict | None, kept: set[str]) -> None:
    """Children of the sweep still RUNNING after every task returned belong to lost attempts."""
    if not uri or not sweep or not sweep.get("parent_run_id"):
        return
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs(
        [sweep["experiment_id"]],
        filter_string=f"tags.`mlflow.parentRunId` = '{sweep['parent_run_id']}' and attributes.status = 'RUNNING'",
        max_results=1000)
    for run in runs:
        if run.info.run_id in kept:
            continue
        client.set_tag(run.info.run_id, LOST_TAG, "its Ray worker was lost mid-job; Ray ran the job again "
                                                  "(hydra.launcher.max_retries)")
        client.set_terminated(run.info.run_id, "KILLED")
        print(f"run {run.info.run_id}: ended KILLED (its Ray worker was lost; the job ran again)")


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
    import ray

    setup_globals()
    assert launcher.config is not None and launcher.hydra_context is not None and launcher.task_function
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    _init_ray(launcher)
    sweep = read_sweep(sweep_dir)
    log.info("Ray launcher (%s): %d jobs in %s", launcher.address, len(job_overrides), sweep_dir)
    remote = ray.remote(execute_job).options(num_cpus=launcher.num_cpus, max_retries=launcher.max_retries,
                                             retry_exceptions=False, name="dspy_mlflow_job")
    state = Singleton.get_state()
    state_ref = ray.put(state)
    task_ref = ray.put(launcher.task_function)
    pending, uri = [], None
    for idx, overrides in enumerate(job_overrides):
        num = initial_job_idx + idx
        sweep_config = launcher.hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{num}"
            sweep_config.hydra.job.num = num
            uri = _pin_tracking(sweep_config) or uri
        log.info("\t#%d : %s", num, " ".join(overrides))
        pending.append((sweep_config, list(overrides),
                        remote.remote(sweep_config, task_ref, state_ref, sweep)))
    results: list[JobReturn] = []
    for sweep_config, overrides, ref in pending:
        try:
            ret, records, host = ray.get(ref)
        except (ray.exceptions.RayError, OSError) as exc:
            if isinstance(exc, ray.exceptions.RayTaskError):
                raise exc.as_instanceof_cause() from None  # the job's own BaseException (SystemExit ...)
            ret, records = _lost(sweep_config, overrides, sweep, exc)
            host = None
        for record in records:
            num = record.pop("job")
            record_job(sweep_dir, num, **record, host=host)
        results.append(ret)
    kept = {r.get("run_id") for r in _read(sweep_dir)}
    _end_lost_runs(uri, sweep, {k for k in kept if k})
    return results


def _read(sweep_dir: Path) -> list[dict]:

    return read_jobs(sweep_dir)
