"""The ``cache`` config section: where a job's LM cache lives and in which mode (no heavy imports).

* ``cache.dir``, else ``lm_cache/`` beside a sqlite or file store, else
  ``~/.cache/dspy_mlflow/lm_cache/<host>`` for a tracking server;
* ``cache.mode``: ``on`` (read and write), ``read_only`` (read, never write), ``off``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from dspy_mlflow.errors import ConfigError

MODES = ("on", "off", "read_only")


def mode_of(cache: Mapping) -> str:
    """YAML reads a bare on/off as a boolean: take it as meant."""
    mode = cache.get("mode", "on")
    return {True: "on", False: "off", "True": "on", "False": "off"}.get(mode, mode)


def check_section(cache: Mapping) -> None:
    mode = mode_of(cache)
    if mode not in MODES:
        raise ConfigError("cache.mode", mode, f"one of {', '.join(MODES)}")


def default_dir(tracking_uri: str) -> Path:
    """``lm_cache`` beside a local store; a per-server folder in the user's cache otherwise."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme.startswith("sqlite"):
        path = tracking_uri.split(":///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            return Path(path).expanduser().resolve().parent / "lm_cache"
    elif parsed.scheme in ("", "file"):
        return Path(parsed.path or tracking_uri).expanduser().resolve().parent / "lm_cache"
    host = parsed.netloc or hashlib.sha256(tracking_uri.encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dspy_mlflow" / "lm_cache" / "".join(c if c.isalnum() or c in "-." else "_" for c in host)


def resolve(cache: Mapping, tracking_uri: str) -> tuple[str, Path | None]:
    """(mode, directory) of a job's cache; no directory when the cache is off."""
    mode = mode_of(cache)
    if mode == "off":
        return mode, None
    directory = cache.get("dir")
    return mode, Path(directory).expanduser().resolve() if directory else default_dir(tracking_uri)
