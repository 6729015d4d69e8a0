"""The job's LM cache: where it lives by default, private to the user, keyed by the model's whole
identity but never by the API key (a real DSPy disk cache in a temp dir)."""

from __future__ import annotations

import stat

from dspy_mlflow.tracking.cache_section import default_dir, resolve
from dspy_mlflow.tracking.lm_cache import ScopedCache

REQUEST = {"model": "openai/m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0}


def test_the_cache_lives_beside_a_local_store_and_per_host_for_a_server(tmp_path, monkeypatch):
    assert default_dir(f"sqlite:///{tmp_path}/sub/mlflow.db") == tmp_path / "sub" / "lm_cache"
    assert default_dir(str(tmp_path / "mlruns")) == tmp_path / "lm_cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_dir("http://127.0.0.1:5000") == tmp_path / "xdg" / "dspy_mlflow" / "lm_cache" / "127.0.0.1_5000"
    assert resolve({"mode": "off"}, f"sqlite:///{tmp_path}/mlflow.db") == ("off", None)
    assert resolve({"mode": False}, f"sqlite:///{tmp_path}/mlflow.db") == ("off", None)  # YAML's bare off
    assert resolve({"mode": "read_only", "dir": str(tmp_path / "c")}, "http://x") == ("read_only", tmp_path / "c")


def test_the_cache_folder_is_private_to_the_user(tmp_path):
    folder = tmp_path / "lm_cache"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # made open by someone else: the job makes it private
    ScopedCache(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    ScopedCache(tmp_path / "fresh" / "lm_cache")
    assert stat.S_IMODE((tmp_path / "fresh" / "lm_cache").stat().st_mode) == 0o700


def test_the_key_holds_the_endpoint_and_every_parameter_but_never_the_api_key(tmp_path):
    cache = ScopedCache(tmp_path / "c")
    base = cache.cache_key(REQUEST)
    dspy_default = ["api_key", "api_base", "base_url"]  # what DSPy's request_cache passes
    for ignored in (None, [], dspy_default):
        assert cache.cache_key({**REQUEST, "api_key": "sk-one"}, ignored) == base
        assert cache.cache_key({**REQUEST, "api_key": "sk-two"}, ignored) == base
        assert cache.cache_key({**REQUEST, "api_base": "http://127.0.0.1:1/v1"}, ignored) != base
        assert cache.cache_key({**REQUEST, "base_url": "http://127.0.0.1:1/v1"}, ignored) != base
    assert cache.cache_key({**REQUEST, "api_base": "http://a/v1"}) != cache.cache_key({**REQUEST, "api_base": "http://b/v1"})
    assert cache.cache_key({**REQUEST, "temperature": 0.7}) != base
    assert cache.cache_key({**REQUEST, "max_tokens": 10}) != base


def test_read_only_answers_from_the_cache_and_stores_nothing(tmp_path):
    writer = ScopedCache(tmp_path / "c")
    writer.put(REQUEST, {"answer": 1})
    reader = ScopedCache(tmp_path / "c", read_only=True)
    assert reader.get(REQUEST) == {"answer": 1}
    other = {**REQUEST, "temperature": 0.5}
    reader.put(other, {"answer": 2})
    assert reader.get(other) is None and ScopedCache(tmp_path / "c").get(other) is None
