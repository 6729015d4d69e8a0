"""Registered versions looked up: by number, alias, stage or ``models:/`` URI, with one-line errors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dspy_mlflow import names
from dspy_mlflow.errors import RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<ref>[^/]+))$")
STAGES = {names.PRODUCTION: "Production", "staging": "Staging", "archived": "Archived", "none": "None"}


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def get_registered_model(c: MlflowClient, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return c.get_registered_model(name)
    except MlflowException as exc:
        if _not_found(exc):
            raise RegistryError(f"no registered model named {name!r}") from None
        raise


def get_version(c: MlflowClient, name: str, version: str | int) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    get_registered_model(c, name)
    if not str(version).isdigit():
        raise RegistryError(f"version must be a number, an alias or a models:/ URI, got {version!r}")
    try:
        return c.get_model_version(name, str(version))
    except MlflowException as exc:
        if _not_found(exc):
            raise RegistryError(f"registered model {name!r} has no version {version}") from None
        raise


def get_alias(c: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise


def resolve(c: MlflowClient, ref: str | int, name: str | None = None) -> ModelVersion:
    """A model version from "3", "models:/NAME/3", "models:/NAME@alias" or "models:/NAME/Production".

    A bare version number needs ``name``. When ``name`` is given, a URI that names another
    registered model is refused (RegistryError), so a version of model B is never promoted as A.
    """
    ref = str(ref).strip()
    if ref.isdigit():
        if not name:
            raise RegistryError(f"version {ref} needs a model name; use models:/NAME/{ref}")
        return get_version(c, name, ref)
    m = _URI.match(ref)
    if not m:
        raise RegistryError(
            f"cannot read {ref!r}: expected a version number, models:/NAME/VERSION, "
            "models:/NAME@ALIAS or models:/NAME/STAGE"
        )
    uri_name = m["name"]
    if name and uri_name != name:
        raise RegistryError(f"{ref} is a version of {uri_name!r}, not of {name!r}")
    get_registered_model(c, uri_name)
    if m["alias"]:
        mv = get_alias(c, uri_name, m["alias"])
        if mv is None:
            raise RegistryError(f"registered model {uri_name!r} has no alias {m['alias']!r}")
        return mv
    part = m["ref"]
    if part.isdigit():
        return get_version(c, uri_name, part)
    stage = STAGES.get(part.lower())
    if stage is None:
        raise RegistryError(f"{ref}: {part!r} is neither a version number nor a stage ({', '.join(STAGES.values())})")
    found = [v for v in all_versions(c, uri_name) if v.current_stage == stage]
    if not found:
        raise RegistryError(f"registered model {uri_name!r} has no version in stage {stage}")
    return max(found, key=lambda v: int(v.version))


def source_run(mv: ModelVersion) -> str:
    """The run a version's program came from (version tag ``source_run``, else the version's run)."""
    run_id = mv.tags.get(names.VERSION_SOURCE_RUN) or mv.run_id
    if not run_id:
        raise RegistryError(f"{mv.name} v{mv.version} has no source run (version tag {names.VERSION_SOURCE_RUN!r})")
    return run_id


def all_versions(c: MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of ``name``, oldest first, with aliases filled in."""
    rm = get_registered_model(c, name)
    out, token = [], None
    while True:
        page = c.search_model_versions(f"name = '{quote(name)}'", max_results=200, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            break
    by_version: dict[str, list[str]] = {}
    for alias, version in (rm.aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    for v in out:  # search results may leave aliases empty: fill them from the registered model
        v.aliases = sorted(by_version.get(str(v.version), []))
    return sorted(out, key=lambda v: int(v.version))


def quote(text: str) -> str:
    return text.replace("'", "\\'")


def fmt_number(value: Any) -> str:
    if value is None or value == "":
        return "-"
    try:
        return format(float(value), ".6g")
    except (TypeError, ValueError):
        return str(value)


def uri_of(mv: ModelVersion) -> str:
    return f"models:/{mv.name}/{mv.version}"
