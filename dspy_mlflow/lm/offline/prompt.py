"""Reading a DSPy-formatted prompt: field lists, ``[[ ## field ## ]]`` markers, JSON objects.

The system message of ChatAdapter and JSONAdapter lists the input and output
fields with their types; demos arrive as user/assistant pairs and the query is
the last user message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

NOT_SUPPLIED = "Not supplied for this particular example."

MARKER_RE = re.compile(r"\[\[ ## (\w+) ## \]\]")
_FIELD_LINE_RE = re.compile(r"^\d+\. `([^`]+)` \(")


@dataclass
class Field:
    name: str
    type: str
    note: str = ""


@dataclass
class Spec:
    """The signature as the prompt states it."""

    inputs: list[Field]
    outputs: list[Field]
    json_mode: bool


def _split_type(line: str, start: int) -> str:
    """Type text of a field line: the balanced (...) starting at ``start`` (an open paren)."""
    depth, quote, i = 0, "", start
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return line[start + 1 : i]
        i += 1
    return line[start + 1 :].rstrip("):")


def _parse_field_list(block: str) -> list[Field]:
    out = []
    for line in block.splitlines():
        m = _FIELD_LINE_RE.match(line)
        if m:
            out.append(Field(m.group(1), _split_type(line, m.end() - 1)))
    return out


def parse_system(system: str, json_hint: bool) -> Spec | None:
    """The fields a DSPy system message declares, or None for a prompt DSPy did not format."""
    if "Your output fields are:" not in system:
        return None
    head, _, rest = system.partition("Your output fields are:")
    _, _, in_block = head.partition("Your input fields are:")
    out_block = rest.split("All interactions will be structured", 1)[0]
    inputs = _parse_field_list(in_block)
    outputs = _parse_field_list(out_block)
    if not outputs:
        return None
    # per-field notes from the structure block ("# note: ... one of: a; b")
    for f in outputs:
        m = re.search(r"\{" + re.escape(f.name) + r"\}\s+# note: ([^\n\"]*)", system)
        if m:
            f.note = m.group(1)
    json_mode = json_hint or "Outputs will be a JSON object" in system
    return Spec(inputs, outputs, json_mode)


def parse_markers(text: str) -> dict[str, str]:
    """``[[ ## name ## ]]`` sections of a message -> {name: value} (``completed`` dropped)."""
    parts = MARKER_RE.split(text)
    out: dict[str, str] = {}
    for i in range(1, len(parts) - 1, 2):
        name = parts[i]
        if name == "completed":
            continue
        out[name] = parts[i + 1].strip()
    return out


def strip_query_suffix(text: str) -> str:
    return re.split(r"\n\s*Respond with (?:the corresponding output fields|a JSON object)", text, maxsplit=1)[
        0
    ]


def parse_json_object(text: str) -> dict | None:
    text = text.strip()
    m = re.search(r"\{.*\}", text, flags=re.S)
    if not m:
        return None
    try:
        val = json.loads(m.group(0))
    except ValueError:
        return None
    return val if isinstance(val, dict) else None


def is_missing(value: Any) -> bool:
    return isinstance(value, str) and value.strip() in (NOT_SUPPLIED, "")
