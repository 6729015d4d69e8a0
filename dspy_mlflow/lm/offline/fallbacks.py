"""Answers that parse for a field's type when no demo supplies one.

Literal -> first option (or ``fallback_label`` when it is an option), int -> 0,
float -> 0.0, bool -> False, list -> [], dict -> {}, str -> "unknown"; a JSON
schema in the field's note gives the shape of anything else.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from dspy_mlflow.lm.offline.prompt import Field

FALLBACK_STR = "unknown"

_NOTE_ONE_OF_RE = re.compile(r"must exactly match \(no extra characters\) one of: (.*)$")
_BASE_TYPE_FALLBACKS = {
    "int": 0,
    "float": 0.0,
    "bool": False,
    "list": [],
    "tuple": [],
    "set": [],
    "dict": {},
    "str": FALLBACK_STR,
}


def literal_options(f: Field) -> list[Any] | None:
    t = f.type.strip()
    m = re.match(r"^(?:typing\.)?Literal\[(.*)\]$", t, flags=re.S)
    if m:
        try:
            val = ast.literal_eval("[" + m.group(1) + "]")
            if val:
                return list(val)
        except (ValueError, SyntaxError):
            pass
    m = _NOTE_ONE_OF_RE.search(f.note)
    if m:
        opts = [o.strip() for o in m.group(1).split(";") if o.strip()]
        return opts or None
    return None


def _fallback_from_schema(schema: Any, depth: int = 0) -> Any:
    if not isinstance(schema, Mapping) or depth > 6:
        return FALLBACK_STR
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if not (isinstance(s, Mapping) and s.get("type") == "null")]
            return _fallback_from_schema((options or schema[key])[0], depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ == "object":
        props = schema.get("properties") or {}
        return {
            k: _fallback_from_schema(props[k], depth + 1) for k in schema.get("required", []) if k in props
        }
    return {"array": [], "integer": 0, "number": 0.0, "boolean": False, "null": None}.get(typ, FALLBACK_STR)


def fallback_value(f: Field, fallback_label: str | None = None) -> Any:
    """A value that parses for the field's type."""
    lits = literal_options(f)
    if lits:
        if fallback_label is not None:
            for o in lits:
                if str(o) == fallback_label:
                    return o
        return lits[0]
    t = f.type.strip().lower()
    t = re.sub(r"^(typing\.)?optional\[(.*)\]$", r"\2", t)
    base = re.split(r"[\[|]", t, maxsplit=1)[0].strip()
    if base in _BASE_TYPE_FALLBACKS:
        return copy.copy(_BASE_TYPE_FALLBACKS[base])  # a fresh list/dict each time
    m = re.search(r"JSON schema: (\{.*\})", f.note)
    if m:
        try:
            return _fallback_from_schema(json.loads(m.group(1).replace('\\"', '"')))
        except ValueError:
            pass
    if fallback_label is not None:
        return fallback_label
    return FALLBACK_STR


def coerce_for_json(v: str, f: Field, fallback_label: str | None = None) -> Any:
    """A chat-format demo value (a string) as a JSON value of the field's type."""
    if isinstance(fallback_value(f, fallback_label), str):
        return v
    try:
        return json.loads(v)
    except ValueError:
        try:
            return ast.literal_eval(v)
        except (ValueError, SyntaxError):
            return v
