"""``prepare``: a job's project loaded and named in its config, and its identity (three hashes).

Light on purpose: the job asks it before deciding to skip, and ``plan`` asks it for a forecast from
history; neither loads MLflow for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dspy_mlflow.project.loader import Project, load_project, signature_hash
from dspy_mlflow.tracking.identity import code_hash, config_hash, data_hash


@dataclass
class Prepared:
    """A resolved config, its project loaded, and the job's identity (config, data, code hashes)."""

    conf: dict[str, Any]
    project: Project
    hashes: dict[str, str]


def name_project(conf: dict, project: Project) -> None:
    """The config names the project as loaded: its name (from the module when not given) and an
    absolute module path, so the logged config loads from any directory."""
    conf["project"]["name"] = project.name
    if str(conf["project"]["module"]).endswith(".py"):
        conf["project"]["module"] = project.source


def identity(conf: dict, project: Project) -> dict[str, str]:
    return {"config": config_hash(conf), "data": data_hash(project.load_examples()),
            "code": code_hash(project.source, signature_hash(project.signature))}


def prepare(conf: dict, project: Project | None = None) -> Prepared:
    """Load (or take) the project, name it in ``conf`` (a copy is not made) and hash the job."""
    project = project or load_project(conf["project"])
    name_project(conf, project)
    return Prepared(conf, project, identity(conf, project))
