"""Each strategy program runs on one example of each project against dspy.utils.DummyLM."""

from __future__ import annotations

from pathlib import Path

import dspy
import pytest
from dspy.utils import DummyLM
from omegaconf import OmegaConf

import projects.contact_extraction as contacts
import projects.sentiment as sentiment
from dspy_mlflow.project.loader import load_project
from dspy_mlflow.project.strategies import STRATEGIES

CFGS = {
    "predict": {"name": "predict"},
    "chain_of_thought": {"name": "chain_of_thought"},
    "best_of_n": {"name": "best_of_n", "n": 3, "threshold": 1.0},
}


@pytest.mark.parametrize("module", ["projects.sentiment", "projects.contact_extraction"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_runs_on_each_project(module, strategy):
    project = load_project({"module": module})
    example = project.load_examples()[7]
    answer = {k: example[k] for k in project.signature.output_fields}
    if strategy == "chain_of_thought":
        answer = {"reasoning": "Looking at the text.", **answer}
    program = project.make_program(CFGS[strategy])
    with dspy.context(lm=DummyLM([answer] * 3)):
        prediction = program(**example.inputs())
    assert project.metric(example, prediction) == 1.0
    if strategy == "chain_of_thought":
        assert prediction.reasoning == "Looking at the text."


def test_best_of_n_retries_until_the_reward_is_met():
    example = contacts.load_examples()[3]
    gold = {k: example[k] for k in ("name", "email", "phone")}
    invented = {"name": "Nobody Here", "email": "nobody@example.org", "phone": "000-000-0000"}
    program = contacts.make_program(CFGS["best_of_n"])
    with dspy.context(lm=DummyLM([invented, gold, invented])):
        prediction = program(**example.inputs())
    assert contacts.metric(example, prediction).score == 1.0


def test_best_of_n_keeps_the_best_when_threshold_is_never_met():
    example = sentiment.load_examples()[0]
    wrong = "negative" if example.sentiment == "positive" else "positive"
    program = sentiment.make_program({"name": "best_of_n", "n": 2, "threshold": 2.0})
    lm = DummyLM([{"sentiment": wrong}, {"sentiment": example.sentiment}])
    with dspy.context(lm=lm):
        prediction = program(**example.inputs())
    # both attempts have reward 1.0 (valid labels): the first one is kept, and both were tried
    assert prediction.sentiment == wrong
    assert next(lm.answers, None) is None  # the second scripted answer was consumed too


CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize("project_name", ["sentiment", "contact_extraction"])
def test_yaml_entries_load_and_build(project_name):
    project_cfg = OmegaConf.load(CONF / "project" / f"{project_name}.yaml")
    assert (
        project_cfg.name is None  # named after its module: checked on the loaded project below
        and project_cfg.module == f"projects.{project_name}"
        and project_cfg.split.train == 0.5
        and project_cfg.split.limit is None
    )
    project = load_project(project_cfg)
    assert project.name == project_name
    for strategy in STRATEGIES:
        strategy_cfg = OmegaConf.load(CONF / "strategy" / f"{strategy}.yaml")
        assert strategy_cfg.name == strategy
        program = project.make_program(strategy_cfg)
        assert len(program.named_predictors()) == 1
        if strategy == "best_of_n":
            assert (program.N, program.threshold) == (3, 1.0)
