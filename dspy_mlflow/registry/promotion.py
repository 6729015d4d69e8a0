"""Promotion to production, with an optional score gate, and rollback.

Promoting version V of NAME:
  - sets the alias ``production`` (models:/NAME@production) and moves the legacy stage to
    Production, archiving the previous one (models:/NAME/Production), so both URIs load V;
  - records on V who promoted it, when, which version it replaced, and the gate or force used;
  - pushes V on the registered model's production history (tag dspy_mlflow.production_history),
    which ``rollback`` pops.
Every check runs before the first write: a refused promotion changes nothing.
"""

from __future__ import annotations

import getpass
import json
import os
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from dspy_mlflow import names
from dspy_mlflow.errors import RegistryError
from dspy_mlflow.registry import versions as C
from dspy_mlflow.registry.prompts import move_alias
from dspy_mlflow.tracking import store

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

_HISTORY_KEEP = 100


@dataclass
class Promotion:
    name: str
    version: str
    replaced: str | None  # the previous production version, if any
    forced: bool
    gate: str | None  # e.g. "test/score 0.8 >= 0.7"
    noop: bool = False  # the version already was production

    def summary(self) -> str:
        if self.noop:
            return f"{self.name} v{self.version} is already production; nothing changed"
        text = f"{self.name} v{self.version} is now production (models:/{self.name}@production, stage Production)"
        if self.replaced:
            text += f"; replaced v{self.replaced}"
        if self.gate:
            text += f"; gate {self.gate}"
        if self.forced:
            text += " (forced)"
        return text


def _user() -> str:
    for var in ("DSPY_MLFLOW_USER", "MLFLOW_TRACKING_USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "unknown"


def metric_of(c: MlflowClient, mv: ModelVersion, metric: str) -> float | None:
    """The version's value for ``metric``: its tag, else its source run's metric, else None."""
    value = mv.tags.get(metric)
    if value not in (None, "", "-"):
        try:
            return float(value)
        except ValueError:
            pass
    if mv.run_id:
        from mlflow.exceptions import MlflowException

        try:
            run_metrics = c.get_run(mv.run_id).data.metrics
        except MlflowException:
            return None
        if metric in run_metrics:
            return float(run_metrics[metric])
    return None


def history(c: MlflowClient, name: str) -> list[str]:
    rm = C.get_registered_model(c, name)
    try:
        return [str(v) for v in json.loads(rm.tags.get(names.PRODUCTION_HISTORY, "[]"))]
    except ValueError:
        return []


def _transition_to_production(c: MlflowClient, name: str, version: str) -> None:
    """The legacy stage, without MLflow's stage deprecation notice (other warnings still show)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*transition_model_version_stage.*deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*[Ss]tages? (are|is) deprecated", category=FutureWarning)
        c.transition_model_version_stage(name, version, "Production", archive_existing_versions=True)


def _apply(c: MlflowClient, mv: ModelVersion, tags: dict[str, str], new_history: list[str]) -> None:
    name, version = mv.name, str(mv.version)
    c.set_registered_model_alias(name, names.PRODUCTION, version)
    _transition_to_production(c, name, version)
    for key, value in tags.items():
        c.set_model_version_tag(name, version, key, value)
    c.set_registered_model_tag(name, names.PRODUCTION_HISTORY, json.dumps(new_history[-_HISTORY_KEEP:]))
    move_alias(c, mv.tags)  # its predictors' prompts follow: prompts:/NAME.P@production


def promote(
    name: str,
    version: str | int,
    *,
    gate: str | None = None,
    force: bool = False,
    lower_is_better: bool = False,
    tracking_uri: str | None = None,
) -> Promotion:
    """Make ``version`` (a number, or a models:/ URI of ``name``) the production version of ``name``.

    ``gate`` names a metric (e.g. "test/score"): the candidate must score at least as well as the
    current production version (higher is better unless ``lower_is_better``), or RegistryError
    with both values. ``force`` promotes anyway and records that it did.
    """
    c = store.client(tracking_uri)
    mv = C.resolve(c, version, name)
    version = str(mv.version)
    current = C.get_alias(c, name, names.PRODUCTION)
    if current is not None and str(current.version) == version:
        return Promotion(name, version, None, False, None, noop=True)

    gate_text, forced = None, False
    if gate:
        candidate = metric_of(c, mv, gate)
        if candidate is None:
            raise RegistryError(f"{name} v{version} has no {gate!r} (not a version tag nor a metric of its run)")
        incumbent = metric_of(c, current, gate) if current is not None else None
        if current is None:
            gate_text = f"{gate} {C.fmt_number(candidate)} (no previous production)"
        elif incumbent is None:
            if not force:
                raise RegistryError(
                    f"current production {name} v{current.version} has no {gate!r} to compare with; "
                    "use --force to promote anyway"
                )
            forced = True
            gate_text = f"{gate} {C.fmt_number(candidate)} vs v{current.version} without {gate}"
        else:
            worse = candidate > incumbent if lower_is_better else candidate < incumbent
            op = {(False, False): ">=", (False, True): "<", (True, False): "<=", (True, True): ">"}
            gate_text = (
                f"{gate} {C.fmt_number(candidate)} {op[(lower_is_better, worse)]} "
                f"{C.fmt_number(incumbent)} (v{current.version})"
            )
            if worse and not force:
                raise RegistryError(
                    f"gate {gate}: {name} v{version} scores {C.fmt_number(candidate)}, worse than "
                    f"production v{current.version} at {C.fmt_number(incumbent)}; use --force to override"
                )
            forced = worse

    stack = history(c, name)
    if current is not None and (not stack or stack[-1] != str(current.version)):
        stack.append(str(current.version))  # production set outside this tool: keep it reachable
    stack.append(version)
    tags = {
        names.VERSION_PROMOTED_BY: _user(),
        names.VERSION_PROMOTED_AT: datetime.now(timezone.utc).isoformat(timespec="seconds"),
        names.VERSION_REPLACED: str(current.version) if current is not None else "none",
        names.VERSION_FORCED: "true" if forced else "false",
    }
    if gate_text:
        tags[names.VERSION_GATE] = gate_text
    _apply(c, mv, tags, stack)
    return Promotion(name, version, str(current.version) if current is not None else None, forced, gate_text)


def rollback(name: str, *, tracking_uri: str | None = None) -> Promotion:
    """Return production to the version promoted before the current one."""
    c = store.client(tracking_uri)
    C.get_registered_model(c, name)
    current = C.get_alias(c, name, names.PRODUCTION)
    if current is None:
        raise RegistryError(f"registered model {name!r} has no production version to roll back")
    stack = history(c, name)
    while stack and stack[-1] == str(current.version):
        stack.pop()
    if not stack:
        raise RegistryError(f"{name} v{current.version} is the first production version: nothing to roll back to")
    target = C.get_version(c, name, stack[-1])
    tags = {
        names.VERSION_PROMOTED_BY: _user(),
        names.VERSION_PROMOTED_AT: datetime.now(timezone.utc).isoformat(timespec="seconds"),
        names.VERSION_REPLACED: str(current.version),
        names.VERSION_FORCED: "false",
        names.VERSION_GATE: f"rollback from v{current.version}",
    }
    _apply(c, target, tags, stack)
    return Promotion(name, str(target.version), str(current.version), False, f"rollback from v{current.version}")
