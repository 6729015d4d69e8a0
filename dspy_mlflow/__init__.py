"""dspy_mlflow: DSPy experiments as tracked, comparable, reproducible MLflow runs.

Heavy libraries load lazily, so ``python -m dspy_mlflow --help`` answers fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "run": "dspy_mlflow.job.run:run",
    "JobResult": "dspy_mlflow.job.result:JobResult",
    "load_program": "dspy_mlflow.registry.load:load_program",
    "runs_frame": "dspy_mlflow.report.runs_table:runs_frame",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name].split(":")
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'dspy_mlflow' has no attribute {name!r}")
