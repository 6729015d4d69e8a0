"""Written rules the offline model follows (lm/offline/rules.py), read from real DSPy prompts."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import time
from typing import Literal

import dspy
import pytest

from dspy_mlflow.lm.offline import answer, setup
from dspy_mlflow.lm.offline.rules import decide, normalise, parse_rules, rule_sentences

# labels tied to made-up words no code in the package has seen
TEXTS = {
    "the zorbl flew over the quimp": "blue",
    "two frindles and a zorbl": "blue",
    "a vantor near the old frindle": "green",
    "vantors everywhere today": "green",
    "nothing to report": None,
}


def _signature(instructions: str):
    class Colour(dspy.Signature):
        text: str = dspy.InputField()
        colour: Literal["red", "blue", "green"] = dspy.OutputField()

    return Colour.with_instructions(instructions)


@pytest.fixture(scope="module")
def lm():
    setup()
    return dspy.LM("offline/rules", cache=False)


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
@pytest.mark.parametrize("instructions", [
    'Name the colour. If the text mentions "zorbl", the colour is blue. '
    'When the text contains "vantor", the colour should be green.',
    "Name the colour.\nWords meaning blue: zorbl.\nWords meaning green: vantor.",
], ids=["if-when", "words-meaning"])
def test_a_rule_that_matches_decides_its_field(lm, adapter, instructions):
    program = dspy.Predict(_signature(instructions))
    with dspy.context(lm=lm, adapter=adapter):
        for text, colour in TEXTS.items():
            got = program(text=text).colour
            # no rule matches "nothing to report" and there are no demos: the Literal's first option
            assert got == (colour or "red"), text


def test_rules_are_case_and_plural_tolerant_and_phrases_match_in_order():
    rules = parse_rules('IF THE TEXT MENTIONS "Frindles" OR "not good", THE COLOUR IS Red.')
    outputs = {"colour": ["red", "blue"]}
    assert decide(rules, {"text": "One FRINDLE"}, outputs) == {"colour": "red"}
    assert decide(rules, {"text": "it was not good"}, outputs) == {"colour": "red"}
    assert decide(rules, {"text": "good, not bad"}, outputs) == {}
    assert normalise("Parties, boxes, cats") == ("party", "box", "cat")


def test_the_first_rule_written_decides_and_an_unknown_field_is_left_alone():
    rules = parse_rules('Words meaning green: vantor. If the text mentions "zorbl", the colour is blue. '
                        'If the text mentions "zorbl", the size is large.')
    outputs = {"colour": ["red", "blue", "green"]}
    assert decide(rules, {"text": "a zorbl and a vantor"}, outputs) == {"colour": "green"}
    assert decide(rules, {"text": "a zorbl"}, outputs) == {"colour": "blue"}
    assert len(rule_sentences("Do it well. Words meaning green: vantor. Then stop.")) == 1


def test_a_rule_overrides_the_nearest_demo(lm):
    program = dspy.Predict(_signature('If the text mentions "quimp", the colour is green.'))
    program.demos = [dspy.Example(text="the zorbl flew over the quimp", colour="blue")]
    with dspy.context(lm=lm):
        assert program(text="the zorbl flew over the quimp").colour == "green"
        assert program(text="the zorbl flew").colour == "blue"


def test_a_rule_check_costs_a_small_share_of_an_answer():
    """Side by side in one run (CPU time, min of 5): checking 20 rules against a query costs under
    a third of the offline model answering one prompt. Measured here: 25-35 microseconds vs ~0.2 ms."""
    text = " ".join(f'If the text mentions "w{i}", the colour is blue.' for i in range(20))
    inputs, outputs = {"text": "a short query with w19 at the end " * 3}, {"colour": ["blue", "red"]}
    assert decide(parse_rules(text), inputs, outputs) == {"colour": "blue"}
    messages = dspy.ChatAdapter().format(
        _signature(text), demos=[dspy.Example(text=t, colour=c or "red") for t, c in TEXTS.items()],
        inputs=inputs)

    def cpu_per_call(fn, n=200):
        best = float("inf")
        for _ in range(5):
            t0 = time.process_time()
            for _ in range(n):
                fn()
            best = min(best, (time.process_time() - t0) / n)
        return best

    rule_check = cpu_per_call(lambda: decide(parse_rules(text), inputs, outputs))
    whole_answer = cpu_per_call(lambda: answer(messages))
    assert rule_check < whole_answer / 3, (rule_check, whole_answer)
