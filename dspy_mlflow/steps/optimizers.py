"""Optimizer registry: config entry name -> DSPy teleprompter. Each entry is checked against its
typed schema (:mod:`.optimizer_schema`), then compiled with what the job adds (metric, threads, seed)."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from typing import Any

from dspy_mlflow.config.typed import check_against, fields_of, kind_of
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.project.metric import with_feedback
from dspy_mlflow.steps.optimizer_schema import RESERVED, SCHEMAS

_CLASSES = {name: cls for name, (_, cls) in SCHEMAS.items() if cls}
OPTIMIZERS = tuple(SCHEMAS)

# Defaults each optimizer gets unless the config says otherwise.
_AUTO_DEFAULTS: dict[str, dict[str, Any]] = {
    "labeled_few_shot": {},
    "bootstrap_few_shot": {"max_bootstrapped_demos": 4, "max_labeled_demos": 16},
    "bootstrap_random_search": {"num_candidate_programs": 4},
    "mipro_v2": {"auto": None, "num_candidates": 3, "compile": {"num_trials": 4, "minibatch": False}},
}


def pick_auto(train_size: int) -> str:
    """What ``optimizer=auto`` resolves to for a training set of this size."""
    if train_size < 20:
        return "labeled_few_shot"
    if train_size < 100:
        return "bootstrap_few_shot"
    if train_size < 400:
        return "bootstrap_random_search"
    return "mipro_v2"


def auto_entry(train_size: int) -> dict[str, Any]:
    name = pick_auto(train_size)
    return {"name": name, **_AUTO_DEFAULTS[name]}


def optimizer_class(name: str):
    import dspy

    if name not in _CLASSES:
        raise ConfigError("optimizer.name", name, f"one of {', '.join(OPTIMIZERS)}")
    return getattr(dspy, _CLASSES[name])


def _accepts(fn: Callable) -> set[str]:
    """The argument names of ``fn`` (a DSPy optimizer's constructor or compile())."""
    return set(inspect.signature(fn).parameters) - {"self"}


def split_entry(entry: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(constructor kwargs, compile kwargs) of an optimizer entry."""
    ctor = {k: v for k, v in entry.items() if k not in RESERVED}
    return ctor, dict(entry.get("compile") or {})


def constructor_keys(name: str) -> list[str]:
    """What entry ``name`` may set for its DSPy constructor (``search=optuna`` may search them)."""
    return sorted(k for k in fields_of(SCHEMAS[name][0]) if k not in RESERVED)


def compile_keys(name: str) -> list[str]:
    return sorted(fields_of(compile_schema(name)))


def compile_schema(name: str) -> type:
    """The dataclass of entry ``name``'s ``compile`` section."""
    return typing.get_type_hints(SCHEMAS[name][0])["compile"]


def class_name(name: str) -> str | None:
    return SCHEMAS[name][1]


def check_entry(entry: Mapping[str, Any]) -> None:
    """Keys and types from the entry's schema, then value ranges, choices and DSPy's cross-argument rules."""
    name = entry.get("name")
    if name not in SCHEMAS:
        raise ConfigError("optimizer.name", name, f"one of {', '.join(OPTIMIZERS)}")
    schema, cls_name = SCHEMAS[name]

    def unknown(parent: str) -> str:
        if cls_name is None:
            return f"optimizer={name} takes no parameters"
        if parent == "compile":
            return f"{cls_name}.compile accepts {', '.join(compile_keys(name))}"
        return f"{cls_name} accepts {', '.join(constructor_keys(name))}"

    ctor, comp = split_entry(entry)
    known, known_compile = set(fields_of(schema)), set(fields_of(compile_schema(name)))
    for key, value in ctor.items():
        if key in known:
            check_value(f"optimizer.{key}", value, schema, key)
    for key, value in comp.items():
        if key in known_compile:
            check_value(f"optimizer.compile.{key}", value, compile_schema(name), key)
    # then unknown keys, and the types of what check_value does not look at (strings, mappings)
    check_against(schema, {k: v for k, v in entry.items() if v is not None or k not in ("compile", "search_space")},
                  "optimizer", unknown)
    _check_combination(name, ctor, comp)


def _check_combination(name: str, ctor: Mapping[str, Any], comp: Mapping[str, Any]) -> None:
    """Rules DSPy enforces across parameters, only when the optimizer starts (mid-run)."""
    if name == "mipro_v2":
        set_by_hand = [k for k, v in (("optimizer.num_candidates", ctor.get("num_candidates")),
                                      ("optimizer.compile.num_trials", comp.get("num_trials"))) if v is not None]
        auto = ctor.get("auto", "light")  # MIPROv2's default
        if auto is not None and set_by_hand:
            raise ConfigError("optimizer.auto", auto, "null while " + " and ".join(set_by_hand) +
                              " are set (auto picks them; to use auto pass " +
                              " ".join(f"{k}=null" for k in set_by_hand) + ")")
        if auto is None and len(set_by_hand) < 2:
            raise ConfigError("optimizer.auto", None, "light, medium or heavy unless both "
                              "optimizer.num_candidates and optimizer.compile.num_trials are set")
    if name == "gepa":
        budgets = ("auto", "max_full_evals", "max_metric_calls")
        chosen = [k for k in budgets if ctor.get(k) is not None]
        if len(chosen) > 1:
            raise ConfigError(f"optimizer.{chosen[-1]}", ctor[chosen[-1]],
                              f"null when optimizer.{chosen[0]}={ctor[chosen[0]]} is set "
                              f"(GEPA takes exactly one budget of {', '.join(budgets)})")
        if not chosen:
            raise ConfigError("optimizer.max_metric_calls", None, "a number, or another GEPA budget: "
                              "optimizer.auto (light, medium, heavy) or optimizer.max_full_evals")


def check_value(key: str, value: Any, schema: type, field_name: str) -> None:
    """Counts and sizes are non-negative ints; rates are non-negative numbers; flags are booleans;
    a field with ``choices`` takes one of them."""
    spec = next(f for f in dataclasses.fields(schema) if f.name == field_name)
    choices = spec.metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join("null" if c is None else str(c) for c in choices))
    if value is None:
        return
    kind = kind_of(schema, field_name)
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(key, value, "true or false")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(key, value, "a whole number >= 0")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise ConfigError(key, value, "a number >= 0")


def gepa_metric(metric: Callable) -> Callable:
    """GEPA calls metric(gold, pred, trace, pred_name, pred_trace) and reflects on the feedback of a
    ``dspy.Prediction(score=..., feedback=...)``; a metric without feedback gives GEPA its score."""
    import dspy

    judge = with_feedback(metric)

    def wrapped(gold, pred, trace=None, pred_name=None, pred_trace=None):
        score, feedback = judge(gold, pred, trace, pred_name, pred_trace)
        return score if feedback is None else dspy.Prediction(score=score, feedback=feedback)

    return wrapped


def compile_program(entry: Mapping[str, Any], program, *, metric, trainset, devset, lm, num_threads, seed,
                    progress=None):
    """Run the optimizer named by ``entry`` on ``program``; returns the compiled program.
    ``progress``: a :class:`~dspy_mlflow.steps.progress.GepaProgress` that GEPA reports to."""
    name = entry["name"]
    if name == "none":
        return program
    cls = optimizer_class(name)
    ctor, comp = split_entry(entry)
    accepted = _accepts(cls.__init__)
    if "metric" in accepted:
        ctor["metric"] = gepa_metric(metric) if name == "gepa" else metric
    if "num_threads" in accepted and ctor.get("num_threads") is None:
        ctor["num_threads"] = num_threads
    if "max_errors" in accepted and ctor.get("max_errors") is None:
        # a model that answers unparsably (mlx_tiny) leaves the demos out, it does not stop the job:
        # its parse errors are counted per example, and an unchanged program is flagged
        ctor["max_errors"] = len(trainset) + len(devset or []) + 1
    if name == "gepa":
        ctor.setdefault("reflection_lm", lm)
        ctor.setdefault("seed", seed)
        if progress is not None:
            kwargs = dict(ctor.get("gepa_kwargs") or {})
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), progress]
            ctor["gepa_kwargs"] = kwargs
    if name == "mipro_v2":
        ctor.setdefault("seed", seed)
        comp.setdefault("requires_permission_to_run", False)
    if name == "simba":
        ctor["bsize"] = min(int(ctor.get("bsize", 32)), len(trainset))
    # DSPy prints its optimizers' notes and progress bars to stdout; they belong on stderr with the
    # other progress, so stdout carries only the job's own lines (summary, leaderboard)
    with contextlib.redirect_stdout(sys.stderr):
        optimizer = cls(**ctor)
    compile_accepts = _accepts(cls.compile)
    if "valset" in compile_accepts and devset:
        comp.setdefault("valset", devset)
    if name == "simba":
        comp.setdefault("seed", seed)
    if name == "copro":
        comp.setdefault("eval_kwargs", {"num_threads": num_threads, "display_progress": False})
    with contextlib.redirect_stdout(sys.stderr):
        return optimizer.compile(program, trainset=trainset, **comp)
