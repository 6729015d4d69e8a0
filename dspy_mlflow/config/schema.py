"""Structured-config schemas, registered in Hydra's ConfigStore as ``schema``.

YAML files in conf/ are merged onto these dataclasses, so a typo in a key or a
wrong type is rejected while the config is composed, before anything runs.
Groups whose keys depend on the entry (``optimizer``, ``search``) are plain dicts here: each
entry's typed schema belongs to its owner (steps/optimizer_schema.py, search/schema.py), which
checks the section against it; the command line registers them too, as ``schema/GROUP/NAME``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING


@dataclass
class PricingConfig:
    input_per_1m: Optional[float] = None  # USD per million prompt tokens; None: LiteLLM's price map
    output_per_1m: Optional[float] = None


@dataclass
class ModelConfig:
    name: str = MISSING
    litellm_model: str = MISSING
    api_base: Optional[str] = None
    api_key_env: Optional[str] = None  # the NAME of the variable holding the key, never the key
    temperature: float = 0.0
    max_tokens: int = 1024
    num_retries: int = 2
    timeout_s: float = 120.0  # per request attempt; a hung provider costs at most this per try
    cache: bool = True
    pricing: PricingConfig = field(default_factory=PricingConfig)
    provider_options: dict[str, Any] = field(default_factory=dict)
    fallback: Optional[str] = None  # another model entry used when this one cannot load


@dataclass
class StrategyConfig:
    name: str = MISSING
    n: int = 3
    threshold: float = 1.0


@dataclass
class SplitConfig:
    train: float = 0.5
    dev: float = 0.25
    seed: int = 0
    limit: Optional[int] = None


@dataclass
class ProjectConfig:
    name: Optional[str] = None  # default: from the module (projects.sentiment -> sentiment, my_task.py -> my_task)
    module: str = MISSING
    split: SplitConfig = field(default_factory=SplitConfig)


@dataclass
class TrackingConfig:
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "dspy_mlflow"
    run_name: Optional[str] = None
    autolog: bool = True  # mlflow.dspy.autolog: DSPy traces, linked to the run
    trace_sampling: float = 1.0  # share of evaluated examples that may be traced (a kept trace costs ~25-40 ms CPU)
    max_traces_per_split: Optional[int] = 1  # of those, at most N per evaluated split, the same ones every run (null: all)
    log_model: bool = True  # mlflow.dspy.log_model (pickled program as an MLflow model)
    rerun: bool = False  # run again even if an identical config already FINISHED
    heartbeat_s: float = 10.0  # how often a running job stamps its run and uploads its partial raw outputs
    evaluation_view: bool = True  # test rows in MLflow's "Evaluation runs" view: a trace per example (~25 ms CPU each)
    evaluation_max_examples: Optional[int] = 100  # the first N test examples by index; null: all
    sweep_evaluation_views: Optional[int] = 2  # in a sweep: the view for the N best jobs, at its end; null: every job


@dataclass
class CacheConfig:
    dir: Optional[str] = None  # default: lm_cache/ beside a sqlite or file store (see tracking/lm_cache.py)
    mode: str = "on"  # on | read_only | off


@dataclass
class EvalConfig:
    num_threads: int = 8
    progress: bool = True
    max_error_rate: float = 0.0  # share of test examples allowed unanswered (after retries) in a FINISHED run
    repeats: int = 1  # samples per test example (distinct rollout ids: distinct answers at temperature > 0)


@dataclass
class BudgetConfig:
    max_cost_usd: Optional[float] = None
    sweep_max_cost_usd: Optional[float] = None  # a sweep forecast (plan) above it does not start


@dataclass
class RegistryConfig:
    register: bool = True
    name: Optional[str] = None  # default: the project name


@dataclass
class ProgramConfig:
    init_from: Optional[str] = None  # models:/NAME@production, models:/NAME/3 or a version number


@dataclass
class CompareConfig:
    to: Optional[str] = None  # "production": the test rows are paired with NAME@production's (test/vs_production/*)


@dataclass
class RootConfig:
    model: ModelConfig = MISSING
    optimizer: dict[str, Any] = MISSING
    strategy: StrategyConfig = MISSING
    project: ProjectConfig = MISSING
    search: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    program: ProgramConfig = field(default_factory=ProgramConfig)
    seed: int = 0


def register_schemas(entries: Mapping[str, Mapping[str, type]] | None = None) -> None:
    """The root schema as ``schema``; each group's entry schemas (group -> name -> dataclass) as
    ``schema/GROUP/NAME``."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="schema", node=RootConfig)
    for group, schemas in (entries or {}).items():
        for name, schema in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=schema)
