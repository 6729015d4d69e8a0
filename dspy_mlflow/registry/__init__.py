"""The program registry: versions, lineage, promotion, loading.

- ``versions``  a version by number, alias, stage or ``models:/`` URI, with one-line errors
- ``register``  register_program(), resolve_parent(): a job's program becomes a model version
- ``promotion`` promote(), rollback(): the ``production`` alias and the legacy Production stage
- ``lineage``   lineage(), format_lineage(): the version tree of a registered model
- ``load``      load_program(): a runnable DSPy module from ``models:/NAME@production``
- ``serving``   provider_restore(): lets a pickled program find its custom LiteLLM provider

Importing the package loads none of them: ``from dspy_mlflow.registry import promote`` loads promotion.
"""

from __future__ import annotations

import importlib

_LAZY = {"register_program": "register", "resolve_parent": "register", "promote": "promotion",
         "rollback": "promotion", "load_program": "load"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
