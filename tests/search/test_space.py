"""Fast checks: search config errors, space merging, storage and study-name rules (no LM)."""

from __future__ import annotations

import pytest

from dspy_mlflow.errors import ConfigError
from dspy_mlflow.job.validation import validate_job as validate
from dspy_mlflow.search.space import check_search, merged_space
from dspy_mlflow.search.storage import display_url, storage_url, study_name

from .conftest import compose


def _cfg(*overrides: str) -> dict:
    return compose(["search=optuna", *overrides])


@pytest.mark.parametrize(("overrides", "key", "allowed"), [
    (["+search.space.bogus={type:int,low:1,high:3}"], "search.space.bogus", "BootstrapFewShot parameter"),
    (["+optimizer.search_space.nope={type:int,low:1,high:3}"], "optimizer.search_space.nope", "parameter"),
    (["+search.space.max_labeled_demos.low=20"], "search.space.max_labeled_demos.high", "greater than low=20"),
    (["+search.space.max_labeled_demos={type:float,low:0,high:2,log:true}"], "search.space.max_labeled_demos.low",
     "> 0 when log"),
    (["+search.space.max_labeled_demos={type:categorical,choices:[]}"], "search.space.max_labeled_demos.choices",
     "non-empty"),
    (["+search.space.max_labeled_demos.type=normal"], "search.space.max_labeled_demos.type", "int, float"),
    (["search.sampler=annealing"], "search.sampler", "tpe, random"),
    (["search.n_trials=0"], "search.n_trials", ">= 1"),
    (["search.objectives=[cost]"], "search.objectives", "includes dev_score"),
    (["search.objectives=[dev_score,latency]"], "search.objectives", "dev_score, cost"),
    (["search.select=median"], "search.select", "best_score_under_budget"),
    (["search.storage=optuna.db"], "search.storage", "journal:///"),
    (["+search.trials=3"], "search.trials", "n_trials"),
    (["optimizer=none"], "optimizer", "needs an optimizer with hyperparameters"),
    (["optimizer=auto"], "optimizer", "needs an optimizer with hyperparameters"),
    (["optimizer=labeled_few_shot", "optimizer.search_space.k=null"], "optimizer.search_space", "at least one"),
])
def test_bad_search_config_is_one_line_naming_key_value_allowed(overrides, key, allowed):
    with pytest.raises(ConfigError) as info:
        validate(_cfg(*overrides))
    assert info.value.key == key
    assert allowed in info.value.allowed
    assert "\n" not in str(info.value) and key in str(info.value)


def test_every_optimizer_space_is_valid():
    for name in ("labeled_few_shot", "bootstrap_few_shot", "bootstrap_random_search", "mipro_v2", "copro",
                 "simba", "gepa"):
        check_search(_cfg(f"optimizer={name}"))


def test_space_overrides_merge_narrow_add_and_remove():
    cfg = _cfg("+search.space.max_labeled_demos.high=8", "+search.space.max_rounds={type:int,low:1,high:3}",
               "+search.space.max_bootstrapped_demos=null")
    check_search(cfg)
    assert merged_space(cfg) == {"max_labeled_demos": {"type": "int", "low": 0, "high": 8},
                                 "max_rounds": {"type": "int", "low": 1, "high": 3}}
    # a new type replaces the spec instead of merging into it
    cfg = _cfg("+search.space.max_labeled_demos={type:categorical,choices:[0,4,16]}")
    check_search(cfg)
    assert merged_space(cfg)["max_labeled_demos"] == {"type": "categorical", "choices": [0, 4, 16]}


def test_storage_defaults_beside_the_mlflow_store():
    assert storage_url(_cfg("tracking.uri=sqlite:////data/runs/mlflow.db")) == "sqlite:////data/runs/optuna.db"
    assert storage_url(_cfg("tracking.uri=sqlite:///mlflow.db")) == "sqlite:///optuna.db"
    assert storage_url(_cfg("tracking.uri=http://127.0.0.1:5000")) == "sqlite:///optuna.db"
    assert storage_url(_cfg("search.storage=journal:///tmp/s.log")) == "journal:///tmp/s.log"
    assert display_url("postgresql://me:pw@db:5432/optuna") == "postgresql://me:***@db:5432/optuna"


def test_study_name_ignores_searched_params_and_search_budget_but_not_the_model():
    base = study_name(_cfg())
    assert base.startswith("sentiment-bootstrap_few_shot-")
    for same in (["optimizer.max_labeled_demos=3"], ["search.n_trials=50", "search.sampler=random"],
                 ["+search.space.max_labeled_demos.high=8"], ["tracking.uri=sqlite:///elsewhere.db"],
                 ["budget.max_cost_usd=1.0"]):
        assert study_name(_cfg(*same)) == base, same
    for other in (["model=gpt4o_mini"], ["optimizer.max_rounds=2"], ["search.objectives=[dev_score,cost]"],
                  ["project.split.limit=10"]):
        assert study_name(_cfg(*other)) != base, other
    assert study_name(_cfg("search.study_name=mine")) == "mine"
