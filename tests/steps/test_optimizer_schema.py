"""Each optimizer entry's typed schema against the installed DSPy: the keys it names are the
constructor's and compile()'s arguments, with DSPy's defaults; every argument it leaves out is
one a config cannot express. The shipped conf entries pass their schemas; ConfigStore holds them."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from dspy_mlflow.config.typed import check_against
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.search.schema import SCHEMAS as SEARCH_SCHEMAS
from dspy_mlflow.steps.optimizer_schema import RESERVED, SCHEMAS
from dspy_mlflow.steps.optimizers import compile_schema

CONF = Path(__file__).resolve().parents[2] / "conf"
# arguments that take Python objects, or a secret: not config keys
LEFT_OUT = {"metric", "prompt_model", "task_model", "reflection_lm", "instruction_proposer", "code_proposer",
            "wandb_api_key", "_kwargs"}
COMPILE_LEFT_OUT = {"student", "trainset", "valset", "teacher"}


def _params(fn, left_out):
    return {n: p for n, p in inspect.signature(fn).parameters.items() if n != "self" and n not in left_out
            and p.kind is not inspect.Parameter.VAR_KEYWORD}


def _defaults(schema):
    out = {}
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
    return out


@pytest.mark.parametrize("name", [n for n, (_, cls) in SCHEMAS.items() if cls])
def test_the_schema_is_the_dspy_signature(name):
    import dspy

    schema, cls_name = SCHEMAS[name]
    cls = getattr(dspy, cls_name)
    ctor = _params(cls.__init__, LEFT_OUT)
    fields = {f.name for f in dataclasses.fields(schema)} - set(RESERVED)
    assert fields == set(ctor), f"{cls_name}: schema and DSPy differ by {fields ^ set(ctor)}"
    defaults = _defaults(schema)
    for key, param in ctor.items():
        assert defaults.get(key) == param.default, f"{cls_name}.{key}: {defaults.get(key)!r} != {param.default!r}"
    comp = _params(cls.compile, COMPILE_LEFT_OUT)
    compile_fields = {f.name for f in dataclasses.fields(compile_schema(name))}
    assert compile_fields == set(comp), f"{cls_name}.compile: schema and DSPy differ by {compile_fields ^ set(comp)}"
    compile_defaults = _defaults(compile_schema(name))
    for key, param in comp.items():
        assert compile_defaults.get(key) == param.default, f"{cls_name}.compile.{key}"


@pytest.mark.parametrize("path", sorted((CONF / "optimizer").glob("*.yaml")) + sorted((CONF / "search").glob("*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_entry_passes_its_schema(path):
    entry = yaml.safe_load(path.read_text())
    schemas = SEARCH_SCHEMAS if path.parent.name == "search" else {n: s for n, (s, _) in SCHEMAS.items()}
    check_against(schemas[entry["name"]], entry, path.parent.name, lambda parent: "nothing")


def test_the_optuna_schema_defaults_are_the_shipped_entry():
    entry = yaml.safe_load((CONF / "search" / "optuna.yaml").read_text())
    schema = SEARCH_SCHEMAS["optuna"]
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(schema)}
    assert defaults == entry


def test_a_wrong_type_and_an_unknown_key_name_the_key_the_value_and_what_is_allowed():
    schema = SEARCH_SCHEMAS["optuna"]
    with pytest.raises(ConfigError, match=r"search\.objectives='dev' is not allowed: a list"):
        check_against(schema, {"name": "optuna", "objectives": "dev"}, "search", lambda p: "")
    with pytest.raises(ConfigError, match=r"search\.n_trails=3 is not allowed: the keys"):
        check_against(schema, {"name": "optuna", "n_trails": 3}, "search", lambda p: "the keys")


def test_config_store_holds_every_entry_schema():
    from hydra.core.config_store import ConfigStore

    from dspy_mlflow.job.validation import ENTRY_SCHEMAS, register_config_schemas

    register_config_schemas()
    store = ConfigStore.instance()
    for group, schemas in ENTRY_SCHEMAS.items():
        assert sorted(n.removesuffix(".yaml") for n in store.list(f"schema/{group}")) == sorted(schemas)
    node = store.load("schema/optimizer/mipro_v2.yaml").node
    assert node.compile.minibatch is True and node.auto == "light"
