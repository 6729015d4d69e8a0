"""Every config error is found by validation, before any run exists: unknown keys, ranges,
optimizer parameter combinations, a program factory that raises."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dspy_mlflow.errors import ConfigError, ProjectError
from dspy_mlflow.job.validation import validate_job as validate


def plain(compose_cfg, *overrides):
    return OmegaConf.to_container(compose_cfg(*overrides), resolve=True)


@pytest.mark.parametrize(("overrides", "message"), [
    (["+nonsense_key=1"], "nonsense_key=1 is not allowed: the config has no key 'nonsense_key'; its keys are model,"),
    (["+eval.foo=1"], "eval.foo=1 is not allowed: eval has no key 'foo'; its keys are num_threads, progress"),
    (["+model.pricing.per_call=1"], "model.pricing.per_call=1 is not allowed: model.pricing has no key 'per_call'"),
    (["+search.foo=1"], "search.foo=1 is not allowed: search=none takes no parameters"),
    (["project.split.train=0"], "project.split.train=0.0 is not allowed: a fraction in (0, 1)"),
    (["project.split.train=0.6", "project.split.dev=0.4"], "project.split.dev=0.4 is not allowed: a fraction with "
                                                           "train + dev < 1 (train is 0.6"),
    (["project.split.limit=1"], "project.split.limit=1 is not allowed: an integer >= 3"),
])
def test_cheap_config_errors(compose_cfg, overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(plain(compose_cfg, *overrides))
    assert message in str(info.value)


def test_free_form_sections_take_new_keys(compose_cfg):
    validate(plain(compose_cfg, "model=gpt4o", "+model.provider_options.timeout=5", "optimizer=labeled_few_shot",
                   "search=optuna", "+search.space.k.high=4"))


def test_wrong_types_from_python_are_caught_too(compose_cfg):
    conf = plain(compose_cfg)
    conf["eval"]["num_threads"] = "many"
    with pytest.raises(ConfigError, match="eval.num_threads='many' is not allowed: Value 'many' of type 'str'"):
        validate(conf)


def test_a_hydra_node_is_not_an_unknown_key(compose_cfg):
    conf = plain(compose_cfg)
    validate({**conf, "hydra": {"run": {"dir": "out"}}})


@pytest.mark.parametrize(("overrides", "message"), [
    (["optimizer=mipro_v2", "optimizer.auto=extreme"], "optimizer.auto='extreme' is not allowed: one of light, "
                                                        "medium, heavy, null"),
    (["optimizer=mipro_v2", "optimizer.auto=light"], "optimizer.auto='light' is not allowed: null while "
                                                      "optimizer.num_candidates and optimizer.compile.num_trials"),
    (["optimizer=mipro_v2", "optimizer.num_candidates=null"], "optimizer.auto=None is not allowed: light, medium "
                                                               "or heavy unless both"),
    (["optimizer=gepa", "+optimizer.auto=light"], "optimizer.max_metric_calls=800 is not allowed: null when "
                                                   "optimizer.auto=light is set"),
    (["optimizer=gepa", "optimizer.max_metric_calls=null"], "optimizer.max_metric_calls=None is not allowed: a "
                                                             "number, or another GEPA budget"),
    (["optimizer=gepa", "+optimizer.candidate_selection_strategy=best"], "one of pareto, current_best"),
])
def test_optimizer_combinations_dspy_would_reject_mid_run(compose_cfg, overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(plain(compose_cfg, *overrides))
    assert message in str(info.value)


@pytest.mark.parametrize("overrides", [
    ["optimizer=mipro_v2", "optimizer.auto=heavy", "optimizer.num_candidates=null", "optimizer.compile.num_trials=null"],
    ["optimizer=gepa", "optimizer.max_metric_calls=null", "+optimizer.auto=light"],
    ["optimizer=gepa", "optimizer.max_metric_calls=null", "+optimizer.max_full_evals=2"],
])
def test_the_allowed_combinations_pass(compose_cfg, overrides):
    validate(plain(compose_cfg, *overrides))


def test_a_program_factory_that_raises_is_a_project_error(tmp_path):
    from dspy_mlflow.project.loader import check_program, load_project

    source = (tmp_path / "task.py")
    source.write_text(
        "import dspy\n"
        "class signature(dspy.Signature):\n    text: str = dspy.InputField()\n    label: str = dspy.OutputField()\n"
        "def load_examples():\n    return [dspy.Example(text='a', label='b').with_inputs('text')]\n"
        "def metric(example, prediction, trace=None):\n    return 1.0\n"
        "def make_program(strategy):\n"
        "    if strategy['name'] == 'predict':\n        return dspy.Predict(signature)\n"
        "    if strategy['name'] == 'none':\n        return None\n"
        "    raise KeyError('no such strategy\\nsecond line')\n")
    project = load_project({"name": "task", "module": str(source)})
    assert check_program(project, {"name": "predict"}) is not None
    with pytest.raises(ProjectError) as info:
        check_program(project, {"name": "chain_of_thought"})
    assert str(info.value) == (f"project 'task' ({project.module_name}): make_program(strategy=chain_of_thought) "
                               "raised KeyError: 'no such strategy\\nsecond line'")
    with pytest.raises(ProjectError, match=r"make_program\(strategy=none\) returned NoneType, expected a dspy.Module"):
        check_program(project, {"name": "none"})
