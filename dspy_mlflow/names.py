"""Every name dspy_mlflow writes to MLflow, spelled once: the stable schema of a run.

Tags, params, metrics, artifacts, model-version tags and the run name. The bottom layer (beside
``errors``), so every room, the providers' tags and the Ray launcher included, imports its names
from here. The README's "stable schema of a run" table lists them. Renaming one breaks stores made
before: add a new name instead.
"""

from __future__ import annotations

from collections.abc import Mapping

PREFIX = "dspy_mlflow"
EXPERIMENT = "dspy_mlflow"  # the default experiment


def tag(name: str) -> str:
    """``dspy_mlflow.<name>``: the namespace of our run tags."""
    return f"{PREFIX}.{name}"


# -- run tags: what a job is ------------------------------------------------
CONFIG_HASH = tag("config_hash")
DATA_HASH = tag("data_hash")
CODE_HASH = tag("code_hash")
IDENTITY_PARTS = ("config", "data", "code")  # a job's identity: a hash tag each
PROJECT = tag("project")
OPTIMIZER = tag("optimizer")  # the resolved optimizer (auto -> what it picked)
PROGRAM_HASH = tag("program_hash")  # the compiled program's state
INIT_FROM = tag("init_from")
MODEL_VERSION = tag("model_version")  # NAME/VERSION this run registered
COMPARED_TO = tag("compared_to")
FALLBACK_FROM = tag("fallback_from")
FALLBACK_TO = tag("fallback_to")
FALLBACK_REASON = tag("fallback_reason")
PROVIDER_TAG_PREFIX = PREFIX + "."  # a provider's own tags: dspy_mlflow.offline, dspy_mlflow.hw.*
OFFLINE = tag("offline")
MLX_MODEL_PATH = tag("mlx.model_path")
HARDWARE_PREFIX = tag("hw.")

# -- run tags: how it went ----------------------------------------------------
ERROR = tag("error")  # one line, on FAILED and KILLED runs
WARNING = tag("warning")
HEARTBEAT = tag("heartbeat")
RESUMED_FROM = tag("resumed_from")

# -- sweeps -----------------------------------------------------------------
SWEEP_ID = tag("sweep_id")
SWEEP_PARENT = tag("sweep_parent")
SWEEP_OVERRIDES = tag("sweep_overrides")
BEST_RUN_ID = tag("best_run_id")
REUSED_RUNS = tag("reused_runs")  # on the parent: runs from outside the sweep its skipped jobs reused

# -- the evaluation view ----------------------------------------------------
EVALUATES = tag("evaluates")  # on the evaluation run: the job's run id
EVALUATION_RUN = tag("evaluation_run")  # on the job's run: its evaluation run id
SPAN_SPLIT = tag("split")  # span attributes of an evaluation-view trace
SPAN_INDEX = tag("index")
SPAN_REPEAT = tag("repeat")
ASSESSMENT_SOURCE = PREFIX

# -- Optuna search ----------------------------------------------------------
TRIAL = tag("trial")
STUDY = tag("study")
STUDY_RUN = tag("study_run")
STUDY_RUN_ID = tag("study_run_id")
SEARCH_CHOSEN_TRIAL = tag("search.chosen_trial")
SEARCH_PROGRAM_SOURCE = tag("search.program_source")
STUDY_LOCK = tag("optuna")  # the advisory lock's name, not a tag

# -- registered models and versions -------------------------------------------
PRODUCTION = "production"  # the alias
PRODUCTION_HISTORY = tag("production_history")  # on the registered model: JSON list, oldest first
VERSION_MODEL = "model"
VERSION_OPTIMIZER = "optimizer"
VERSION_STRATEGY = "strategy"
VERSION_PROJECT = "project"
VERSION_CONFIG_HASH = "config_hash"
VERSION_SIGNATURE_HASH = "signature_hash"
VERSION_SOURCE_RUN = "source_run"
VERSION_SEMVER = "semver"
VERSION_PARENT = "parent"  # "models:/NAME/VERSION", absent for a root
VERSION_PROMOTED_BY = "promoted_by"
VERSION_PROMOTED_AT = "promoted_at"
VERSION_REPLACED = "replaced_version"
VERSION_FORCED = "promotion_forced"
VERSION_GATE = "promotion_gate"
VERSION_PROMPT_PREFIX = "prompt."  # prompt.<predictor> = prompts:/<model>.<predictor>/<n>
PROMPT_MODEL_VERSION = "model_version"  # on a prompt version: NAME/VERSION it belongs to
PROMPT_PREDICTOR = "predictor"

# -- params beside the flattened config ----------------------------------------
GROUPS = ("model", "optimizer", "strategy", "project")  # params named after the config groups
PARAM_OPTIMIZER_RESOLVED = "optimizer.resolved"
PARAM_MODEL_EFFECTIVE = "model.effective"
PARAM_PRICE_IN = "pricing.input_per_1m"
PARAM_PRICE_OUT = "pricing.output_per_1m"
PARAM_PRICE_SOURCE = "pricing.source"
PARAM_SEARCH_BEST = "search.best."  # prefix: the chosen trial's values

# -- metrics ------------------------------------------------------------------
TEST_SCORE = "test/score"
TEST_REPEATS = "test/repeats"
TEST_WITHIN_SD = "test/score_within_sd"
DEV_SCORE = "dev/score"
DEV_BASELINE = "dev/baseline_score"
COST_TOTAL = "cost/total_usd"
COST_LIST = "cost/list_usd"
COST_PER_EXAMPLE = "cost/usd_per_example"
COMPILE_DURATION = "compile/duration_s"
CANDIDATE_SCORE = "compile/candidate_score"
CANDIDATES = "compile/candidates"
CANDIDATES_PROPOSED = "compile/candidates_proposed"
CANDIDATES_ACCEPTED = "compile/candidates_accepted"
VS_BASELINE = "dev/vs_baseline"  # prefix of the paired metrics
VS_PRODUCTION = "test/vs_production"
SWEEP_JOBS = "sweep/jobs"
SWEEP_FAILED = "sweep/failed"
BEST_TEST_SCORE = "best/test_score"

# -- artifacts ------------------------------------------------------------------
CONFIG_ARTIFACT = "config.yaml"
RAW_OUTPUTS = "raw_outputs.jsonl"
RAW_OUTPUTS_TABLE = "raw_outputs_table.json"
PROGRAM_DIR = "program"
PROGRAM_STATE = "program/program.json"
PROGRAM_MODEL = "program"  # the MLflow model's name
LEADERBOARD_CSV = "leaderboard.csv"
LEADERBOARD_TABLE = "leaderboard.json"

VERSION_SCORE_TAGS = (TEST_SCORE, DEV_SCORE, COST_TOTAL)  # model-version tags named after the metrics


def hash_tag(part: str) -> str:
    """The tag of one identity part: ``config`` -> ``dspy_mlflow.config_hash``."""
    return tag(f"{part}_hash")


def run_name(conf: Mapping) -> str:
    """``tracking.run_name``, else ``<model>-<optimizer>-<strategy>``."""
    given = (conf.get("tracking") or {}).get("run_name")
    return given or "-".join(str((conf.get(g) or {}).get("name")) for g in ("model", "optimizer", "strategy"))


def sweep_run_name(sweep_id: str) -> str:
    return f"sweep-{sweep_id}"


def study_run_name(study: str) -> str:
    return f"study-{study}"


def evaluation_run_name(job_run_name: str, split: str = "test") -> str:
    return f"{job_run_name} ({split})"
