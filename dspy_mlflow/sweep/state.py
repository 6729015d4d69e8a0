"""Files a sweep keeps in its Hydra sweep dir, shared by jobs in any process.

``sweep.json`` (written by the sweep callback) tells a job its sweep id, parent run and
experiment; each job leaves ``jobs/<num>.json`` for the leaderboard. A launcher whose jobs
run on other machines (``hydra/launcher=ray``) ships :func:`read_sweep`'s dict with each task,
writes it into the job's own sweep dir there, and brings the job's :func:`read_jobs` records
back to :func:`record_job` on the driver.
"""

from __future__ import annotations

import json
from pathlib import Path

from dspy_mlflow.job.sweep_context import SweepContext

STATE_DIR = ".dspy_mlflow"


def _dir(sweep_dir: str | Path) -> Path:
    return Path(sweep_dir) / STATE_DIR


def write_sweep(sweep_dir: str | Path, *, sweep_id: str, parent_run_id: str, experiment_id: str) -> None:
    folder = _dir(sweep_dir)
    (folder / "jobs").mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps(
        {"sweep_id": sweep_id, "parent_run_id": parent_run_id, "experiment_id": experiment_id}))


def read_sweep(sweep_dir: str | Path) -> dict | None:
    """The sweep's identity as written by :func:`write_sweep` (None outside a tracked sweep)."""
    path = _dir(sweep_dir) / "sweep.json"
    return json.loads(path.read_text()) if path.exists() else None


def sweep_context(sweep_dir: str | Path, *, flushes_traces: bool = False) -> SweepContext | None:
    """What a job of this sweep is told (None outside a tracked sweep)."""
    path = _dir(sweep_dir) / "sweep.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return SweepContext(sweep_id=data["sweep_id"], parent_run_id=data["parent_run_id"],
                        experiment_id=data.get("experiment_id"), flushes_traces=flushes_traces)


def record_job(sweep_dir: str | Path, job_num: int, **fields) -> None:
    folder = _dir(sweep_dir) / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{int(job_num):04d}.json").write_text(json.dumps({"job": int(job_num), **fields}, default=str))


def read_jobs(sweep_dir: str | Path) -> list[dict]:
    folder = _dir(sweep_dir) / "jobs"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []
