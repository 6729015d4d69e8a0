"""Check a free-form config section against the dataclass schema its owner declares.

OmegaConf does the work (``OmegaConf.merge`` onto ``OmegaConf.structured(schema)``): an unknown
key or a value of the wrong type becomes a :class:`ConfigError` that names the full key, the bad
value and what is allowed. Value ranges and choices are the owner's to check afterwards.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from dspy_mlflow.errors import ConfigError

_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string",
          dict: "a mapping", list: "a list"}


def fields_of(schema: type) -> list[str]:
    return [f.name for f in dataclasses.fields(schema)]


def kind_of(schema: type, key: str) -> type | None:
    """The plain type of field ``key`` (``Optional[int]`` -> int; ``dict[str, Any]`` -> dict), None: Any."""
    hint = typing.get_type_hints(schema)[key]
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
    plain = (typing.get_origin(args[0]) or args[0]) if args else None
    if dataclasses.is_dataclass(plain):
        return dict
    return plain if plain in _KINDS else None


def describe_kind(schema: type, key: str) -> str:
    kind = kind_of(schema, key)
    return _KINDS.get(kind, "a value") if kind else "a value"


def check_against(schema: type, section: Mapping[str, Any], prefix: str, unknown: typing.Callable[[str], str]) -> None:
    """Refuse keys ``schema`` has no field for and values OmegaConf cannot read as the field's type.

    ``unknown(parent)`` words what is allowed for an unknown key under ``parent`` ('' or 'compile')."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    try:
        OmegaConf.merge(OmegaConf.structured(schema), dict(section))
    except ConfigKeyError as exc:
        parent = exc.full_key.rpartition(".")[0]
        raise ConfigError(f"{prefix}.{exc.full_key}", _get(section, exc.full_key), unknown(parent)) from None
    except ValidationError as exc:
        key = str(exc.full_key)
        owner, _, leaf = key.rpartition(".")
        sub = _nested(schema, owner)
        raise ConfigError(f"{prefix}.{key}", _get(section, key), describe_kind(sub, leaf)) from None


def _nested(schema: type, path: str) -> type:
    for part in filter(None, path.split(".")):
        schema = typing.get_type_hints(schema)[part]
    return schema


def _get(section: Mapping, key: str) -> Any:
    node: Any = section
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node
