"""Keep the terminal readable: offline-safe LiteLLM, no walls of library warnings."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_environment() -> None:
    """Set before litellm/mlflow are imported (LiteLLM must not fetch its price map)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def quiet_libraries() -> None:
    for name in ("LiteLLM", "litellm", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore",
                 "mlflow", "alembic", "dspy", "optuna", "urllib3", "openai"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", module=r"(mlflow|pydantic|sqlalchemy|litellm|dspy|pandas)\b.*")
    warnings.filterwarnings("ignore", message=r".*(Pandas4Warning|noload|pkg_resources).*")
    try:  # pandas 3 warns from inside mlflow autolog
        from pandas.errors import Pandas4Warning

        warnings.filterwarnings("ignore", category=Pandas4Warning)
    except ImportError:
        pass
