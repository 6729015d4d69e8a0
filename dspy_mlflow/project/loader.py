"""Load a DSPy project module named by ``cfg.project.module`` and check it against the contract.

A project module (a dotted module path such as ``projects.sentiment`` / ``mypkg.task``, or a
``path/to/file.py`` relative to the working directory or absolute) exposes:

    signature: type[dspy.Signature]
    def make_program(strategy: Mapping) -> dspy.Module
    def load_examples() -> list[dspy.Example]        # inputs marked with .with_inputs(...)
    def metric(example, prediction, trace=None) -> float   # 0..1 (bool ok), or dspy.Prediction(score=, feedback=)
    optional: def reward(inputs: dict, prediction) -> float   # used by strategy=best_of_n

Every problem is reported as a one-line ``ProjectError`` that names the module (or file),
the attribute and what was expected.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from dspy_mlflow.errors import ProjectError, one_line
from dspy_mlflow.project.metric import wrap_metric

REQUIRED = ("signature", "make_program", "load_examples", "metric")
_REQUIRED_TEXT = "signature, make_program(strategy), load_examples(), metric(example, prediction, trace=None)"


@dataclass(frozen=True)
class Project:
    """A loaded, checked project. ``metric`` accepts (example, prediction, trace=None, pred_name=None,
    pred_trace=None) whatever the module's own metric takes, so every DSPy optimizer (GEPA too) can
    call it. ``load_examples()`` returns a fresh list of the checked examples."""

    name: str
    module_name: str
    signature: Any
    make_program: Callable[[Mapping], Any]
    load_examples: Callable[[], list]
    metric: Callable[..., float]
    reward: Callable[[dict, Any], float] | None = None
    source: str = field(default="", compare=False)  # file the module was loaded from

    @property
    def module(self) -> str:
        """Alias of ``module_name`` (the name used in the team contract)."""
        return self.module_name


def _cfg_get(cfg: Mapping, key: str, default: Any = None) -> Any:
    try:
        return cfg.get(key, default)
    except AttributeError:
        return getattr(cfg, key, default)


def _base_dir() -> Path:
    """Where relative .py paths are resolved: Hydra's original cwd when inside a Hydra job."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.cwd)
    except Exception:  # hydra absent or not configured: plain cwd
        pass
    return Path.cwd()


def _import_file(path_text: str) -> ModuleType:
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = _base_dir() / path
    path = path.resolve()
    if not path.is_file():
        raise ProjectError(f"project.module: file not found: {path}")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    name = f"dspy_mlflow_user_project_{_safe(path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProjectError(f"project.module: cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses/pydantic/pickle look modules up by name
    # let the file import its siblings (kept on sys.path, appended so it never shadows packages)
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise ProjectError(f"project file {path} failed to import: {one_line(exc)}") from exc
    try:  # the module cannot be imported by name elsewhere: pickle its functions by value
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    except Exception:  # optional nicety
        pass
    return module


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise ProjectError(
                f"project.module: module {name!r} not found (no module {missing!r} on sys.path; "
                f"cwd={os.getcwd()}; install the package, run from its folder, or give a path ending in .py)"
            ) from exc
        raise ProjectError(f"project module {name!r} failed to import: {one_line(exc)}") from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise ProjectError(f"project module {name!r} failed to import: {one_line(exc)}") from exc


def _check_callable(where: str, attr: str, obj: Any, args: tuple, expected: str) -> None:
    if not callable(obj):
        raise ProjectError(
            f"{where}: attribute {attr!r} is not callable (got {type(obj).__name__}); expected {expected}"
        )
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature: accept
        return
    try:
        sig.bind(*args)
    except TypeError as exc:
        raise ProjectError(
            f"{where}: {attr}{sig} has the wrong signature ({exc}); expected {expected}"
        ) from exc


class _CheckedExamples:
    """``load_examples`` of a project, checked once and cached; each call returns a new list."""

    def __init__(self, func: Callable[[], Any], where: str, signature: Any):
        self.func, self.where, self.signature = func, where, signature
        self._cache: list | None = None

    def __call__(self) -> list:
        if self._cache is None:
            self._cache = self._check(self.func())
        return list(self._cache)

    def _check(self, examples: Any) -> list:
        import dspy

        where = self.where
        try:
            examples = list(examples)
        except TypeError as exc:
            raise ProjectError(
                f"{where}: load_examples() returned {type(examples).__name__}, expected a list of dspy.Example"
            ) from exc
        if not examples:
            raise ProjectError(
                f"{where}: load_examples() returned no examples; expected a non-empty list of dspy.Example"
            )
        wanted = list(self.signature.input_fields)
        for i, ex in enumerate(examples):
            if not isinstance(ex, dspy.Example):
                raise ProjectError(
                    f"{where}: load_examples()[{i}] is a {type(ex).__name__}, not a dspy.Example"
                )
            keys = ex._input_keys
            if not keys:
                raise ProjectError(
                    f"{where}: load_examples()[{i}] has no inputs set; call .with_inputs({', '.join(map(repr, wanted))})"
                )
            missing = [k for k in wanted if k not in ex]
            if missing:
                raise ProjectError(
                    f"{where}: load_examples()[{i}] lacks the signature's input field(s) {missing}; it has {ex.keys()}"
                )
        return examples

    def __repr__(self) -> str:
        return f"checked({getattr(self.func, '__qualname__', self.func)!r})"


def load_project(project_cfg: Mapping, *, check_examples: bool = True) -> Project:
    """Import ``project_cfg["module"]`` (dotted path or .py file), check it, return a ``Project``.

    With ``check_examples`` (default) ``load_examples()`` is called once here so that a bad
    dataset fails before any LM call; the result is cached for later calls.
    """
    import dspy

    target = _cfg_get(project_cfg, "module")
    if not target or not isinstance(target, str):
        raise ProjectError(
            f"project.module={target!r}: expected a dotted module path (projects.sentiment) or a path ending in .py"
        )
    target = target.strip()
    if target.endswith(".py"):
        module = _import_file(target)
        where = f"project file {Path(module.__file__).resolve()}"
    else:
        module = _import_module(target)
        where = f"project module {target!r}"
    source = getattr(module, "__file__", "") or ""

    missing = [a for a in REQUIRED if not hasattr(module, a)]
    if missing:
        raise ProjectError(
            f"{where} ({source}) has no attribute {missing[0]!r}"
            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "")
            + f"; a project module must define: {_REQUIRED_TEXT}"
        )

    signature = module.signature
    if not (isinstance(signature, type) and issubclass(signature, dspy.Signature)):
        raise ProjectError(
            f"{where}: attribute 'signature' must be a dspy.Signature subclass, got {type(signature).__name__} {signature!r:.60}"
        )
    _check_callable(
        where, "make_program", module.make_program, (None,), "make_program(strategy) -> dspy.Module"
    )
    _check_callable(
        where,
        "load_examples",
        module.load_examples,
        (),
        "load_examples() -> list[dspy.Example] with no required arguments",
    )
    _check_callable(
        where, "metric", module.metric, (None, None), "metric(example, prediction, trace=None) -> float"
    )
    reward = getattr(module, "reward", None)
    if reward is not None:
        _check_callable(where, "reward", reward, (None, None), "reward(inputs: dict, prediction) -> float")

    load_examples = _CheckedExamples(module.load_examples, where, signature)
    if check_examples:
        try:
            load_examples()
        except ProjectError:
            raise
        except Exception as exc:
            raise ProjectError(f"{where}: load_examples() raised {one_line(exc)}") from exc

    name = project_name(project_cfg)
    return Project(
        name=str(name),
        module_name=module.__name__ if target.endswith(".py") else target,
        signature=signature,
        make_program=module.make_program,
        load_examples=load_examples,
        metric=wrap_metric(module.metric),
        reward=reward,
        source=source,
    )


def check_program(project: Project, strategy_cfg: Mapping) -> Any:
    """Call ``make_program(strategy)`` once, before any run exists; returns the program.

    A factory that raises, or returns something that is not a ``dspy.Module``, is a one-line
    ``ProjectError`` naming the project, the strategy and the exception."""
    import dspy

    strategy = _cfg_get(strategy_cfg, "name")
    where = f"project {project.name!r} ({project.module_name})"
    try:
        program = project.make_program(strategy_cfg)
    except Exception as exc:
        raise ProjectError(f"{where}: make_program(strategy={strategy}) raised {one_line(exc)}") from exc
    if not isinstance(program, dspy.Module):
        raise ProjectError(f"{where}: make_program(strategy={strategy}) returned {type(program).__name__}, "
                           "expected a dspy.Module")
    return program


def project_name(project_cfg: Mapping) -> str:
    """``project.name``, else the module's last part (``projects.sentiment`` -> sentiment,
    ``path/my_task.py`` -> my_task)."""
    target = str(_cfg_get(project_cfg, "module") or "").strip()
    return str(_cfg_get(project_cfg, "name") or (
        Path(target).stem if target.endswith(".py") else target.rsplit(".", 1)[-1]))


def signature_hash(signature: Any) -> str:
    """First 12 hex digits of the sha256 of the instructions and the ordered input/output field
    names with their annotations. Stable across processes; changes when any of those change."""

    def fields(items: Mapping) -> list[list[str]]:
        return [[name, _type_text(info.annotation)] for name, info in items.items()]

    payload = {
        "instructions": signature.instructions,
        "inputs": fields(signature.input_fields),
        "outputs": fields(signature.output_fields),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def _type_text(annotation: Any) -> str:
    if isinstance(annotation, type) and annotation.__module__ == "builtins":
        return annotation.__name__
    return str(annotation)
