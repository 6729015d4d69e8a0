"""A tracking URI MLflow cannot use is one line, before any run: an unknown scheme, a sqlite file
in a missing folder, a missing database driver, an unreachable server (MLflow retries for minutes)."""

from __future__ import annotations

import importlib.metadata
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from dspy_mlflow.errors import ConfigError

_checked: set[str] = set()
# MLflow 3's tracking stores ("" is a local folder path); plugins add theirs as entry points
SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc", "uc")
ALLOWED = ("sqlite:///PATH.db, a folder path or file:///PATH, http(s)://HOST:PORT (mlflow server), "
           "postgresql://, mysql:// or mssql:// (a database), databricks")
_DATABASES = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
_DRIVER_PACKAGES = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient"}


def _scheme(uri: str) -> str:
    scheme = urllib.parse.urlparse(uri).scheme.lower()
    return "" if len(scheme) == 1 else scheme  # C:\... is a Windows path


def _plugin_schemes() -> set[str]:
    return {ep.name for ep in importlib.metadata.entry_points(group="mlflow.tracking_store")}


def check_tracking_uri(uri: str, key: str = "tracking.uri", timeout_s: float = 5.0) -> None:
    """Everything about a tracking URI that can be checked before MLflow starts, as a ConfigError."""
    scheme = _scheme(uri)
    base = scheme.split("+")[0]
    if uri in ("databricks", "databricks-uc", "uc") or uri in _checked:
        return
    if base not in SCHEMES and scheme not in _plugin_schemes():
        raise ConfigError(key, uri, f"a URI MLflow can store runs in: {ALLOWED}")
    if base == "sqlite":
        _check_sqlite_folder(uri, key)
    elif base in _DATABASES:
        _check_database(uri, key, timeout_s)
    elif base in ("http", "https"):
        _check_server(uri, key, timeout_s)
    _checked.add(uri)


check_reachable = check_tracking_uri  # the name the job, the sweep and the subcommands call


def _url(uri: str, key: str):
    from sqlalchemy.engine import make_url

    try:
        return make_url(uri)
    except Exception as exc:  # sqlalchemy's ArgumentError and friends
        raise ConfigError(key, uri, f"a database URL such as sqlite:///mlflow.db ({exc})") from exc


def _check_sqlite_folder(uri: str, key: str) -> None:
    database = _url(uri, key).database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    folder = Path(database).expanduser().resolve().parent
    if not folder.is_dir():
        raise ConfigError(key, uri, f"a sqlite file in an existing folder ({folder} does not exist), "
                                    "e.g. sqlite:///mlflow.db")


def _check_database(uri: str, key: str, timeout_s: float) -> None:
    url = _url(uri, key)
    try:
        dialect = url.get_dialect()
    except Exception as exc:  # an unknown +driver
        raise ConfigError(key, uri, f"a database URL SQLAlchemy can load ({exc})") from exc
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        package = _DRIVER_PACKAGES.get(exc.name or "", exc.name)
        raise ConfigError(key, uri, f"a database whose driver is installed (no module {exc.name!r}; "
                                    f"pip install {package})") from exc
    if url.host:
        port = url.port or _DATABASES[url.get_backend_name()]
        try:
            socket.create_connection((url.host, port), timeout=timeout_s).close()
        except OSError as exc:
            raise ConfigError(key, uri, f"a reachable database ({url.host}:{port}: {exc})") from exc


def _check_server(uri: str, key: str, timeout_s: float) -> None:
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


DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def tracking_uri(uri: str | None = None) -> str:
    """``uri``, else the process's MLflow tracking URI (mlflow.set_tracking_uri, else
    $MLFLOW_TRACKING_URI, else MLflow's default sqlite:///mlflow.db); an unreachable server fails fast."""
    if not uri:
        import mlflow

        uri = mlflow.get_tracking_uri() or DEFAULT_TRACKING_URI
    check_reachable(uri, key="--tracking-uri")
    return uri


def client(uri: str | None = None):
    from mlflow import MlflowClient

    uri = tracking_uri(uri)
    check_store_exists(uri)  # looking things up never creates an empty store
    return MlflowClient(tracking_uri=uri, registry_uri=uri)
