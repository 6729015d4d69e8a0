"""The searched hyperparameters: merge, check, sample.

An optimizer entry declares ``search_space:`` (param -> spec); ``search.space``
overrides it per param from the command line::

    search.space.max_labeled_demos.high=8          # narrow/widen one bound
    +search.space.max_rounds={type:int,low:1,high:3}   # search one more param
    search.space.max_bootstrapped_demos=null       # stop searching a param

Specs: ``{type: int, low, high, step?, log?}``, ``{type: float, low, high, step?, log?}``,
``{type: categorical, choices: [...]}``. A param is a constructor argument of the
DSPy optimizer, or ``compile: {NAME: spec}`` for an argument of its ``compile()``
(flattened to the name ``compile.NAME``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dspy_mlflow.config.typed import check_against, fields_of
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.search.schema import SCHEMAS
from dspy_mlflow.steps.optimizers import class_name, compile_keys, constructor_keys

SEARCHES = tuple(SCHEMAS)
TYPES = ("int", "float", "categorical")
SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "nsga2")
# objective name -> direction; dev_score is required (the job keeps the best-scoring program)
OBJECTIVES = {"dev_score": "maximize", "cost": "minimize", "tokens": "minimize"}
# how the job's program is picked among the trials (the Pareto front when there are several objectives)
SELECTS = ("best_score_under_budget", "best_score", "lowest_cost")
# samplers that need a package Optuna does not install by itself
_SAMPLER_NEEDS = {"cmaes": ("cmaes", "pip install cmaes"), "gp": ("torch", "pip install torch"),
                  "qmc": ("scipy", "pip install scipy")}


def _merge_param(base: Any, over: Any) -> Any:
    if over is None:
        return None
    if not isinstance(over, Mapping) or not isinstance(base, Mapping):
        return over
    if "type" in over and over.get("type") != base.get("type"):
        return dict(over)  # a new type replaces the spec
    return {**base, **over}


def _flatten(space: Mapping | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in (space or {}).items():
        if name == "compile" and isinstance(spec, Mapping) and "type" not in spec:
            for sub, sub_spec in spec.items():
                out[f"compile.{sub}"] = sub_spec
        else:
            out[str(name)] = spec
    return out


def merged_space(cfg: Mapping) -> dict[str, dict[str, Any]]:
    """The optimizer's ``search_space`` with ``search.space`` merged over it; null removes a param."""
    base = _flatten(cfg["optimizer"].get("search_space"))
    over = _flatten((cfg.get("search") or {}).get("space"))
    out = dict(base)
    for name, spec in over.items():
        out[name] = _merge_param(base.get(name), spec) if name in base else spec
    return {k: v for k, v in out.items() if v is not None}


def _where(cfg: Mapping, name: str) -> str:
    over = _flatten((cfg.get("search") or {}).get("space"))
    return f"search.space.{name}" if name in over else f"optimizer.search_space.{name}"


def _is_number(x: Any, kind: type | tuple) -> bool:
    return isinstance(x, kind) and not isinstance(x, bool)


def check_spec(key: str, spec: Any) -> None:
    if not isinstance(spec, Mapping):
        raise ConfigError(key, spec, "a mapping like {type: int, low: 0, high: 8}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{key}.type", kind, f"one of {', '.join(TYPES)}")
    if kind == "categorical":
        allowed = {"type", "choices"}
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ConfigError(f"{key}.choices", choices, "a non-empty list of values")
        for c in choices:
            if c is not None and not isinstance(c, (bool, int, float, str)):
                raise ConfigError(f"{key}.choices", choices, "scalars only (null, bool, int, float, str)")
    else:
        allowed = {"type", "low", "high", "step", "log"}
        num = int if kind == "int" else (int, float)
        low, high = spec.get("low"), spec.get("high")
        for bound, value in (("low", low), ("high", high)):
            if not _is_number(value, num):
                raise ConfigError(f"{key}.{bound}", value, f"{'an integer' if kind == 'int' else 'a number'}")
        if low >= high:
            raise ConfigError(f"{key}.high", high, f"a value greater than low={low}")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{key}.log", log, "true or false")
        if log and low <= 0:
            raise ConfigError(f"{key}.low", low, "a value > 0 when log: true")
        step = spec.get("step")
        if step is not None:
            if not _is_number(step, num) or step <= 0:
                raise ConfigError(f"{key}.step", step, f"a positive {'integer' if kind == 'int' else 'number'}")
            if log and (kind == "float" or step != 1):
                raise ConfigError(f"{key}.step", step, "no step (or step 1 for int) when log: true")
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ConfigError(f"{key}.{extra[0]}", spec[extra[0]], f"{kind} specs take {', '.join(sorted(allowed))}")


def check_section(cfg: Mapping) -> None:
    """The ``search`` section: a known entry; ``none`` takes no parameters; ``optuna`` is checked whole."""
    search = cfg.get("search") or {"name": "none"}
    if search.get("name") not in SEARCHES:
        raise ConfigError("search.name", search.get("name"), f"one of {', '.join(SEARCHES)}")
    if search.get("name") == "none":
        check_against(SCHEMAS["none"], search, "search", lambda _: "search=none takes no parameters (search=optuna does)")
    if search.get("name") == "optuna":
        check_search(cfg)


def check_search(cfg: Mapping) -> None:
    """Everything about ``search=optuna`` that can be wrong, before anything runs."""
    search = cfg.get("search") or {}
    for key in search:
        if key not in fields_of(SCHEMAS["optuna"]):
            raise ConfigError(f"search.{key}", search[key], f"search=optuna takes {', '.join(fields_of(SCHEMAS['optuna']))}")
    n_trials = search.get("n_trials", 10)
    if not _is_number(n_trials, int) or n_trials < 1:
        raise ConfigError("search.n_trials", n_trials, "an integer >= 1")
    timeout = search.get("timeout_s")
    if timeout is not None and (not _is_number(timeout, (int, float)) or timeout <= 0):
        raise ConfigError("search.timeout_s", timeout, "a number of seconds > 0, or null")
    for key, low in (("heartbeat_s", 1), ("grace_s", 2)):
        value = search.get(key)
        if value is not None and (not _is_number(value, int) or value < low):
            raise ConfigError(f"search.{key}", value, f"an integer >= {low}, or null")
    if search.get("heartbeat_s") and search.get("grace_s") and search["grace_s"] <= search["heartbeat_s"]:
        raise ConfigError("search.grace_s", search["grace_s"], f"more than search.heartbeat_s={search['heartbeat_s']}")
    sampler = search.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise ConfigError("search.sampler", sampler, f"one of {', '.join(SAMPLERS)}")
    if sampler in _SAMPLER_NEEDS:
        import importlib.util

        module, fix = _SAMPLER_NEEDS[sampler]
        if importlib.util.find_spec(module) is None:
            raise ConfigError("search.sampler", sampler, f"this sampler needs {module}: {fix}")
    seed = search.get("seed", 0)
    if seed is not None and not _is_number(seed, int):
        raise ConfigError("search.seed", seed, "an integer, or null for a random seed")
    objectives = search.get("objectives", ["dev_score"])
    if (not isinstance(objectives, (list, tuple)) or not objectives or len(set(objectives)) != len(objectives)
            or any(o not in OBJECTIVES for o in objectives) or "dev_score" not in objectives):
        raise ConfigError("search.objectives", objectives,
                          f"a list of distinct names from {', '.join(OBJECTIVES)} that includes dev_score, "
                          "e.g. [dev_score] or [dev_score, cost]")
    if search.get("select", SELECTS[0]) not in SELECTS:
        raise ConfigError("search.select", search.get("select"), f"one of {', '.join(SELECTS)}")
    storage = search.get("storage")
    if storage is not None and (not isinstance(storage, str) or "://" not in storage):
        raise ConfigError("search.storage", storage,
                          "null, an Optuna storage URL (sqlite:///optuna.db, postgresql://...) "
                          "or journal:///path/to/file.log")
    study_name = search.get("study_name")
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        raise ConfigError("search.study_name", study_name, "a non-empty string, or null to derive it")
    if search.get("space") is not None and not isinstance(search.get("space"), Mapping):
        raise ConfigError("search.space", search.get("space"), "a mapping param -> spec")

    name = cfg["optimizer"]["name"]
    if name in ("none", "auto"):
        raise ConfigError("optimizer", name, "search=optuna needs an optimizer with hyperparameters "
                          "(labeled_few_shot, bootstrap_few_shot, bootstrap_random_search, mipro_v2, ...)")
    cls_name, ctor, comp = class_name(name), constructor_keys(name), compile_keys(name)
    space = merged_space(cfg)
    if not space:
        raise ConfigError("optimizer.search_space", cfg["optimizer"].get("search_space"),
                          f"at least one param to search for optimizer={name}, "
                          "e.g. +search.space.NAME={type:int,low:0,high:8}")
    for param, spec in space.items():
        key = _where(cfg, param)
        if param.startswith("compile."):
            if param[len("compile."):] not in comp:
                raise ConfigError(key, spec, f"{cls_name}.compile accepts {', '.join(comp)}")
        elif param not in ctor:
            raise ConfigError(key, spec, f"a {cls_name} parameter: {', '.join(ctor)}")
        check_spec(key, spec)


def searched_keys(cfg: Mapping) -> list[str]:
    return sorted(merged_space(cfg))


def suggest(trial, space: Mapping[str, Mapping]) -> dict[str, Any]:
    """Sample one value per param through the Optuna trial."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "int":
            values[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]),
                                             step=int(spec.get("step") or 1), log=bool(spec.get("log", False)))
        elif kind == "float":
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                               step=spec.get("step"), log=bool(spec.get("log", False)))
        else:
            values[name] = trial.suggest_categorical(name, list(spec["choices"]))
    return values


def apply(entry: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the optimizer entry with the sampled values set (``compile.X`` into ``compile``)."""
    import copy

    out = copy.deepcopy(dict(entry))
    out.pop("search_space", None)
    for name, value in values.items():
        if name.startswith("compile."):
            out.setdefault("compile", {})
            out["compile"] = {**(out["compile"] or {}), name[len("compile."):]: value}
        else:
            out[name] = value
    return out


def grid(space: Mapping[str, Mapping]) -> list[dict[str, Any]] | None:
    """Every point of a finite space (ints, stepped floats, categoricals); None when it is infinite
    or larger than 10,000 points."""
    import itertools

    axes: list[list[Any]] = []
    for spec in space.values():
        kind = spec["type"]
        if kind == "categorical":
            axes.append(list(spec["choices"]))
        elif kind == "int" and not spec.get("log"):
            axes.append(list(range(int(spec["low"]), int(spec["high"]) + 1, int(spec.get("step") or 1))))
        elif kind == "float" and spec.get("step") and not spec.get("log"):
            low, high, step = float(spec["low"]), float(spec["high"]), float(spec["step"])
            axes.append([low + i * step for i in range(int(round((high - low) / step)) + 1)])
        else:
            return None
    size = 1
    for axis in axes:
        size *= len(axis)
    if size > 10_000:
        return None
    return [dict(zip(space, point, strict=True)) for point in itertools.product(*axes)]


def unused_point(space: Mapping[str, Mapping], taken: list[dict[str, Any]], seed: int) -> dict[str, Any] | None:
    """A point of a finite space no trial has taken (seeded choice), or None: infinite or exhausted."""
    import random

    points = grid(space)
    if points is None:
        return None
    free = [p for p in points if p not in taken]
    return random.Random(seed).choice(free) if free else None
