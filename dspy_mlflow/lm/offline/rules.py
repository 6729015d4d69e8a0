"""Written rules the offline model follows: a small grammar read from the signature's instructions.

Three sentence shapes, one rule each (case does not matter; a word matches its plural and
singular forms; quotes around words are optional in the list form)::

    If the <input> mentions "w1", "w2" or "w3", the <output> is <value>.
    When the <input> contains "w1" or "w2", the <output> should be <value>.
    Words meaning <value>: w1, w2, w3.

``<input>`` names an input field (``text``, ``question``); a name that is not one searches every
input. ``<output>`` names an output field; the list form decides the first output field that
takes ``<value>`` (a Literal option), else the first one that is not reasoning. A word may be a
phrase ("not good"); it matches whole words in order. Rules are a decision list: they are
checked in the order written and the first whose word occurs in the query decides the output
field it names; when none matches the learner answers as it would without rules.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

REASONING_FIELDS = ("reasoning", "rationale")  # output fields that explain, never a rule's target
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_QUOTED_RE = re.compile(r"[\"“”']([^\"“”']+)[\"“”']")
_IF_RE = re.compile(
    r"\b(?:if|when) the ([\w ]+?) (?:mentions|contains|includes|says) (.+?), the ([\w ]+?) "
    r"(?:is|should be|must be) [\"“”']?([^\"“”'.;\n]+?)[\"“”']?\s*(?:[.;\n]|$)",
    re.IGNORECASE,
)
_WORDS_RE = re.compile(r"\bwords meaning [\"“”']?([^\"“”':\n]+?)[\"“”']?\s*:\s*([^.\n]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Rule:
    """Any of ``phrases`` (normalised word tuples) in ``input_field`` (None: any input) decides
    ``output_field`` (None: the first that takes ``value``) as ``value``."""

    phrases: tuple[tuple[str, ...], ...]
    value: str
    output_field: str | None
    input_field: str | None


def stem(word: str) -> str:
    """A word's singular form, roughly: lowercased, plural endings dropped."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ches", "shes", "sses", "xes", "zes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def normalise(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in _WORD_RE.findall(text.lower()))


def _field_name(words: str) -> str:
    """``the review text`` -> ``review_text`` (a field named in prose)."""
    return "_".join(words.lower().split())


def _phrases(listing: str) -> tuple[tuple[str, ...], ...]:
    quoted = _QUOTED_RE.findall(listing)
    parts = quoted or re.split(r",|\bor\b|\band\b", listing)
    return tuple(p for p in (normalise(x) for x in parts) if p)


@functools.lru_cache(maxsize=256)
def parse_rules(instructions: str) -> tuple[Rule, ...]:
    """Every rule in ``instructions``, in the order written."""
    found: list[tuple[int, Rule]] = []
    for m in _IF_RE.finditer(instructions):
        phrases = _phrases(m.group(2))
        if phrases:
            found.append((m.start(), Rule(phrases, m.group(4).strip(), _field_name(m.group(3)),
                                          _field_name(m.group(1)))))
    for m in _WORDS_RE.finditer(instructions):
        phrases = _phrases(m.group(2))
        if phrases:
            found.append((m.start(), Rule(phrases, m.group(1).strip(), None, None)))
    return tuple(rule for _, rule in sorted(found, key=lambda pair: pair[0]))


def occurs(phrase: tuple[str, ...], words: tuple[str, ...]) -> bool:
    n = len(phrase)
    if n == 1:
        return phrase[0] in words
    return any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def _target(rule: Rule, outputs: Mapping[str, list | None]) -> str | None:
    """The output field a rule decides, or None when the prompt has no such field."""
    if rule.output_field in outputs:
        return rule.output_field
    takes = [n for n, opts in outputs.items()
             if opts and any(str(o).lower() == rule.value.lower() for o in opts)]
    if takes:
        return takes[0]
    if rule.output_field is None:
        plain = [n for n in outputs if n not in REASONING_FIELDS]
        return plain[0] if plain else None
    return None


def _as_option(value: str, options: list | None):
    """``value`` spelled as the field's option it names (case-insensitive), else as written."""
    for o in options or ():
        if str(o).lower() == value.lower():
            return o
    return value


def decide(rules: tuple[Rule, ...], inputs: Mapping[str, str], outputs: Mapping[str, list | None]) -> dict:
    """{output field: value} the rules decide for a query with these inputs. ``outputs`` maps
    each output field to its Literal options (or None)."""
    if not rules:
        return {}
    words_by_field = {name: normalise(str(v)) for name, v in inputs.items()}
    every = tuple(w for ws in words_by_field.values() for w in ws)
    decided: dict = {}
    for rule in rules:
        target = _target(rule, outputs)
        if target is None or target in decided:
            continue
        words = words_by_field.get(rule.input_field, every) if rule.input_field else every
        if any(occurs(p, words) for p in rule.phrases):
            decided[target] = _as_option(rule.value, outputs.get(target))
    return decided


def rule_sentences(text: str) -> list[str]:
    """The rule sentences of ``text`` as written, in order."""
    spans = sorted([(m.start(), m.group(0).strip()) for m in _IF_RE.finditer(text)]
                   + [(m.start(), m.group(0).strip()) for m in _WORDS_RE.finditer(text)])
    return [s if s.endswith(".") else s.rstrip(";") + "." for _, s in spans]


def without_rules(text: str) -> str:
    """``text`` with its rule sentences taken out."""
    spans = sorted([m.span() for m in _IF_RE.finditer(text)] + [m.span() for m in _WORDS_RE.finditer(text)])
    kept, at = [], 0
    for start, end in spans:
        if start >= at:
            kept.append(text[at:start])
            at = end
    kept.append(text[at:])
    return re.sub(r"[ \t]+\n", "\n", "".join(kept)).strip()


def render(rules: list[Rule], max_words: int = 8) -> list[str]:
    """Rules as sentences of the grammar, in order; neighbours deciding the same value share one."""
    groups: list[tuple[tuple, list[str]]] = []
    for rule in rules:
        key = (rule.input_field, rule.output_field, rule.value)
        words = [" ".join(p) for p in rule.phrases]
        if groups and groups[-1][0] == key and len(groups[-1][1]) + len(words) <= max_words:
            groups[-1][1].extend(words)
        else:
            groups.append((key, words))
    out = []
    for (where, field, value), words in groups:
        if field is None:
            out.append(f"Words meaning {value}: {', '.join(words)}.")
            continue
        quoted = [f'"{w}"' for w in words]
        listed = ", ".join(quoted[:-1]) + (" or " if len(quoted) > 1 else "") + quoted[-1]
        out.append(f"If the {where or 'input'} mentions {listed}, the {field} is {value}.")
    return out
