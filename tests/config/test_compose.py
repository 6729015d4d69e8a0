"""Every entry of every config group composes onto the schema; typos are rejected."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from dspy_mlflow.config.paths import conf_dir
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.job.validation import validate_job as validate

GROUPS = ["model", "optimizer", "strategy", "project", "search", "tracking"]
ENTRIES = [(g, p.stem) for g in GROUPS for p in sorted((conf_dir() / g).glob("*.yaml"))]
REQUIRED = {
    "model": {"offline", "gpt4o", "gpt4o_mini", "claude_sonnet", "mlx_7b", "mlx_tiny", "openai_compatible"},
    "optimizer": {"none", "labeled_few_shot", "bootstrap_few_shot", "bootstrap_random_search", "mipro_v2",
                  "copro", "simba", "gepa", "auto"},
    "strategy": {"predict", "chain_of_thought", "best_of_n"},
    "search": {"none", "optuna"},
    "tracking": {"local", "server"},
}


@pytest.mark.parametrize("group", sorted(REQUIRED))
def test_required_entries_exist(group):
    names = {p.stem for p in (conf_dir() / group).glob("*.yaml")}
    assert REQUIRED[group] <= names, REQUIRED[group] - names


@pytest.mark.parametrize(("group", "entry"), ENTRIES, ids=[f"{g}={e}" for g, e in ENTRIES])
def test_entry_composes_and_validates(compose_cfg, group, entry):
    cfg = compose_cfg(f"{group}={entry}")
    plain = OmegaConf.to_container(cfg, resolve=True)
    if group == "project":  # a project entry names its module; its name comes from it
        assert plain["project"]["name"] is None and plain["project"]["module"] == f"projects.{entry}"
    elif group != "tracking":
        assert plain[group]["name"] == entry
    validate(plain)


@pytest.mark.parametrize("entry", sorted(p.stem for p in (conf_dir() / "experiment").glob("*.yaml")))
def test_experiment_presets_compose(compose_cfg, entry):
    cfg = compose_cfg(f"experiment={entry}")
    validate(OmegaConf.to_container(cfg, resolve=True))


def test_defaults_are_offline_and_local(compose_cfg):
    cfg = compose_cfg()
    assert cfg.model.name == "offline" and cfg.search.name == "none"
    assert cfg.tracking.uri == "sqlite:///mlflow.db"


def test_typo_in_key_is_rejected_before_running(compose_cfg):
    with pytest.raises(ConfigCompositionException, match="temprature"):
        compose_cfg("model.temprature=0.5")


def test_wrong_type_is_rejected(compose_cfg):
    with pytest.raises(ConfigCompositionException, match="model.max_tokens"):
        compose_cfg("model.max_tokens=lots")


def test_unknown_group_option_lists_the_allowed_ones(compose_cfg):
    with pytest.raises(ConfigCompositionException, match="gpt4o_mini"):
        compose_cfg("model=gpt5_turbo")


@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("+optimizer.max_bootstraped_demos=3", "optimizer.max_bootstraped_demos", "max_bootstrapped_demos"),
        ("model.temperature=3.5", "model.temperature", "[0.0, 2.0]"),
        ("strategy.name=tree_of_thought", "strategy.name", "chain_of_thought"),
        ("eval.num_threads=0", "eval.num_threads", "[1, 256]"),
        ("budget.max_cost_usd=-1", "budget.max_cost_usd", "or null"),
        ("model.litellm_model=gpt-4o", "model.litellm_model", "<provider>/<model>"),
    ],
)
def test_bad_values_name_key_value_and_allowed(compose_cfg, override, key, allowed):
    with pytest.raises(ConfigError) as info:
        validate(OmegaConf.to_container(compose_cfg(override), resolve=True))
    message = str(info.value)
    assert key in message and allowed in message and "\n" not in message
    assert override.split("=", 1)[1] in message


def test_optimizer_typo_without_plus_is_rejected_by_hydra(compose_cfg):
    with pytest.raises(ConfigCompositionException, match="max_bootstraped_demos"):
        compose_cfg("optimizer.max_bootstraped_demos=3")


def test_optimizer_compile_params_are_checked(compose_cfg):
    cfg = OmegaConf.to_container(compose_cfg("optimizer=mipro_v2", "+optimizer.compile.num_trails=3"), resolve=True)
    with pytest.raises(ConfigError, match="optimizer.compile.num_trails.*num_trials"):
        validate(cfg)


def test_user_conf_dir_adds_entries(tmp_path, monkeypatch, compose_cfg):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "my_offline.yaml").write_text(
        "name: my_offline\nlitellm_model: offline/mine\npricing: {input_per_1m: 1.0, output_per_1m: 2.0}\n")
    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg("model=my_offline")
    assert cfg.model.litellm_model == "offline/mine" and cfg.model.pricing.output_per_1m == 2.0


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"),
    [
        (["optimizer=labeled_few_shot", "optimizer.k=abc"], "optimizer.k", "a whole number >= 0"),
        (["optimizer=labeled_few_shot", "optimizer.k=-2"], "optimizer.k", "a whole number >= 0"),
        (["optimizer.max_bootstrapped_demos=1.5"], "optimizer.max_bootstrapped_demos", "a whole number >= 0"),
        (["optimizer.max_bootstrapped_demos=-3"], "optimizer.max_bootstrapped_demos", "a whole number >= 0"),
        (["optimizer=copro", "optimizer.init_temperature=hot"], "optimizer.init_temperature", "a number >= 0"),
        (["optimizer=gepa", "optimizer.use_merge=maybe"], "optimizer.use_merge", "true or false"),
        (["optimizer=mipro_v2", "optimizer.num_candidates=-1"], "optimizer.num_candidates", "a whole number >= 0"),
        (["optimizer=mipro_v2", "optimizer.compile.num_trials=x"], "optimizer.compile.num_trials", ">= 0"),
    ],
)
def test_optimizer_values_are_checked_by_type_and_range(compose_cfg, overrides, key, allowed):
    with pytest.raises(ConfigError) as info:
        validate(OmegaConf.to_container(compose_cfg(*overrides), resolve=True))
    assert key in str(info.value) and allowed in str(info.value)
