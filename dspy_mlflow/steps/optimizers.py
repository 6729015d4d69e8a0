"""Optimizer registry: config entry name -> DSPy teleprompter, with params checked
against the real constructor and ``compile()`` signatures."""

from __future__ import annotations

import contextlib
import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dspy_mlflow.errors import ConfigError

# Keys of an optimizer entry that are not constructor arguments.
RESERVED = {"name", "compile", "search_space"}

_CLASSES = {
    "labeled_few_shot": "LabeledFewShot",
    "bootstrap_few_shot": "BootstrapFewShot",
    "bootstrap_random_search": "BootstrapFewShotWithRandomSearch",
    "mipro_v2": "MIPROv2",
    "copro": "COPRO",
    "simba": "SIMBA",
    "gepa": "GEPA",
}
OPTIMIZERS = ("none", *_CLASSES, "auto")

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


def accepted_params(fn: Callable, skip: set[str]) -> tuple[set[str], bool]:
    params = inspect.signature(fn).parameters
    varkw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return {n for n in params if n not in skip and n != "self"}, varkw


def split_entry(entry: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(constructor kwargs, compile kwargs) of an optimizer entry."""
    ctor = {k: v for k, v in entry.items() if k not in RESERVED}
    return ctor, dict(entry.get("compile") or {})


def check_entry(entry: Mapping[str, Any]) -> None:
    """Reject params the DSPy constructor or compile() does not take."""
    name = entry.get("name")
    if name not in OPTIMIZERS:
        raise ConfigError("optimizer.name", name, f"one of {', '.join(OPTIMIZERS)}")
    ctor, comp = split_entry(entry)
    if name in ("none", "auto"):
        if ctor or comp:
            key = next(iter(ctor or comp))
            raise ConfigError(f"optimizer.{key}", (ctor or comp)[key], f"optimizer={name} takes no parameters")
        return
    cls = optimizer_class(name)
    allowed, _ = accepted_params(cls.__init__, skip={"metric"})
    for key, value in ctor.items():
        if key not in allowed:
            raise ConfigError(
                f"optimizer.{key}", value, f"{cls.__name__} accepts {', '.join(sorted(allowed))}"
            )
        check_value(f"optimizer.{key}", value, inspect.signature(cls.__init__).parameters[key])
    allowed_c, _ = accepted_params(cls.compile, skip={"student", "trainset", "valset", "teacher"})
    for key, value in comp.items():
        if key not in allowed_c:
            raise ConfigError(
                f"optimizer.compile.{key}", value,
                f"{cls.__name__}.compile accepts {', '.join(sorted(allowed_c))}",
            )
        check_value(f"optimizer.compile.{key}", value, inspect.signature(cls.compile).parameters[key])
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


def _choices(param: inspect.Parameter) -> tuple | None:
    """The values of a ``Literal[...]`` (or ``Literal[...] | None``) annotation, else None."""
    annotation = param.annotation
    if isinstance(annotation, str):
        return None
    args = (annotation,) if typing.get_origin(annotation) is Literal else typing.get_args(annotation)
    literal = [a for a in args if typing.get_origin(a) is Literal]
    if not literal:
        return None
    none = type(None) in args
    return (*typing.get_args(literal[0]), *((None,) if none else ()))


def _expected_kind(param: inspect.Parameter) -> str | None:
    """'bool', 'int' or 'float' from the DSPy parameter's default, else its annotation; None: not checked."""
    default = param.default
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    text = str(param.annotation).replace("typing.", "")
    for kind in ("bool", "float", "int"):
        if text.startswith(kind) and ("None" in text or text == kind):
            return kind
    return None


def check_value(key: str, value: Any, param: inspect.Parameter) -> None:
    """Counts and sizes are non-negative ints; rates are non-negative numbers; flags are booleans."""
    choices = _choices(param)
    if choices is not None and value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join("null" if c is None else str(c) for c in choices))
    if value is None:
        return
    kind = _expected_kind(param)
    if kind == "bool" and not isinstance(value, bool):
        raise ConfigError(key, value, "true or false")
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(key, value, "a whole number >= 0")
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise ConfigError(key, value, "a number >= 0")


@dataclass
class Compiled:
    program: Any
    optimizer: str  # the resolved name (auto -> what it picked)


def gepa_metric(metric: Callable) -> Callable:
    """GEPA calls metric(gold, pred, trace, pred_name, pred_trace)."""

    def wrapped(gold, pred, trace=None, pred_name=None, pred_trace=None):
        return float(metric(gold, pred, trace))

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
    accepted, _ = accepted_params(cls.__init__, skip=set())
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
    compile_accepts, _ = accepted_params(cls.compile, skip=set())
    if "valset" in compile_accepts and devset:
        comp.setdefault("valset", devset)
    if name == "simba":
        comp.setdefault("seed", seed)
    if name == "copro":
        comp.setdefault("eval_kwargs", {"num_threads": num_threads, "display_progress": False})
    with contextlib.redirect_stdout(sys.stderr):
        return optimizer.compile(program, trainset=trainset, **comp)
