"""Token counts of the offline model: regex tokens ``\\w+|[^\\w\\s]``, deterministic."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text or ""))


def content_text(content: Any) -> str:
    """Text of a message content (a string or a list of OpenAI content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type") == "text" or "text" in part:
                    parts.append(str(part.get("text", "")))
            else:
                parts.append(str(part))
        return "\n".join(parts)
    return str(content)


def usage_for(messages: list[Mapping], text: str) -> dict[str, int]:
    """OpenAI-style usage of one answer: every message's tokens in, the answer's tokens out."""
    prompt = sum(count_tokens(content_text(m.get("content"))) for m in messages)
    completion = count_tokens(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
