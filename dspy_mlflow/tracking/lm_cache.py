"""The job's LM cache: DSPy's own ``Cache``, scoped to the run's store and keyed by the model's whole identity.

DSPy's default cache (``~/.dspy_cache``) is shared by every project of the user,
and its key leaves out ``api_base``: two endpoints serving one model name would
share answers. Here:

* where: ``cache.dir``, else ``lm_cache/`` beside a sqlite or file store, else
  ``~/.cache/dspy_mlflow/lm_cache/<host>`` for a tracking server;
* key: DSPy's key (model, messages, every request parameter) plus ``api_base``
  and ``base_url``; never the API key;
* mode: ``on`` (read and write), ``read_only`` (read, never write), ``off``;
* a hit tells the call being tracked (:mod:`dspy_mlflow.lm.call_note`) the usage
  the response originally carried, so its list price is known.

The cache holds pickles of responses: whoever can write to it can make this
process run code. It is created private to the user (mode 0700). Where it lives
and which mode: :mod:`dspy_mlflow.tracking.cache_section`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dspy.clients.cache import Cache

from dspy_mlflow.lm import call_note

_KEY_IGNORES_ONLY = ("api_key",)  # DSPy also ignores api_base and base_url: here they are identity
_SIZE_LIMIT = int(os.environ.get("DSPY_CACHE_LIMIT", 3e10))


class ScopedCache(Cache):
    """DSPy's two-level cache (memory, then disk) with the changes listed in the module docstring."""

    def __init__(self, directory: Path, *, read_only: bool = False):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        super().__init__(enable_disk_cache=True, enable_memory_cache=True, disk_cache_dir=str(directory),
                         disk_size_limit_bytes=_SIZE_LIMIT)
        self.directory, self.read_only = directory, read_only

    def cache_key(self, request: dict[str, Any], ignored_args_for_cache_key: list[str] | None = None) -> str:
        # the API key is never part of the key, asked for or not; api_base and base_url always are
        ignored = {*_KEY_IGNORES_ONLY, *(ignored_args_for_cache_key or [])} - {"api_base", "base_url"}
        return super().cache_key(request, sorted(ignored))

    def put(self, request, value, ignored_args_for_cache_key=None, enable_memory_cache=True) -> None:
        if not self.read_only:
            super().put(request, value, ignored_args_for_cache_key, enable_memory_cache)

    def _prepare_cached_response(self, response):
        call_note.cache_hit(_stored_usage(response))
        return super()._prepare_cached_response(response)


def _stored_usage(record: Any) -> dict:
    """The usage a stored response carried: a LiteLLM response, or DSPy's dict record of a native one."""
    usage = record.get("usage") if isinstance(record, Mapping) else getattr(record, "usage", None)
    if usage is None:
        return {}
    if not isinstance(usage, Mapping):
        usage = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
    return dict(usage)


def install(mode: str, directory: Path | None) -> None:
    """Make this job's cache DSPy's process-wide cache (kept when the next job asks for the same)."""
    import dspy

    if mode == "off":
        return  # the job's LM is built with cache=False
    current = vars(dspy).get("cache")  # never build DSPy's default cache in ~/.dspy_cache
    if isinstance(current, ScopedCache) and current.directory == directory:
        current.read_only = mode == "read_only"
        return
    cache = ScopedCache(directory, read_only=mode == "read_only")
    with dspy._cache_lock:  # as dspy.configure_cache does: a lazy first read must not overwrite it
        dspy.cache = cache
