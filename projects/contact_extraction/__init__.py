"""Contact extraction: the sender's name, email and phone from a free-text message.

Data: 240 inbox messages (data.jsonl, rebuilt by generate_data.py) from 60 senders; fields
the message does not contain are labelled ``none``.

Metric (mean per-field exact match, 0..1): each of name, email and phone scores 1.0 when the
prediction equals the gold value after normalisation, else 0.0; the score is the mean of the
three, so each correct field earns 1/3.
  - name:  lowercased, punctuation other than apostrophes and hyphens removed, spaces collapsed
  - email: lowercased, stripped, surrounding <> or "mailto:" removed
  - phone: digits only; an 11-digit number starting with 1 loses that US country code
  - an absent field ("none", "n/a", "null", "", "-") matches only an absent gold field;
    a prediction with no such attribute at all scores 0 for that field
The metric returns dspy.Prediction(score, feedback): the feedback names each wrong field and its gold value.
Run: ``python -m dspy_mlflow project=contact_extraction``
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import dspy

from dspy_mlflow.project.strategies import build_program

DATA_PATH = Path(__file__).with_name("data.jsonl")
FIELDS = ("name", "email", "phone")
ABSENT = {"", "none", "n/a", "na", "null", "-", "unknown"}


class signature(dspy.Signature):  # noqa: N801 - the project contract names this attribute `signature`
    """Extract the contact details of the person who wrote or sent the message (not the recipient
    or people in cc). Copy values exactly as written; write none for a detail the message lacks."""

    text: str = dspy.InputField(desc="an email, voicemail transcript, form submission or chat message")
    name: str = dspy.OutputField(desc="the sender's full name, or none")
    email: str = dspy.OutputField(desc="the sender's email address, or none")
    phone: str = dspy.OutputField(desc="the sender's phone number as written, or none")


def _absent(value: str) -> bool:
    return value.strip().strip(".").lower() in ABSENT


def normalize(field: str, value: object) -> str:
    """The normal form used by the metric; "" means absent."""
    text = "" if value is None else str(value)
    if _absent(text):
        return ""
    if field == "phone":
        digits = re.sub(r"\D", "", text)
        return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
    if field == "email":
        text = text.strip().lower().removeprefix("mailto:").strip("<>. ")
        return text
    text = re.sub(r"[^\w\s'-]", " ", text.lower())
    return " ".join(text.split())


def field_scores(example, prediction) -> dict[str, float]:
    """1.0/0.0 per field; a prediction without the field at all (None) scores 0.0."""
    scores = {}
    for f in FIELDS:
        value = getattr(prediction, f, None) if prediction is not None else None
        scores[f] = 1.0 if value is not None and normalize(f, value) == normalize(f, example[f]) else 0.0
    return scores


def metric(example, prediction, trace=None) -> dspy.Prediction:
    """Mean over name/email/phone of exact match after normalisation (see module docstring); the
    feedback names each wrong field, its gold value and the gold words the prediction missed."""
    scores = field_scores(example, prediction)
    notes = []
    for f in FIELDS:
        if scores[f]:
            continue
        gold = normalize(f, example[f]) or "none"
        got = getattr(prediction, f, None) if prediction is not None else None
        missed = [w for w in gold.split() if w not in normalize(f, got).split()] if got is not None else []
        notes.append(f'the {f} should be "{gold}", not "{got}"'
                     + (f" (missed: {', '.join(missed)})" if missed and missed != [gold] else ""))
    feedback = "Wrong: " + "; ".join(notes) + "." if notes else "Correct: name, email and phone all match."
    return dspy.Prediction(score=sum(scores.values()) / len(scores), feedback=feedback)


def reward(inputs: dict, prediction) -> float:
    """best_of_n reward without gold labels: share of fields that are well formed and, when
    present, appear in the input text (names and emails verbatim, phones by digits)."""
    text = str(inputs.get("text", ""))
    text_lower, text_digits = text.lower(), re.sub(r"\D", "", text)
    ok = 0
    for f in FIELDS:
        value = getattr(prediction, f, None)
        if value is None:
            continue
        value = str(value)
        if _absent(value):
            ok += 1
        elif f == "phone":
            digits = re.sub(r"\D", "", value)
            ok += len(digits) >= 7 and digits in text_digits
        elif f == "email":
            ok += "@" in value and value.strip().lower() in text_lower
        else:
            ok += value.strip().lower() in text_lower
    return ok / len(FIELDS)


def make_program(strategy: Mapping) -> dspy.Module:
    return build_program(signature, strategy, reward=reward)


def load_examples() -> list[dspy.Example]:
    with open(DATA_PATH, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [dspy.Example(**{k: r[k] for k in ("text", *FIELDS)}).with_inputs("text") for r in rows]
