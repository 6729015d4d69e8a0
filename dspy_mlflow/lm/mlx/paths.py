"""Where an MLX model lives: a local folder with weights, or a Hugging Face cache entry (never a download)."""

from __future__ import annotations

import os
from pathlib import Path

from dspy_mlflow.errors import ProviderError

PROVIDER = "mlx"
WEIGHT_GLOBS = ("*.safetensors",)

# --------------------------------------------------------------------------- model paths


def strip_prefix(model: str) -> str:
    model = str(model).strip()
    return model[len(PROVIDER) + 1 :] if model.startswith(PROVIDER + "/") else model


def _expand(name: str) -> str:
    return os.path.expandvars(os.path.expanduser(name))


def looks_local(name: str) -> bool:
    """A local folder (exists, or absolute/relative/~ path, or not of the form 'org/repo')."""
    expanded = _expand(name)
    if Path(expanded).exists():
        return True
    if name.startswith(("/", "~", ".", "$")):
        return True
    if os.sep != "/" and os.sep in name:
        return True
    return name.count("/") != 1


def _has_weights(folder: Path) -> bool:
    return any(any(folder.glob(pattern)) for pattern in WEIGHT_GLOBS)


def _hf_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:
        return os.environ.get("HF_HUB_CACHE") or os.path.expanduser("~/.cache/huggingface/hub")


def resolve_model_path(model: str) -> Path:
    """The local folder holding ``model`` ("mlx/" prefix optional); never downloads.

    Raises ProviderError (one line: the model, where it looked, the command that fetches it).
    """
    name = strip_prefix(model)
    if not name:
        raise ProviderError(
            f"MLX model name is empty in {model!r}: use litellm_model: mlx/<hub repo or folder>"
        )
    if looks_local(name):
        folder = Path(_expand(name)).resolve()
        missing = [f for f in ("config.json",) if not (folder / f).is_file()]
        if folder.is_dir() and not _has_weights(folder):
            missing.append("*.safetensors weights")
        if not folder.is_dir() or missing:
            what = "folder does not exist" if not folder.is_dir() else "missing " + ", ".join(missing)
            raise ProviderError(
                f"MLX model {name!r} not found: looked in local folder {folder} ({what}); "
                f"build the tiny test model with `python -m dspy_mlflow build-mlx-tiny {folder}` "
                f"or put an mlx-lm model there with `hf download mlx-community/<model> --local-dir {folder}`"
            )
        return folder
    return _resolve_hub_repo(name)


def _resolve_hub_repo(repo: str) -> Path:
    cache = _hf_cache_dir()
    hint = (
        f"download it with `hf download {repo}` "
        f"(or `python -c \"from mlx_lm import load; load('{repo}')\"`) while online"
    )
    try:
        from huggingface_hub import snapshot_download

        try:
            from mlx_lm.utils import DEFAULT_ALLOW_PATTERNS as patterns
        except Exception:
            patterns = [
                "*.json",
                "*.safetensors",
                "*.py",
                "tokenizer.model",
                "*.tiktoken",
                "*.txt",
                "*.jinja",
            ]
        folder = Path(snapshot_download(repo, local_files_only=True, allow_patterns=patterns))
    except Exception as exc:
        raise ProviderError(
            f"MLX model {repo!r} is not in the local Hugging Face cache (looked in {cache}; "
            f"{type(exc).__name__}); {hint}"
        ) from None
    if not (folder / "config.json").is_file() or not _has_weights(folder):
        raise ProviderError(
            f"MLX model {repo!r} is incomplete in the local Hugging Face cache (looked in {folder}: "
            f"config.json or *.safetensors missing); {hint}"
        )
    return folder


# --------------------------------------------------------------------------- loaded models
