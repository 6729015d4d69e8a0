"""``JobContext``: what the steps of one job share inside its active MLflow run.

The job (``job/``) and the Optuna search (``search/``) use it; the steps read and write the
context, never each other's internals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow

from dspy_mlflow.lm.ledger import Ledger
from dspy_mlflow.project.loader import Project


@dataclass
class JobContext:
    """One job's shared state inside its active MLflow run."""

    conf: dict[str, Any]
    project: Project
    workdir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    parent: str | None = None  # "models:/NAME/VERSION" the program starts from, or None (a root)
    killed: Any = None  # a KILLED run of the same identity whose test rows may be reused
    in_sweep: bool = False  # a sweep logs its best jobs' evaluation views at its end
    ledger: Ledger | None = None
    model_cfg: dict[str, Any] = field(default_factory=dict)  # the fallback entry if preflight switched
    resolved_optimizer: str = ""
    chosen_hyperparameters: dict[str, str] = field(default_factory=dict)
    compile_stopped: str = ""  # why the optimizer stopped early, the program kept as it started
    model_version: str | None = None
    logged_raw: bool = False
    step: str = "starting"  # where an interrupt found the job
    done: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        self.model_cfg = self.model_cfg or self.conf["model"]
        self.resolved_optimizer = self.resolved_optimizer or self.conf["optimizer"]["name"]
        self.raw_path.unlink(missing_ok=True)  # this job's rows only

    @property
    def raw_path(self) -> Path:
        return self.workdir / "raw_outputs.jsonl"

    @property
    def repeats(self) -> int:
        """Samples per test example (``eval.repeats``)."""
        return int((self.conf.get("eval") or {}).get("repeats", 1))

    @property
    def trace_sampling(self) -> float:
        """The share of evaluated examples traced; without autolog there is nothing to leave out."""
        tracking = self.conf["tracking"]
        return float(tracking.get("trace_sampling", 1.0)) if tracking["autolog"] else 1.0

    @property
    def max_traced(self) -> int | None:
        tracking = self.conf["tracking"]
        cap = tracking.get("max_traces_per_split") if tracking["autolog"] else None
        return None if cap is None else int(cap)

    @property
    def run_id(self) -> str:
        return mlflow.active_run().info.run_id

    def at(self, step: str):
        """An evaluation's ``on_row``: remember how far it got, for an interrupt's reason."""
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

    def log_metric(self, key: str, value: float) -> None:
        self.metrics[key] = float(value)
        mlflow.log_metric(key, float(value))

    def log_metrics(self, values: dict[str, float], model_id: str | None = None) -> None:
        """Logged to the run (and, with ``model_id``, to that logged model too, in the same rows)."""
        values = {key: float(value) for key, value in values.items()}
        self.metrics.update(values)
        mlflow.log_metrics(values, model_id=model_id)

    def raw_rows(self) -> list[dict]:
        if not self.raw_path.exists():
            return []
        return [json.loads(x) for x in self.raw_path.read_text(encoding="utf-8").splitlines() if x.strip()]
