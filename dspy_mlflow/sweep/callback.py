"""The Hydra callback of a sweep, light to import: Hydra instantiates it for every run.

Its methods hand the sweep to :class:`dspy_mlflow.sweep.parent.SweepParent` (MLflow and the
leaderboard), loaded only when a multirun starts, so a single job (and a skipped one) imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

if TYPE_CHECKING:
    from dspy_mlflow.sweep.parent import SweepParent

_open: SweepParent | None = None  # the SweepParent of this process whose parent run is not ended yet


def open_sweep() -> SweepParent | None:
    return _open


def fail_open_sweep(reason: str) -> None:
    """End the open sweep's parent run FAILED, tagged with ``reason`` (the sweep stopped early)."""
    if _open is not None:
        _open.end_if_open("FAILED", reason)


class SweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from dspy_mlflow.sweep.parent import SweepParent  # the lazy boundary: MLflow only for a sweep

        global _open
        self.parent = SweepParent()
        self.parent.open(config)
        _open = self.parent

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _open
        _open = None  # its jobs are done: a job run later in this process flushes its own traces
        parent = getattr(self, "parent", None)
        if parent is not None:
            parent.close(config)
