"""What identifies a job: its resolved config, the examples as loaded and the project's code.

A job is skipped only when all three match a FINISHED run (tags ``dspy_mlflow.config_hash``,
``dspy_mlflow.data_hash``, ``dspy_mlflow.code_hash``). Also: flattened params and secret masking.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dspy_mlflow import names
from dspy_mlflow.config.secrets import is_secret_key

IDENTITY = ("config", "data", "code")  # the parts of a job's identity, each a hash tag on its run


def hash_tag(part: str) -> str:
    return names.hash_tag(part)


def identity_filter(hashes: Mapping[str, str]) -> str:
    """An MLflow search filter for the runs of exactly this identity."""
    return " and ".join(f"tags.`{hash_tag(part)}` = '{hashes[part]}'" for part in IDENTITY)


# Keys that do not change results, so they do not change the hash.
_NOT_IDENTITY = ("tracking", "cache", "eval.num_threads", "eval.progress", "registry", "hydra")
# keys added after stores were made: at their default they leave the hash as it was, so those runs still match
_ADDED_AT_DEFAULT = {"eval.repeats": 1}


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(node, Mapping):
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(node, list):
        out[prefix[:-1]] = json.dumps(node)
    else:
        out[prefix[:-1]] = node
    return out


def is_secret(key: str) -> bool:
    """Keys never sent to MLflow with their value (api_key_env holds a variable NAME, so it is fine)."""

    return is_secret_key(key)


def params_of(cfg: Mapping, exclude: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    flat = {k: v for k, v in flatten(cfg).items() if k not in exclude}
    params = {k: ("***" if is_secret(k) else ("null" if v is None else str(v))[:6000]) for k, v in flat.items()}
    params.update({
        "model": str(cfg["model"]["name"]),
        "optimizer": str(cfg["optimizer"]["name"]),
        "strategy": str(cfg["strategy"]["name"]),
        "project": str(cfg["project"]["name"]),
    })
    return params


def config_hash(cfg: Mapping) -> str:
    flat = {
        k: v for k, v in flatten(cfg).items()
        if not any(k == p or k.startswith(p + ".") for p in _NOT_IDENTITY) and _ADDED_AT_DEFAULT.get(k, ()) != v
    }
    blob = json.dumps(flat, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def data_hash(examples: Sequence) -> str:
    """The examples as loaded, in order: every field, and which fields are inputs."""
    digest = hashlib.sha256()
    for ex in examples:
        row = [sorted(ex.inputs().keys()), ex.toDict()]
        digest.update(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8", "replace"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def code_hash(source: str, signature_hash: str) -> str:
    """The project module's source (every .py file of its package) and its DSPy signature."""
    digest = hashlib.sha256(signature_hash.encode())
    for path in _source_files(source):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _source_files(source: str) -> list[Path]:
    if not source:
        return []
    path = Path(source)
    if path.name != "__init__.py":
        return [path] if path.is_file() else []
    return sorted(p for p in path.parent.rglob("*.py") if "__pycache__" not in p.parts)
