"""What every subcommand shares: its parser with ``--tracking-uri``, and one-line errors (exit 2)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from dspy_mlflow.errors import DspyMlflowError, one_line
from dspy_mlflow.tracking import store

EXIT_BAD_INPUT = 2


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A subcommand's parser, with the --tracking-uri every subcommand takes."""
    p = argparse.ArgumentParser(prog=f"python -m dspy_mlflow {prog}", description=description)
    p.add_argument(
        "--tracking-uri",
        default=None,
        help=f"MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI or {store.DEFAULT_TRACKING_URI})",
    )
    return p


def guard(fn: Callable[[], int]) -> int:
    """Our errors and MLflow's become one line on stderr and exit code 2."""
    try:
        return fn()
    except DspyMlflowError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if type(exc).__name__ == "MlflowException":
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return 2
        raise
