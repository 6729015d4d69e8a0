"""The example projects' datasets, generators and metrics."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dspy
import pytest

import projects.contact_extraction as contacts
import projects.sentiment as sentiment

PROJECTS = {"sentiment": sentiment, "contact_extraction": contacts}


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_dataset_size_and_inputs(name):
    mod = PROJECTS[name]
    examples = mod.load_examples()
    assert len(examples) == 240
    assert all(isinstance(ex, dspy.Example) for ex in examples)
    assert all(set(ex.inputs().keys()) == set(mod.signature.input_fields) for ex in examples)
    assert all(set(ex.labels().keys()) == set(mod.signature.output_fields) for ex in examples)
    assert len({ex.text for ex in examples}) == len(examples), "duplicate texts"


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_generator_rewrites_data_byte_identically(name, tmp_path):
    script = Path(PROJECTS[name].__file__).with_name("generate_data.py")
    out = tmp_path / "data.jsonl"
    proc = subprocess.run(
        [sys.executable, str(script), "--out", str(out)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == script.with_name("data.jsonl").read_bytes()


def test_sentiment_is_balanced_and_not_one_word_separable():
    examples = sentiment.load_examples()
    assert Counter(ex.sentiment for ex in examples) == {"positive": 120, "negative": 120}
    tokens = [set(re.findall(r"\w+", ex.text.lower())) for ex in examples]
    labels = [ex.sentiment for ex in examples]
    best = 0.0
    for tok in set().union(*tokens):
        for lab in ("positive", "negative"):
            other = "negative" if lab == "positive" else "positive"
            acc = sum((lab if tok in t else other) == y for t, y in zip(tokens, labels, strict=True)) / len(
                labels
            )
            best = max(best, acc)
    assert 0.55 < best < 0.8, best


def test_contact_labels_appear_in_text_and_some_are_absent():
    examples = contacts.load_examples()
    for ex in examples:
        assert ex.name in ex.text
        for f in ("email", "phone"):
            assert ex[f] == "none" or ex[f] in ex.text
    absent = Counter(f for ex in examples for f in ("email", "phone") if ex[f] == "none")
    assert 20 <= absent["email"] <= 80 and 20 <= absent["phone"] <= 90
    senders = Counter(ex.name for ex in examples)
    assert len(senders) == 60 and min(senders.values()) >= 2


# ---- metrics ---------------------------------------------------------------------------------


def test_sentiment_metric():
    gold = dspy.Example(text="x", sentiment="positive").with_inputs("text")
    assert sentiment.metric(gold, dspy.Prediction(sentiment="positive")).score == 1.0
    assert sentiment.metric(gold, dspy.Prediction(sentiment=" Positive. ")).score == 1.0
    assert sentiment.metric(gold, dspy.Prediction(sentiment="negative")).score == 0.0
    assert sentiment.metric(gold, dspy.Prediction(), None).score == 0.0
    assert sentiment.reward({"text": "x"}, dspy.Prediction(sentiment="negative")) == 1.0
    assert sentiment.reward({"text": "x"}, dspy.Prediction(sentiment="meh")) == 0.0


GOLD = dspy.Example(
    text="t", name="Maria Lopez", email="maria.lopez@acme.io", phone="(415) 555-0132"
).with_inputs("text")


@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        ({"name": "Maria Lopez", "email": "maria.lopez@acme.io", "phone": "(415) 555-0132"}, 1.0),
        ({"name": " maria lopez.", "email": "<Maria.Lopez@ACME.io>", "phone": "+1 415.555.0132"}, 1.0),
        ({"name": "Maria Lopez", "email": "none", "phone": "none"}, 1 / 3),
        ({"name": "Maria Lopez", "email": "maria.lopez@acme.io", "phone": "415 555 0133"}, 2 / 3),
        ({"name": "Maria", "email": "lopez@acme.io", "phone": "555-0132"}, 0.0),
        ({"name": "Sam", "email": "sam@x.com", "phone": "212-000-0000"}, 0.0),
    ],
)
def test_contact_metric(pred, expected):
    assert contacts.metric(GOLD, dspy.Prediction(**pred)).score == pytest.approx(expected)


def test_contact_metric_absent_fields():
    gold = dspy.Example(text="t", name="Wei Chen", email="none", phone="none").with_inputs("text")
    assert contacts.metric(gold, dspy.Prediction(name="Wei Chen", email="N/A", phone="")).score == 1.0
    assert contacts.metric(
        gold, dspy.Prediction(name="Wei Chen", email="wei@x.com", phone="none")
    ).score == pytest.approx(2 / 3)
    # a prediction that lacks the attribute entirely earns nothing for it
    assert contacts.metric(gold, dspy.Prediction(name="Wei Chen")).score == pytest.approx(1 / 3)


def test_contact_reward_checks_the_text():
    inputs = {"text": "Hi Sam, this is Maria Lopez, maria@acme.io, call (415) 555-0132."}
    good = dspy.Prediction(name="Maria Lopez", email="maria@acme.io", phone="(415) 555-0132")
    invented = dspy.Prediction(name="Maria Lopez", email="maria@other.io", phone="212-555-0000")
    assert contacts.reward(inputs, good) == 1.0
    assert contacts.reward(inputs, invented) == pytest.approx(1 / 3)
