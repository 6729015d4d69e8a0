"""The typed schema of each optimizer entry: the keys a config may set, their types and DSPy's defaults.

One dataclass per entry name (``optimizer=NAME``); ``compile`` holds the arguments of the DSPy
optimizer's ``compile()``, ``search_space`` what ``search=optuna`` may search. Fields are the
constructor arguments a config can express (numbers, flags, strings, mappings); arguments that
take Python objects (``prompt_model``, ``reflection_lm``, proposers) and secrets (GEPA's
``wandb_api_key``) are left out. ``choices`` metadata lists a ``Literal`` argument's values.
tests/steps/test_optimizer_schema.py holds each schema to the installed DSPy's signatures.
Registered in Hydra's ConfigStore as ``schema/optimizer/NAME``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

BUDGETS = ("light", "medium", "heavy")


def _choices(default: Any, *values: Any) -> Any:
    return field(default=default, metadata={"choices": values})


@dataclass
class NoCompile:
    pass


@dataclass
class NoOptimizer:
    """``optimizer=none``: the program as written."""

    name: str = "none"
    search_space: dict[str, Any] = field(default_factory=dict)
    compile: NoCompile = field(default_factory=NoCompile)


@dataclass
class AutoOptimizer(NoOptimizer):
    """``optimizer=auto``: picked by training-set size."""

    name: str = "auto"


@dataclass
class LabeledFewShotCompile:
    sample: bool = True


@dataclass
class LabeledFewShot:
    name: str = "labeled_few_shot"
    k: int = 16
    search_space: dict[str, Any] = field(default_factory=dict)
    compile: LabeledFewShotCompile = field(default_factory=LabeledFewShotCompile)


@dataclass
class BootstrapFewShot:
    name: str = "bootstrap_few_shot"
    metric_threshold: Optional[float] = None
    teacher_settings: Optional[dict[str, Any]] = None
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    max_errors: Optional[int] = None
    search_space: dict[str, Any] = field(default_factory=dict)
    compile: NoCompile = field(default_factory=NoCompile)


@dataclass
class RandomSearchCompile:
    restrict: Optional[Any] = None
    labeled_sample: bool = True


@dataclass
class BootstrapRandomSearch:
    name: str = "bootstrap_random_search"
    teacher_settings: Optional[dict[str, Any]] = None
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    num_candidate_programs: int = 16
    num_threads: Optional[int] = None
    max_errors: Optional[int] = None
    stop_at_score: Optional[float] = None
    metric_threshold: Optional[float] = None
    search_space: dict[str, Any] = field(default_factory=dict)
    compile: RandomSearchCompile = field(default_factory=RandomSearchCompile)


@dataclass
class MIPROv2Compile:
    num_trials: Optional[int] = None
    max_bootstrapped_demos: Optional[int] = None
    max_labeled_demos: Optional[int] = None
    seed: Optional[int] = None
    minibatch: bool = True
    minibatch_size: int = 35
    minibatch_full_eval_steps: int = 5
    program_aware_proposer: bool = True
    data_aware_proposer: bool = True
    view_data_batch_size: int = 10
    tip_aware_proposer: bool = True
    fewshot_aware_proposer: bool = True
    requires_permission_to_run: Optional[bool] = None
    provide_traceback: Optional[bool] = None


@dataclass
class MIPROv2:
    name: str = "mipro_v2"
    teacher_settings: Optional[dict[str, Any]] = None
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 4
    auto: Optional[str] = _choices("light", *BUDGETS, None)
    num_candidates: Optional[int] = None
    num_threads: Optional[int] = None
    max_errors: Optional[int] = None
    seed: int = 9
    init_temperature: float = 1.0
    verbose: bool = False
    track_stats: bool = True
    log_dir: Optional[str] = None
    metric_threshold: Optional[float] = None
    search_space: dict[str, Any] = field(default_factory=dict)
    compile: MIPROv2Compile = field(default_factory=MIPROv2Compile)


@dataclass
class COPROCompile:
    eval_kwargs: Optional[dict[str, Any]] = None


@dataclass
class COPRO:
    name: str = "copro"
    breadth: int = 10
    depth: int = 3
    init_temperature: float = 1.4
    track_stats: bool = False
    search_space: dict[str, Any] = field(default_factory=dict)
    compile: COPROCompile = field(default_factory=COPROCompile)


@dataclass
class SIMBACompile:
    seed: int = 0


@dataclass
class SIMBA:
    name: str = "simba"
    bsize: int = 32
    num_candidates: int = 6
    max_steps: int = 8
    max_demos: int = 4
    teacher_settings: Optional[dict[str, Any]] = None
    demo_input_field_maxlen: int = 100000
    num_threads: Optional[int] = None
    temperature_for_sampling: float = 0.2
    temperature_for_candidates: float = 0.2
    search_space: dict[str, Any] = field(default_factory=dict)
    compile: SIMBACompile = field(default_factory=SIMBACompile)


@dataclass
class GEPA:
    name: str = "gepa"
    auto: Optional[str] = _choices(None, *BUDGETS, None)
    max_full_evals: Optional[int] = None
    max_metric_calls: Optional[int] = None
    reflection_minibatch_size: int = 3
    candidate_selection_strategy: str = _choices("pareto", "pareto", "current_best")
    skip_perfect_score: bool = True
    add_format_failure_as_feedback: bool = False
    component_selector: str = "round_robin"
    use_merge: bool = True
    max_merge_invocations: Optional[int] = 5
    num_threads: Optional[int] = None
    failure_score: float = 0.0
    perfect_score: float = 1.0
    log_dir: Optional[str] = None
    track_stats: bool = False
    use_wandb: bool = False
    wandb_init_kwargs: Optional[dict[str, Any]] = None
    track_best_outputs: bool = False
    warn_on_score_mismatch: bool = True
    use_mlflow: bool = False
    seed: Optional[int] = 0
    gepa_kwargs: Optional[dict[str, Any]] = None
    search_space: dict[str, Any] = field(default_factory=dict)
    compile: NoCompile = field(default_factory=NoCompile)


# entry name -> (schema, the DSPy class it configures; None: no DSPy optimizer)
SCHEMAS: dict[str, tuple[type, str | None]] = {
    "none": (NoOptimizer, None),
    "labeled_few_shot": (LabeledFewShot, "LabeledFewShot"),
    "bootstrap_few_shot": (BootstrapFewShot, "BootstrapFewShot"),
    "bootstrap_random_search": (BootstrapRandomSearch, "BootstrapFewShotWithRandomSearch"),
    "mipro_v2": (MIPROv2, "MIPROv2"),
    "copro": (COPRO, "COPRO"),
    "simba": (SIMBA, "SIMBA"),
    "gepa": (GEPA, "GEPA"),
    "auto": (AutoOptimizer, None),
}
RESERVED = ("name", "compile", "search_space")  # keys of every entry that are not constructor arguments
