"""Loaded MLX models, kept in a small LRU cache (``set_max_loaded_models``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dspy_mlflow.errors import ProviderError
from dspy_mlflow.lm.mlx.paths import resolve_model_path

DEFAULT_MAX_LOADED_MODELS = 1


@dataclass
class LoadedModel:
    path: Path
    model: Any
    tokenizer: Any
    lock: threading.Lock = field(default_factory=threading.Lock)  # serializes generation
    loaded_at: float = field(default_factory=time.time)


class ModelCache:
    """A bounded LRU of loaded (model, tokenizer) pairs, keyed by resolved folder."""

    def __init__(self, max_loaded: int = DEFAULT_MAX_LOADED_MODELS):
        self.max_loaded = max(1, int(max_loaded))
        self._lock = threading.Lock()  # guards the dict and the per-path lock table
        self._entries: OrderedDict[Path, LoadedModel] = OrderedDict()
        self._load_locks: dict[Path, threading.Lock] = {}
        self.load_count = 0  # total loads in this process (observable by tests)
        self.loads: dict[str, int] = {}  # loads per folder
        self.evictions = 0

    def set_max_loaded(self, n: int) -> None:
        with self._lock:
            self.max_loaded = max(1, int(n))
            self._evict_locked()

    def _evict_locked(self) -> None:
        while len(self._entries) > self.max_loaded:
            self._entries.popitem(last=False)
            self.evictions += 1

    def loaded(self) -> list[Path]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        try:
            import mlx.core as mx

            mx.clear_cache()
        except Exception:
            pass

    def get(self, path: Path) -> LoadedModel:
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None:
                self._entries.move_to_end(path)
                return entry
            load_lock = self._load_locks.setdefault(path, threading.Lock())
        with load_lock:
            with self._lock:  # another thread may have loaded it while we waited
                entry = self._entries.get(path)
                if entry is not None:
                    self._entries.move_to_end(path)
                    return entry
            entry = self._load(path)
            with self._lock:
                self._entries[path] = entry
                self._entries.move_to_end(path)
                self.load_count += 1
                self.loads[str(path)] = self.loads.get(str(path), 0) + 1
                self._evict_locked()
            return entry

    @staticmethod
    def _load(path: Path) -> LoadedModel:
        try:
            from mlx_lm import load
        except ImportError as exc:
            raise ProviderError(
                f"model provider 'mlx' needs mlx-lm ({exc.name or exc} missing): pip install 'dspy-mlflow[mlx]'"
            ) from None
        try:
            model, tokenizer = load(str(path))
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ProviderError(f"MLX model in {path} failed to load: {type(exc).__name__}: {text}") from None
        return LoadedModel(path=path, model=model, tokenizer=tokenizer)


CACHE = ModelCache()


def load_count() -> int:
    """How many times a model was loaded in this process (all folders)."""
    return CACHE.load_count


def set_max_loaded_models(n: int) -> None:
    CACHE.set_max_loaded(n)


def get_model(model: str) -> LoadedModel:
    return CACHE.get(resolve_model_path(model))


# --------------------------------------------------------------------------- generation


