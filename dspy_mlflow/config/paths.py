"""Where the packaged Hydra configs live (source checkout or installed wheel)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def conf_dir() -> Path:
    """The primary config folder: ``dspy_mlflow/conf`` when installed, ``conf/`` in a checkout."""
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"dspy_mlflow config folder not found next to {_PACKAGE}")
