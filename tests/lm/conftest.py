"""Fixtures for the MLX tests: tiny random-weight models built once per session in tmp.

Nothing is downloaded: HF_HUB_OFFLINE=1 is set before anything imports huggingface_hub.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["HF_HUB_OFFLINE"] = "1"

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def _require_mlx() -> None:
    pytest.importorskip("mlx.core", reason="MLX not installed: pip install 'dspy-mlflow[mlx]'")
    pytest.importorskip("mlx_lm", reason="mlx-lm not installed: pip install 'dspy-mlflow[mlx]'")


@pytest.fixture(scope="session")
def mlx_tiny_path(tmp_path_factory) -> Path:
    """A tiny Llama (seed 0) built in a session tmp folder."""
    _require_mlx()
    from dspy_mlflow.lm.mlx.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("mlx") / "tiny", seed=0)


@pytest.fixture(scope="session")
def mlx_tiny_path_b(tmp_path_factory) -> Path:
    """A second tiny model folder (seed 1), for LRU tests."""
    _require_mlx()
    from dspy_mlflow.lm.mlx.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("mlx") / "tiny_b", seed=1)


@pytest.fixture(scope="session")
def mlx_registered(mlx_tiny_path) -> Path:
    """The mlx provider registered with LiteLLM (through setup()) for the tiny model."""
    from dspy_mlflow.lm.mlx import provider as mlx_provider

    mlx_provider.setup(
        {"litellm_model": f"mlx/{mlx_tiny_path}", "provider_options": {"max_loaded_models": 1}}
    )
    return mlx_tiny_path


@pytest.fixture(scope="session")
def mlx_tiny_raw(mlx_tiny_path):
    """(model, tokenizer) loaded directly with mlx_lm, for side-by-side checks."""
    from mlx_lm import load

    return load(str(mlx_tiny_path))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlx_server(mlx_tiny_path, tmp_path_factory):
    hub_cache = tmp_path_factory.mktemp("hf_hub_cache")
    port = _free_port()
    env = dict(os.environ, HF_HUB_CACHE=str(hub_cache), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    log = tmp_path_factory.mktemp("mlx_server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlx_lm", "server", "--model", str(mlx_tiny_path),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # imports mlx and transformers first
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlx_lm.server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlx_lm.server did not start in 60 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
