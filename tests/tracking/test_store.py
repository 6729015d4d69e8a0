"""A tracking URI MLflow cannot use is one ConfigError naming it and what is allowed."""

from __future__ import annotations

import socket

import pytest

from dspy_mlflow.errors import ConfigError
from dspy_mlflow.tracking.store import check_tracking_uri


@pytest.mark.parametrize(("uri", "allowed"), [
    ("notascheme://x", "a URI MLflow can store runs in: sqlite:///PATH.db, a folder path"),
    ("sqlite:////nonexistent/dir/x.db", "a sqlite file in an existing folder (/nonexistent/dir does not exist)"),
    ("sqlite:/x", "a database URL such as sqlite:///mlflow.db"),
    ("mysql+nosuchdriver://u@h/d", "a database URL SQLAlchemy can load (Can't load plugin"),
    ("http://127.0.0.1:{port}", "a reachable MLflow tracking server"),
])
def test_unusable_uris(uri, allowed, free_port):
    uri = uri.format(port=free_port)
    with pytest.raises(ConfigError) as info:
        check_tracking_uri(uri)
    assert str(info.value).startswith(f"tracking.uri={uri!r} is not allowed: {allowed}")


def test_a_database_needs_its_driver_and_a_listener(free_port):
    pytest.importorskip("sqlalchemy")
    import importlib.util

    uri = f"postgresql+psycopg://u@127.0.0.1:{free_port}/db"
    with pytest.raises(ConfigError) as info:
        check_tracking_uri(uri, key="--tracking-uri")
    message = str(info.value)
    assert message.startswith(f"--tracking-uri={uri!r} is not allowed: ")
    if importlib.util.find_spec("psycopg") is None:
        assert "no module 'psycopg'; pip install 'psycopg[binary]'" in message
    else:
        assert f"a reachable database (127.0.0.1:{free_port}" in message


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "sqlite://", "./mlruns", "file:///tmp/mlruns",
                                 "databricks", "databricks://profile"])
def test_usable_uris(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_tracking_uri(uri)
    assert list(tmp_path.iterdir()) == []  # checking creates nothing


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
