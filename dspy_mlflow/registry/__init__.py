"""The program registry: versions, lineage, promotion, loading and run comparison.

Modules (each imports mlflow/dspy lazily, so `python -m dspy_mlflow --help` stays fast):

- ``register``  register_program(), resolve_parent(): a job's program becomes a model version
- ``promotion`` promote(), rollback(): the ``production`` alias and the legacy Production stage
- ``lineage``   lineage(), format_lineage(): the version tree of a registered model
- ``compare``   runs_frame(): runs of an experiment or sweep as a pandas DataFrame
- ``load``      load_program(): a runnable DSPy module from ``models:/NAME@production``
- ``serving``   provider_restore(): lets a pickled program find its custom LiteLLM provider
- ``commands``  promote/rollback/lineage/runs/ui command-line entry points
"""

from __future__ import annotations

__all__ = ["load_program", "promote", "register_program", "resolve_parent", "rollback", "runs_frame"]


def __getattr__(name: str):
    if name in ("register_program", "resolve_parent"):
        from dspy_mlflow.registry import register

        return getattr(register, name)
    if name in ("promote", "rollback"):
        from dspy_mlflow.registry import promotion

        return getattr(promotion, name)
    if name == "load_program":
        from dspy_mlflow.registry.load import load_program

        return load_program
    if name == "runs_frame":
        from dspy_mlflow.registry.compare import runs_frame

        return runs_frame
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
