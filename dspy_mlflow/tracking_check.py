"""Fail fast on an unreachable MLflow tracking server (MLflow itself retries for minutes)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from dspy_mlflow.errors import ConfigError

_checked: set[str] = set()


def check_reachable(uri: str, key: str = "tracking.uri", timeout_s: float = 5.0) -> None:
    """For http(s) URIs: the server answers /health within ``timeout_s``, or a one-line ConfigError."""
    if not uri.startswith(("http://", "https://")) or uri in _checked:
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise ConfigError(key, uri, f"a working MLflow tracking server (it answered HTTP {exc.code})") from exc
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(key, uri, f"a reachable MLflow tracking server ({reason}); start one with "
                                    "`mlflow server` or use tracking=local") from exc
    _checked.add(uri)


def check_store_exists(uri: str, key: str = "--tracking-uri") -> None:
    """Reading a sqlite store that is not there: a one-line ConfigError (MLflow would create an empty one)."""
    if not uri.startswith("sqlite"):
        return
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or url.query.get("uri") == "true":
        return
    if not Path(database).exists():
        raise ConfigError(key, uri, f"an existing MLflow store (there is no {Path(database).resolve()}); "
                                    "run a job first, or pass --tracking-uri or set MLFLOW_TRACKING_URI")
