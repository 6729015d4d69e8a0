"""Entry point for ``mlflow run``: MLflow passes ``-P overrides="a=1 b=2"`` as one argument."""

from __future__ import annotations

import shlex
import sys

from dspy_mlflow.cli.main import main as cli_main


def main() -> None:
    cli_main([token for arg in sys.argv[1:] for token in shlex.split(arg)])


if __name__ == "__main__":
    main()
