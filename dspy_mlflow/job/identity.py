"""What identifies a job: flattened params, a config hash, secret masking."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

# Keys never sent to MLflow with their value (api_key_env holds a variable NAME, so it is fine).
_SECRET = re.compile(r"(^|[._])(api_key|apikey|token|secret|password|authorization|auth_header)s?$", re.I)
# Keys that do not change results, so they do not change the hash.
_NOT_IDENTITY = ("tracking", "eval.num_threads", "eval.progress", "registry", "hydra")


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
    return bool(_SECRET.search(key))


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
        if not any(k == p or k.startswith(p + ".") for p in _NOT_IDENTITY)
    }
    blob = json.dumps(flat, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
