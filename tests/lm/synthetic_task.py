"""A small synthetic classification task built from made-up words, so no rule can be tuned to it.

Each text is five filler words and one keyword, shuffled; each of three made-up labels owns three
keywords. Nothing but the examples tells which keyword means which label.
"""

from __future__ import annotations

import random
from typing import Literal

import dspy

_SYLLABLES = ("ka", "lo", "mi", "ru", "te", "zo", "vi", "pa", "ne", "qu", "shi", "bo", "fa", "gu", "dre")


def _vocabulary(rng: random.Random, n: int) -> list[str]:
    words: list[str] = []
    while len(words) < n:
        w = "".join(rng.choice(_SYLLABLES) for _ in range(3))
        if w not in words:
            words.append(w)
    return words


def build(seed: int, n: int = 150) -> tuple[type[dspy.Signature], list[dspy.Example], list[str]]:
    """(signature, examples, labels) of the task drawn with ``seed``."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, 3 + 9 + 30)
    labels, keywords, filler = vocab[:3], vocab[3:12], vocab[12:]
    owned = {label: keywords[3 * i : 3 * i + 3] for i, label in enumerate(labels)}
    examples = []
    for i in range(n):
        label = labels[i % 3]
        words = rng.sample(filler, 5) + [rng.choice(owned[label])]
        rng.shuffle(words)
        examples.append(dspy.Example(text=" ".join(words), label=label).with_inputs("text"))
    rng.shuffle(examples)
    signature = dspy.make_signature(
        {"text": (str, dspy.InputField()), "label": (Literal[tuple(labels)], dspy.OutputField())},
        "Label the text.",
    )
    return signature, examples, labels


def metric(example, prediction, trace=None, pred_name=None, pred_trace=None):
    """Accuracy with feedback in the convention the built-in projects use."""
    got = str(getattr(prediction, "label", "")).strip()
    if got == example.label:
        return dspy.Prediction(score=1.0, feedback=f'Correct: the label is "{example.label}".')
    return dspy.Prediction(score=0.0, feedback=f'Wrong: the label should be "{example.label}", not "{got}".')


def accuracy(program, examples) -> list[float]:
    return [float(metric(e, program(**e.inputs())).score) for e in examples]
