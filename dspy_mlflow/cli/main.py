"""Command line: a bare first word is a subcommand, anything else goes to Hydra.

    python -m dspy_mlflow [key=value ...]           one job
    python -m dspy_mlflow -m key=a,b ...            a sweep
    python -m dspy_mlflow promote NAME VERSION      registry and comparison subcommands
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import sys

from dspy_mlflow.config.help import render
from dspy_mlflow.config.secrets import check_overrides
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.quiet import quiet_environment

# word -> (module with main(argv) -> int, one line for --help); a module loads only when its word is typed
SUBCOMMANDS = {
    "promote": ("dspy_mlflow.cli.promote", "promote a registered version to production"),
    "rollback": ("dspy_mlflow.cli.rollback", "return production to the previous version"),
    "lineage": ("dspy_mlflow.cli.lineage", "print the version tree of a registered program"),
    "runs": ("dspy_mlflow.cli.runs", "compare the runs of an experiment or sweep (CSV too)"),
    "ui": ("dspy_mlflow.cli.ui", "open the MLflow UI on the configured store (offline-safe)"),
    "plan": ("dspy_mlflow.cli.plan", "forecast tokens, dollars and time of a job or sweep (-m)"),
    "gate": ("dspy_mlflow.cli.gate",
             "exit 0 if a version is not significantly worse than production, 1 if worse, 2 on bad input"),
    "diff": ("dspy_mlflow.cli.diff", "compare two programs: instructions, demos, and the examples each wins"),
    "view": ("dspy_mlflow.cli.view",
             "log the evaluation view (a trace per test example) of finished runs, from their raw outputs"),
    "serve-offline": ("dspy_mlflow.cli.serve_offline", "serve the offline model as an OpenAI-compatible API"),
    "build-mlx-tiny": ("dspy_mlflow.cli.build_mlx_tiny", "build the tiny random-weight MLX model in a folder"),
}


def _complete_subcommands(args: list[str]) -> None:
    """Tab completion (Hydra's ``-sc query=bash``): the first word also completes to a subcommand;
    after a subcommand, Hydra's overrides do not apply."""
    line = os.environ.get("COMP_LINE")
    if line is None or len(args) != 2 or args[0] not in ("-sc", "--shell-completion") or \
            not args[1].startswith("query="):
        return
    words = line.split()[1:]
    if words and words[0] in ("-m", "--multirun"):
        return
    if words and (words[0] in SUBCOMMANDS and (len(words) > 1 or line.endswith(" "))):
        sys.exit(0)  # a subcommand's own arguments: nothing of Hydra's fits
    if len(words) <= 1 and not line.endswith(" ") or not words:
        prefix = words[0] if words else ""
        print(" ".join(name for name in SUBCOMMANDS if name.startswith(prefix)), end=" ")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    _complete_subcommands(args)
    if args and args[0] in SUBCOMMANDS:
        quiet_environment()
        sys.exit(importlib.import_module(SUBCOMMANDS[args[0]][0]).main(args[1:]) or 0)
    if args and re.fullmatch(r"[A-Za-z][\w-]*", args[0]):  # a bare word that is no subcommand
        _refuse(ConfigError("command", args[0], f"a subcommand ({', '.join(SUBCOMMANDS)}) or overrides "
                                                "key=value; see python -m dspy_mlflow --help"))
    if args in (["--help"], ["-h"]):  # from the folders; with overrides, Hydra composes them into its help
        print(render())
        sys.exit(0)
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    _terminate_like_ctrl_c()
    try:  # before Hydra writes the overrides into its output folder
        check_overrides(sys.argv[1:])
    except ConfigError as exc:
        _refuse(exc)
    # the lazy boundary: Hydra, the config store and the sweep callback load only for a job or sweep
    from dspy_mlflow.cli import app

    sys.exit(app.run_hydra())


def _refuse(exc: ConfigError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (kill, a CI timeout) ends the active run KILLED, as Ctrl-C does, instead of leaving it RUNNING."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    main()
