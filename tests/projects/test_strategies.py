"""dspy_mlflow.project.strategies: the three strategies, their errors, and JSON state round trips."""

from __future__ import annotations

import json

import cloudpickle
import dspy
import pytest

import projects.contact_extraction as contacts
import projects.sentiment as sentiment
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.project.strategies import STRATEGIES, build_program, outputs_present

STRATEGY_CFGS = {
    "predict": {"name": "predict"},
    "chain_of_thought": {"name": "chain_of_thought"},
    "best_of_n": {"name": "best_of_n", "n": 4, "threshold": 0.5},
}
PROJECTS = {"sentiment": sentiment, "contact_extraction": contacts}


def test_strategy_names():
    assert STRATEGIES == ("predict", "chain_of_thought", "best_of_n")
    assert set(STRATEGY_CFGS) == set(STRATEGIES)


def test_types_and_best_of_n_settings():
    assert type(build_program(sentiment.signature, {"name": "predict"})) is dspy.Predict
    cot = build_program(sentiment.signature, {"name": "chain_of_thought"})
    assert isinstance(cot, dspy.ChainOfThought)
    assert list(cot.predict.signature.output_fields) == ["reasoning", "sentiment"]
    bon = build_program(sentiment.signature, STRATEGY_CFGS["best_of_n"], reward=sentiment.reward)
    assert isinstance(bon, dspy.BestOfN) and type(bon.module) is dspy.Predict
    assert (bon.N, bon.threshold) == (4, 0.5)
    assert bon.reward_fn({}, dspy.Prediction(sentiment="positive")) == 1.0
    assert bon.reward_fn({}, dspy.Prediction(sentiment="great")) == 0.0  # the project reward, not the default


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        build_program(sentiment.signature, {"name": "tree_of_thought"})
    assert info.value.key == "strategy.name" and info.value.value == "tree_of_thought"
    assert "one of: predict, chain_of_thought, best_of_n" in str(info.value)


@pytest.mark.parametrize(
    ("cfg", "key"),
    [({"n": 0}, "strategy.n"), ({"n": "3"}, "strategy.n"), ({"threshold": "hi"}, "strategy.threshold")],
)
def test_bad_best_of_n_settings(cfg, key):
    with pytest.raises(ConfigError) as info:
        build_program(sentiment.signature, {"name": "best_of_n", **cfg})
    assert info.value.key == key


def test_default_reward_is_all_outputs_non_empty():
    reward = outputs_present(contacts.signature)
    assert reward({}, dspy.Prediction(name="A", email="none", phone="1")) == 1.0
    assert reward({}, dspy.Prediction(name="A", email=" ", phone="1")) == 0.0
    assert reward({}, dspy.Prediction(name="A", email="a@b.c")) == 0.0
    program = build_program(contacts.signature, {"name": "best_of_n", "n": 2, "threshold": 1.0})
    assert program.reward_fn({}, dspy.Prediction(name="A", email="e", phone="")) == 0.0


def _strings(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*map(_strings, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_strings, value)) if value else set()
    return {value} if isinstance(value, str) else set()


@pytest.mark.parametrize("project", sorted(PROJECTS))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_json_state_round_trip(tmp_path, project, strategy):
    mod = PROJECTS[project]
    program = mod.make_program(STRATEGY_CFGS[strategy])
    demos = [ex for ex in mod.load_examples()[:2]]
    for _, predictor in program.named_predictors():
        predictor.demos = demos
        predictor.signature = predictor.signature.with_instructions("Optimized instructions.")
    path = tmp_path / "program.json"
    program.save(str(path))
    strings = _strings(json.loads(path.read_text()))
    assert "Optimized instructions." in strings and demos[1].text in strings

    fresh = mod.make_program(STRATEGY_CFGS[strategy])
    assert fresh.dump_state() != program.dump_state()
    fresh.load(str(path))
    assert fresh.dump_state() == program.dump_state()
    ((_, loaded),) = fresh.named_predictors()
    assert loaded.signature.instructions == "Optimized instructions."
    assert [d["text"] for d in loaded.demos] == [d.text for d in demos]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_programs_pickle(strategy):
    program = contacts.make_program(STRATEGY_CFGS[strategy])
    clone = cloudpickle.loads(cloudpickle.dumps(program))
    assert clone.dump_state() == program.dump_state()
