"""Sentiment classification of short product and service reviews.

Data: 240 reviews (data.jsonl, rebuilt by generate_data.py), balanced positive/negative.
Metric: accuracy, 1.0 when the predicted label equals the gold label (case and spaces ignored),
with feedback that names the gold label (GEPA reflects on it).
Run: ``python -m dspy_mlflow project=sentiment``
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import dspy

from dspy_mlflow.project.strategies import build_program

DATA_PATH = Path(__file__).with_name("data.jsonl")
LABELS = ("positive", "negative")


class signature(dspy.Signature):  # noqa: N801 - the project contract names this attribute `signature`
    """Classify the overall sentiment of the review. Negations, sarcasm and contrasts count: when a
    review says "X was good, but Y was bad", the part after "but" decides."""

    text: str = dspy.InputField(desc="a short customer review")
    sentiment: Literal["positive", "negative"] = dspy.OutputField(desc="the reviewer's overall sentiment")


def _norm(value: object) -> str:
    return str(value if value is not None else "").strip().strip(".").lower()


def reward(inputs: dict, prediction) -> float:
    """best_of_n reward: 1.0 when the prediction is one of the two labels."""
    return 1.0 if _norm(getattr(prediction, "sentiment", None)) in LABELS else 0.0


def make_program(strategy: Mapping) -> dspy.Module:
    return build_program(signature, strategy, reward=reward)


def load_examples() -> list[dspy.Example]:
    with open(DATA_PATH, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [dspy.Example(text=r["text"], sentiment=r["sentiment"]).with_inputs("text") for r in rows]


def metric(example, prediction, trace=None) -> dspy.Prediction:
    """Accuracy: 1.0 if the predicted sentiment equals the gold one after lowercasing/stripping;
    the feedback says what the gold label was."""
    got, gold = _norm(getattr(prediction, "sentiment", None)), _norm(example.sentiment)
    if got == gold:
        return dspy.Prediction(score=1.0, feedback=f'Correct: the sentiment is "{gold}".')
    return dspy.Prediction(score=0.0, feedback=f'Wrong: the sentiment should be "{gold}", not "{got}".')
