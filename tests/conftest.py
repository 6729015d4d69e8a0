"""Suite-wide setup: offline LiteLLM, a private DSPy cache, and job helpers.

Everything runs for real: MLflow sqlite stores in tmp folders, the offline
model as a LiteLLM provider, Hydra composing the packaged conf/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# DSPy reads its disk-cache folder at import: keep it inside this test session.
os.environ.setdefault("DSPY_CACHEDIR", tempfile.mkdtemp(prefix="dspy-cache-"))
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("OPENAI_API_KEY", None)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# job runs only: each job also logs its test evaluation as a run of its own (MLflow's evaluation view)
NOT_EVALUATIONS = "tags.`dspy_mlflow.evaluates` IS NULL"

# every optimizer, with the smallest budget that still runs its whole loop (for slow models)
EVERY_OPTIMIZER = {
    "none": [], "labeled_few_shot": [], "bootstrap_few_shot": [],
    "bootstrap_random_search": ["optimizer.num_candidate_programs=2"],
    "mipro_v2": ["optimizer.compile.num_trials=2"],
    "copro": ["optimizer.breadth=2"],
    "simba": ["optimizer.bsize=4", "optimizer.max_steps=1"],
    "gepa": ["optimizer.max_metric_calls=24", "optimizer.reflection_minibatch_size=3"],
}


# A small user project given by file: its examples (text, label) come from rows.json beside it.
FRUIT_PROJECT = '''
import json
from pathlib import Path

import dspy

class Task(dspy.Signature):
    """Say whether the text is about fruit."""
    text: str = dspy.InputField()
    label: str = dspy.OutputField()

signature = Task

def make_program(strategy):
    return dspy.Predict(Task)

def load_examples():
    rows = json.loads(Path(__file__).with_name("rows.json").read_text())
    return [dspy.Example(text=t, label=l).with_inputs("text") for t, l in rows]

def metric(example, prediction, trace=None):
    return float(example.label == prediction.label)
'''


def write_fruit_project(folder: Path, module: str, rows: list) -> Path:
    """``folder/module.py`` (FRUIT_PROJECT) and its ``rows.json``; returns the module's path."""
    import json

    (folder / "rows.json").write_text(json.dumps(rows))
    path = folder / f"{module}.py"
    path.write_text(FRUIT_PROJECT)
    return path


def run_cli(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m dspy_mlflow ARGS`` in a subprocess, as a user would type it."""
    # mlflow.set_tracking_uri() in an in-process test exports MLFLOW_TRACKING_URI: do not inherit it
    # (set_registry_uri likewise): a subprocess starts from no MLflow variables but the log level
    inherited = {k: v for k, v in os.environ.items()
                 if (not k.startswith("MLFLOW_") or k == "MLFLOW_LOGGING_LEVEL") and k != "HYDRA_FULL_ERROR"}
    # a DSPy cache of the working directory's own: no cache hits from other tests
    full_env = {**inherited, "DSPY_CACHEDIR": str(Path(cwd) / ".dspy_cache"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "dspy_mlflow", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _mlflow_settings_do_not_leak():
    """MLflow URIs and MLFLOW_* variables a test sets (a job sets the URIs) are reset for the next test."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh working directory: its own mlflow.db, no ./conf (and, through ``cli``, its own DSPy cache)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def compose(*overrides: str):
    """The job config as Hydra composes it from the packaged conf/."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from dspy_mlflow.config.paths import conf_dir
    from dspy_mlflow.config.schema import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def compose_cfg():
    return compose


@pytest.fixture
def cli():
    return run_cli
