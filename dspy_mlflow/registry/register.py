"""Register a job's program as a new version of a registered model.

Each version carries tags a person can choose by (model, optimizer, strategy, project,
test/score, dev/score, cost/total_usd, config_hash, signature_hash, source_run, semver,
parent) and a description that says the same in words.

Semantic version, from the version before (see semver_of_last for parallel and deleted versions):
  major  the DSPy signature changed (signature_hash differs), or the first version (1.0.0)
  minor  a new optimization of the same signature (optimizer is not "none")
  patch  anything else (same signature, no optimizer: a new strategy, model or data)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dspy_mlflow import names
from dspy_mlflow.errors import RegistryError
from dspy_mlflow.registry import versions as C
from dspy_mlflow.tracking import store

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


def _get(cfg: Mapping, dotted: str, default: Any = None) -> Any:
    """cfg["model"]["name"] or cfg["model.name"]: both shapes are accepted."""
    if dotted in cfg:
        return cfg[dotted]
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def semver_of_last(versions: list[ModelVersion]) -> tuple[str, str]:
    """(semver, reason) of the last of ``versions`` (oldest first).

    It continues from the newest earlier version that has a semver tag, replaying the versions
    after it from their signature_hash and optimizer tags, which a version gets when it is
    created. So jobs registering in parallel get distinct semvers even before the other job has
    written its own semver tag, and a deleted version does not make a semver repeat.
    """
    last = len(versions) - 1
    anchor = next((i for i in range(last - 1, -1, -1) if _semver(versions[i]) is not None), 0)
    major, minor, patch = (_semver(versions[anchor]) if anchor < last else None) or (1, 0, 0)
    reason = "first version"
    for previous, version in itertools.pairwise(versions[anchor:]):
        optimizer = version.tags.get(names.VERSION_OPTIMIZER, "none")
        if previous.tags.get(names.VERSION_SIGNATURE_HASH) != version.tags.get(names.VERSION_SIGNATURE_HASH):
            major, minor, patch = major + 1, 0, 0
            reason = "major: the DSPy signature changed"
        elif optimizer and optimizer != "none":
            minor, patch = minor + 1, 0
            reason = f"minor: a new {optimizer} optimization of the same signature"
        else:
            patch += 1
            reason = "patch: same signature, no new optimization"
    return f"{major}.{minor}.{patch}", reason


def _versions_since_semver(c, name: str, upto: int) -> list[ModelVersion]:
    """The versions up to ``upto``, oldest first, back to the newest earlier one with a semver tag
    (all of them when none has): what semver_of_last needs, without reading the whole registry."""
    out, token = [], None
    while True:
        page = c.search_model_versions(f"name = '{C.quote(name)}'", max_results=20,
                                       order_by=["version_number DESC"], page_token=token)
        for version in page:
            if int(version.version) > upto:
                continue
            out.append(version)
            if int(version.version) < upto and _semver(version) is not None:
                return out[::-1]
        token = page.token
        if not token:
            return out[::-1]


def _semver(version: ModelVersion) -> tuple[int, int, int] | None:
    parts = version.tags.get(names.VERSION_SEMVER, "").split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def resolve_parent(uri_or_version: str, name: str) -> ModelVersion:
    """The model version named by ``program.init_from``.

    Accepts "models:/NAME@alias", "models:/NAME/3", "models:/NAME/Production" or "3" (a version of
    ``name``). A URI may name another registered model (a program can start from any registered
    program). Raises RegistryError (one line) when it does not exist.
    """
    return C.resolve(store.client(), uri_or_version, None if not str(uri_or_version).strip().isdigit() else name)


def _describe(name: str, version: str, tags: dict[str, str], semver_reason: str) -> str:
    parts = [
        f"{name} v{version} ({tags[names.VERSION_SEMVER]}, {semver_reason}).",
        f"Project {tags.get(names.VERSION_PROJECT, '?')}: strategy {tags.get(names.VERSION_STRATEGY, '?')} on model "
        f"{tags.get(names.VERSION_MODEL, '?')}, optimizer {tags.get(names.VERSION_OPTIMIZER, '?')}.",
        "Scores: test/score {}, dev/score {}; total cost ${}.".format(
            *(tags.get(k, "not measured") for k in names.VERSION_SCORE_TAGS)
        ),
    ]
    parent = tags.get(names.VERSION_PARENT)
    parts.append(f"Started from {parent}." if parent else "A root program (no parent).")
    parts.append(f"Source run {tags[names.VERSION_SOURCE_RUN]}.")
    return " ".join(parts)


def register_program(
    *,
    run_id: str,
    model_uri: str,
    name: str,
    cfg: Mapping,
    metrics: Mapping[str, float],
    signature_hash: str,
    parent: str | None,
) -> ModelVersion:
    """Register ``model_uri`` (a LoggedModel URI, "models:/m-...") as a new version of ``name``.

    ``parent`` is "models:/NAME/VERSION" (or anything resolve_parent accepts) or None for a root.
    The config hash is read from the run's tag ``dspy_mlflow.config_hash``.
    """
    from mlflow.exceptions import MlflowException

    c = store.client()
    parent_mv = None
    if parent:
        parent_mv = C.resolve(c, parent, name if str(parent).strip().isdigit() else None)
    try:
        run = c.get_run(run_id)
    except MlflowException as exc:
        raise RegistryError(f"run {run_id!r} not found: {str(exc).splitlines()[0]}") from None

    optimizer = str(_get(cfg, "optimizer.name", run.data.params.get("optimizer", "none")))
    tags: dict[str, str] = {
        names.VERSION_MODEL: str(_get(cfg, "model.name", run.data.params.get("model", ""))),
        names.VERSION_OPTIMIZER: optimizer,
        names.VERSION_STRATEGY: str(_get(cfg, "strategy.name", run.data.params.get("strategy", ""))),
        names.VERSION_PROJECT: str(_get(cfg, "project.name", run.data.params.get("project", ""))),
        names.VERSION_SIGNATURE_HASH: signature_hash,
        names.VERSION_SOURCE_RUN: run_id,
    }
    config_hash = run.data.tags.get(names.CONFIG_HASH)
    if config_hash:
        tags[names.VERSION_CONFIG_HASH] = config_hash
    for key in names.VERSION_SCORE_TAGS:
        value = metrics.get(key, run.data.metrics.get(key))
        if value is not None:
            tags[key] = C.fmt_number(value)
    if parent_mv is not None:
        tags[names.VERSION_PARENT] = C.uri_of(parent_mv)

    try:  # asked first: a failed INSERT is an error line in the store's database log
        C.get_registered_model(c, name)
    except RegistryError:  # not there yet
        try:
            c.create_registered_model(name, description=f"DSPy programs of project {tags[names.VERSION_PROJECT]}")
        except MlflowException as exc:  # another job created it meanwhile
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    mv = c.create_model_version(
        name, source=model_uri, run_id=run_id, tags=tags, model_id=model_id, await_creation_for=60
    )
    # the semver follows from the versions before this one, whichever job registered them
    semver, reason = semver_of_last(_versions_since_semver(c, name, int(mv.version)))
    tags[names.VERSION_SEMVER] = semver
    c.set_model_version_tag(name, str(mv.version), names.VERSION_SEMVER, semver)
    c.update_model_version(name, str(mv.version), description=_describe(name, str(mv.version), tags, reason))
    return c.get_model_version(name, str(mv.version))

