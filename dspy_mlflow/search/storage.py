"""Where a study lives and what it is called.

Storage (``search.storage``):
  * null -> beside the MLflow store: ``sqlite:///<dir of mlflow.db>/optuna.db`` when
    ``tracking.uri`` is a sqlite URL, else ``sqlite:///optuna.db`` in the working directory;
  * ``journal:///abs/path/file.log`` (or ``journal://relative.log``) -> an Optuna
    ``JournalStorage(JournalFileBackend(path))``, a plain file several processes share;
  * any other URL is an Optuna RDB URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``).

Study name (``search.study_name``): null -> ``<project>-<optimizer>-<hash>`` where the hash
is :func:`dspy_mlflow.tracking.identity.config_hash` of the config without ``search`` (but
with ``search.objectives``, which fix the study's directions), without the optimizer's
searched keys and ``search_space``, and without ``budget`` (tracking, eval threads,
registry are already outside the hash). So the same command, or the same command with
more trials, another sampler or a narrowed/widened range, continues the same study.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

JOURNAL = "journal://"


def storage_url(cfg: Mapping) -> str:
    """The storage URL the study uses (``search.storage`` or the default beside the MLflow store)."""
    url = (cfg.get("search") or {}).get("storage")
    if url:
        return str(url)
    tracking = str((cfg.get("tracking") or {}).get("uri") or "")
    if tracking.startswith("sqlite:///"):
        db = Path(tracking[len("sqlite:///"):])
        return f"sqlite:///{(db.parent / 'optuna.db').as_posix()}"
    return "sqlite:///optuna.db"


def display_url(url: str) -> str:
    """The URL without a password, for params and messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def make_storage(url: str):
    import optuna

    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url[len(JOURNAL):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        engine_kwargs = {"connect_args": {"timeout": 60}}  # several processes share one file
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def study_identity(cfg: Mapping) -> dict[str, Any]:
    """The config that identifies a study: the job's config minus what the search varies or budgets."""
    from dspy_mlflow.search.space import searched_keys

    out = copy.deepcopy(dict(cfg))
    searched = searched_keys(cfg)
    optimizer = dict(out.get("optimizer") or {})
    optimizer.pop("search_space", None)
    for key in searched:
        if key.startswith("compile."):
            comp = dict(optimizer.get("compile") or {})
            comp.pop(key[len("compile."):], None)
            optimizer["compile"] = comp
        else:
            optimizer.pop(key, None)
    out["optimizer"] = optimizer
    out["search"] = {"objectives": list((cfg.get("search") or {}).get("objectives") or ["dev_score"])}
    for key in ("budget", "tracking", "hydra"):
        out.pop(key, None)
    return out


def study_name(cfg: Mapping) -> str:
    given = (cfg.get("search") or {}).get("study_name")
    if given:
        return str(given)
    from dspy_mlflow.project_loader import project_name
    from dspy_mlflow.tracking.identity import config_hash

    return f"{project_name(cfg['project'])}-{cfg['optimizer']['name']}-{config_hash(study_identity(cfg))}"
