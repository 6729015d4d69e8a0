"""The tiny-model builder, the hardware tags and the MLX model configs."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

pytestmark = pytest.mark.mlx

CONF = Path(__file__).resolve().parents[2] / "conf" / "model"
MODEL_KEYS = {
    "name", "litellm_model", "api_base", "api_key_env", "temperature", "max_tokens",
    "num_retries", "cache", "pricing", "provider_options", "fallback",
}  # fmt: skip


def test_build_is_deterministic_and_idempotent(tmp_path, mlx_tiny_path):
    from dspy_mlflow.cli.build_mlx_tiny import main
    from dspy_mlflow.lm.mlx.tiny import REQUIRED_FILES, build_tiny_model

    other = build_tiny_model(tmp_path / "again", seed=0)
    for name in REQUIRED_FILES:
        assert (other / name).read_bytes() == (mlx_tiny_path / name).read_bytes(), name
    stamp = (other / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(other) == other
    assert main([str(other)]) == 0
    assert (other / "model.safetensors").stat().st_mtime_ns == stamp
    different = build_tiny_model(tmp_path / "seed1", seed=1)
    assert (different / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folders left"


def test_tiny_model_loads_with_chat_template(mlx_tiny_raw, mlx_tiny_path):
    import json

    _model, tok = mlx_tiny_raw
    cfg = json.loads((mlx_tiny_path / "tokenizer_config.json").read_text())
    assert cfg["eos_token"] and cfg["chat_template"]
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert "hi" in text and text.endswith("<|assistant|>\n")
    assert tok.eos_token_ids


def test_default_tiny_path_honours_env(monkeypatch, tmp_path):
    from dspy_mlflow.lm.mlx.tiny import default_tiny_path

    monkeypatch.delenv("DSPY_MLFLOW_MLX_TINY", raising=False)
    monkeypatch.setenv("DSPY_MLFLOW_HOME", str(tmp_path))
    assert default_tiny_path() == tmp_path / "mlx_tiny"
    monkeypatch.setenv("DSPY_MLFLOW_MLX_TINY", str(tmp_path / "x"))
    assert default_tiny_path() == tmp_path / "x"


def test_hardware_tags_present():
    from dspy_mlflow.lm import hardware

    tags = hardware.detect()
    assert set(tags) == {f"dspy_mlflow.hw.{k}" for k in ("backend", "device", "memory_gb", "chip")}
    assert tags["dspy_mlflow.hw.backend"] in ("metal", "cpu")
    assert all(isinstance(v, str) and v for v in tags.values())
    float(tags["dspy_mlflow.hw.memory_gb"])


def test_hardware_never_raises(monkeypatch):
    from dspy_mlflow.lm import hardware

    def boom(*a, **k):
        raise RuntimeError("probe failed")

    monkeypatch.setattr(hardware, "_mlx_installed", lambda: False)
    monkeypatch.setattr(platform, "machine", boom)
    monkeypatch.setattr(platform, "processor", boom)
    monkeypatch.setattr(hardware, "_cpu_name", boom)
    monkeypatch.setattr(hardware, "_total_ram_bytes", boom)
    tags = hardware.detect()
    assert tags["dspy_mlflow.hw.backend"] == "cpu"
    assert tags["dspy_mlflow.hw.chip"] == "unknown"


@pytest.mark.parametrize("entry", ["mlx_tiny", "mlx_7b"])
def test_model_configs(entry, monkeypatch, tmp_path):
    from omegaconf import OmegaConf

    monkeypatch.delenv("DSPY_MLFLOW_MLX_TINY", raising=False)
    monkeypatch.delenv("DSPY_MLFLOW_HOME", raising=False)
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{entry}.yaml"), resolve=True)
    assert set(cfg) == MODEL_KEYS
    assert cfg["name"] == entry and cfg["litellm_model"].startswith("mlx/")
    assert cfg["pricing"] == {"input_per_1m": 0.0, "output_per_1m": 0.0}
    assert cfg["fallback"] is None
    if entry == "mlx_tiny":
        assert cfg["litellm_model"] == "mlx/~/.cache/dspy_mlflow/mlx_tiny"
        assert cfg["provider_options"]["build_if_missing"] is True
        monkeypatch.setenv("DSPY_MLFLOW_HOME", str(tmp_path))
        again = OmegaConf.to_container(OmegaConf.load(CONF / f"{entry}.yaml"), resolve=True)
        assert again["litellm_model"] == f"mlx/{tmp_path}/mlx_tiny"
    else:
        assert cfg["litellm_model"].startswith("mlx/mlx-community/") and "4bit" in cfg["litellm_model"]
        assert cfg["provider_options"]["max_loaded_models"] == 1
