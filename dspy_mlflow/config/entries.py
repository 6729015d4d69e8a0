"""Load a single config-group entry by name (used for ``model.fallback``)."""

from __future__ import annotations

import os
from pathlib import Path

from dspy_mlflow.config.paths import conf_dir
from dspy_mlflow.config.schema import ModelConfig
from dspy_mlflow.errors import ConfigError


def search_dirs() -> list[Path]:
    user = Path(os.environ.get("DSPY_MLFLOW_USER_CONF", "conf")).resolve()
    return [user, conf_dir()]


def available(group: str) -> list[str]:
    names = {p.stem for d in search_dirs() if (d / group).is_dir() for p in (d / group).glob("*.yaml")}
    return sorted(names)


def load_model_entry(name: str) -> dict:
    from omegaconf import OmegaConf

    for folder in search_dirs():
        path = folder / "model" / f"{name}.yaml"
        if path.is_file():
            merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(path))
            return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]
    raise ConfigError("model.fallback", name, f"one of {', '.join(available('model'))}")
