"""A Hydra launcher that runs each job of a multirun as a Ray task.

The engine (:mod:`._core`, and Ray with it) is imported only inside :meth:`launch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class RayLauncher(Launcher):
    def __init__(self, address: str = "local", num_cpus: float = 1, max_retries: int = 2,
                 runtime_env: dict[str, Any] | None = None) -> None:
        self.address = str(address)
        self.num_cpus = float(num_cpus)
        self.max_retries = int(max_retries)
        self.runtime_env = runtime_env
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from . import _core

        return _core.launch(self, job_overrides=job_overrides, initial_job_idx=initial_job_idx)
