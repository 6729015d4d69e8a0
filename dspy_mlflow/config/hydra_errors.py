"""Hydra's composition errors as one line that names the key, the bad value and what is allowed.

Hydra prints these over several lines (with its config search path); the CLI asks Hydra to raise
them instead (HYDRA_FULL_ERROR) and prints :func:`describe` of the exception.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dspy_mlflow.errors import ConfigError


def describe(exc: BaseException, overrides: Sequence[str] = ()) -> str | None:
    """One line for a Hydra or OmegaConf configuration error; None for any other exception."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    if not isinstance(exc, (HydraException, OmegaConfBaseException)):
        return None
    if isinstance(exc, MissingConfigException) and exc.options:
        group, _, option = str(exc.missing_cfg_file).rpartition("/")
        if group:
            return _not_allowed(group, option, "one of " + ", ".join(exc.options))
    cause = exc if isinstance(exc, OmegaConfBaseException) else exc.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        full_key = str(cause.full_key)
        key, value = _override_of(full_key, overrides)
        reason = _first_line(getattr(cause, "msg", None) or str(cause))
        if isinstance(cause, (ConfigKeyError, AttributeError)) and " not in " in reason:
            parent = full_key.rpartition(".")[0] or "the config"
            known = list(cause.parent_node.keys()) if cause.parent_node is not None else []
            allowed = f"{parent} has no key {cause.key!r}" + (f"; its keys are {', '.join(known)}" if known else "")
            if _free_form(cause.parent_node):  # a typed section takes no new keys, '+' or not
                allowed += f" (to add a new key write +{key}={value})"
            return _not_allowed(key, value, allowed)
        if isinstance(cause, ValidationError):
            return _not_allowed(key, value, reason)
        return f"{key}: {reason}"
    return _squash(str(exc))


def _free_form(node) -> bool:
    """A dict-typed node (optimizer, search, provider_options), not a schema dataclass."""
    object_type = getattr(getattr(node, "_metadata", None), "object_type", None)
    return object_type in (None, dict)


def _not_allowed(key: str, value: object, allowed: str) -> str:
    return str(ConfigError(key, value, allowed))


def _override_of(full_key: str, overrides: Sequence[str]) -> tuple[str, str]:
    """(key, value) of the command-line override that set ``full_key`` or a key below it."""
    found = full_key, "?"
    for override in overrides:
        name, sep, value = override.partition("=")
        name = name.lstrip("+~")
        if sep and (name == full_key or name.startswith(full_key + ".")):
            found = name, value
    return found


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _squash(text: str) -> str:
    """Hydra's multi-line message on one line, without its config search path."""
    text = text.split("Config search path:")[0]
    parts = [p.strip() for p in re.split(r"\n+", text) if p.strip()]
    return "; ".join(parts)
