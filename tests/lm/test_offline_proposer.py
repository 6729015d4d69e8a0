"""The offline model as the proposer and reflection LM of DSPy's instruction optimizers, on synthetic
tasks of made-up words (tests/lm/synthetic_task.py): real DSPy optimizers, the offline model as a real
LiteLLM provider, no mocks."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import contextlib
import io

import dspy
import pytest

from dspy_mlflow.compare.paired import paired
from dspy_mlflow.lm.offline import answer, setup
from dspy_mlflow.lm.offline.prompt import parse_markers
from dspy_mlflow.lm.offline.rules import parse_rules
from tests.lm import synthetic_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lm():
    setup()
    return dspy.LM("offline/proposer", cache=False)


def _split(seed: int):
    signature, examples, labels = synthetic_task.build(seed)
    return signature, examples[:60], examples[60:90], examples[90:]


def _optimize(name: str, program, trainset, valset):
    quiet = contextlib.redirect_stdout(io.StringIO())
    if name == "gepa":
        opt = dspy.GEPA(metric=synthetic_task.metric, reflection_lm=dspy.settings.lm, max_metric_calls=800,
                        reflection_minibatch_size=10, seed=0, num_threads=1)
        with quiet:
            return opt.compile(program, trainset=trainset, valset=valset)
    if name == "mipro_v2":
        opt = dspy.MIPROv2(metric=synthetic_task.metric, auto=None, num_candidates=3, max_bootstrapped_demos=0,
                           max_labeled_demos=0, seed=0, num_threads=1, verbose=False)
        with quiet:
            return opt.compile(program, trainset=trainset, valset=valset, num_trials=4, minibatch=False)
    raise AssertionError(name)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", ["gepa", "mipro_v2"])
def test_instruction_optimizers_beat_the_unoptimized_program(lm, name, seed):
    """Instructions only (no demos): the optimized program beats the plain one on held-out examples,
    and the paired interval of the difference lies above 0."""
    signature, train, val, test = _split(seed)
    with dspy.context(lm=lm):
        plain = dspy.Predict(signature)
        before = synthetic_task.accuracy(plain, test)
        optimized = _optimize(name, plain.deepcopy(), train, val)
        after = synthetic_task.accuracy(optimized, test)
    (predictor,) = optimized.predictors()
    assert predictor.demos == []
    assert parse_rules(predictor.signature.instructions), predictor.signature.instructions
    result = paired(before, after, seed=0)
    assert sum(after) > sum(before) and result.low > 0, (sum(before), sum(after), result)


def test_copro_sees_no_examples_and_keeps_its_instruction(lm):
    """COPRO's meta-prompts show the instruction and scores only: no data to write rules from, so
    the offline model proposes the instruction it was given (or the best attempt it was shown)."""
    signature, train, _, _ = _split(1)
    with dspy.context(lm=lm), contextlib.redirect_stdout(io.StringIO()):
        opt = dspy.COPRO(metric=synthetic_task.metric, breadth=3, depth=2, init_temperature=1.0)
        optimized = opt.compile(dspy.Predict(signature), trainset=train[:20],
                                eval_kwargs={"num_threads": 1, "display_progress": False})
    assert optimized.predictors()[0].signature.instructions == "Label the text."


def test_simba_finishes_and_its_rule_step_advises_the_gold_label(lm):
    """SIMBA's rule step shows one example with its gold outputs: the offline model advises rules
    tying that example's words to its gold label. One example cannot tell the keyword from the
    filler, so SIMBA is not expected to beat the plain program here (the README says so)."""
    from dspy.teleprompt.simba_utils import OfferFeedback

    signature, train, _, _ = _split(1)
    example = train[0]
    text, _ = answer(_meta_prompt(OfferFeedback, program_code="", modules_defn="Label the text.",
                                  program_inputs={"text": example.text}, oracle_metadata={"label": example.label},
                                  worse_program_trajectories="", worse_program_outputs="", worse_reward_value=0.0,
                                  better_program_trajectories="", better_program_outputs="", better_reward_value=1.0,
                                  module_names=["self"]))
    advice = parse_markers(text)["module_advice"]
    rules = parse_rules(advice)
    assert rules and {r.value for r in rules} == {example.label}, advice
    with dspy.context(lm=lm), contextlib.redirect_stdout(io.StringIO()):
        opt = dspy.SIMBA(metric=synthetic_task.metric, bsize=8, num_candidates=3, max_steps=2, max_demos=0,
                         num_threads=1)
        optimized = opt.compile(dspy.Predict(signature), trainset=train, seed=0)
    assert optimized.predictors()[0].demos == []


def _meta_prompt(signature, **inputs) -> list[dict]:
    return dspy.ChatAdapter().format(signature, demos=[], inputs=inputs)


def test_an_unknown_meta_prompt_gets_todays_answer():
    class Rewrite(dspy.Signature):
        """Rewrite the draft."""

        draft: str = dspy.InputField()
        proposed_text: str = dspy.OutputField()

    text, _ = answer(_meta_prompt(Rewrite, draft="If the text mentions a, the label is b."))
    assert "[[ ## proposed_text ## ]]\nunknown" in text


def test_gepa_reflection_drops_a_rule_that_decided_wrongly_and_adds_what_feedback_shows():
    from dspy.teleprompt.gepa.instruction_proposal import ProposeInstruction as Reflect

    rows = [
        {"Inputs": {"text": "zorbl and quimp"}, "Generated Outputs": {"label": "red"},
         "Feedback": 'Wrong: the label should be "blue", not "red".'},
        {"Inputs": {"text": "vantor here"}, "Generated Outputs": {"label": "green"},
         "Feedback": "This trajectory got a score of 1.0."},
    ]
    current = 'Label it. If the text mentions "quimp", the label is red.'
    text, _ = answer(_meta_prompt(Reflect, current_instruction=current, examples_with_feedback=rows))
    new = parse_markers(text)["new_instruction"]
    assert new.startswith("Label it.")
    rules = {p[0]: r.value for r in parse_rules(new) for p in r.phrases}
    assert rules.get("zorbl") == "blue" and rules.get("vantor") == "green" and "quimp" not in rules
