"""Command line: a bare first word is a subcommand, anything else goes to Hydra.

    python -m dspy_mlflow [key=value ...]           one job
    python -m dspy_mlflow -m key=a,b ...            a sweep
    python -m dspy_mlflow promote NAME VERSION      registry and comparison subcommands
"""

from __future__ import annotations

import importlib
import os
import re
import sys

from dspy_mlflow.errors import ConfigError

SUBCOMMANDS = {
    "promote": ("dspy_mlflow.registry.commands:promote_main", "promote a registered version to production"),
    "rollback": ("dspy_mlflow.registry.commands:rollback_main", "return production to the previous version"),
    "lineage": ("dspy_mlflow.registry.commands:lineage_main", "print the version tree of a registered program"),
    "runs": ("dspy_mlflow.registry.commands:runs_main", "compare the runs of an experiment or sweep (CSV too)"),
    "ui": ("dspy_mlflow.registry.commands:ui_main", "open the MLflow UI on the configured store (offline-safe)"),
    "plan": ("dspy_mlflow.compare.plan_command:plan_main", "forecast tokens, dollars and time of a job or sweep (-m)"),
    "gate": ("dspy_mlflow.compare.commands:gate_main",
             "exit 0 if a version is not significantly worse than production, 1 if worse, 2 on bad input"),
    "view": ("dspy_mlflow.compare.commands:view_main",
             "log the evaluation view (a trace per test example) of finished runs, from their raw outputs"),
    "serve-offline": ("dspy_mlflow.lm.offline_server:main", "serve the offline model as an OpenAI-compatible API"),
    "build-mlx-tiny": ("dspy_mlflow.lm.mlx_tiny:main", "build the tiny random-weight MLX model in a folder"),
}


def subcommand_help() -> str:
    width = max(map(len, SUBCOMMANDS))
    return "\n".join(f"  {name:<{width}}  {desc}" for name, (_, desc) in SUBCOMMANDS.items())


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
        from dspy_mlflow.quiet import quiet_environment

        quiet_environment()
        module, func = SUBCOMMANDS[args[0]][0].split(":")
        sys.exit(getattr(importlib.import_module(module), func)(args[1:]) or 0)
    if args and re.fullmatch(r"[A-Za-z][\w-]*", args[0]):  # a bare word that is no subcommand
        _refuse(ConfigError("command", args[0], f"a subcommand ({', '.join(SUBCOMMANDS)}) or overrides "
                                                "key=value; see python -m dspy_mlflow --help"))
    if args in (["--help"], ["-h"]):  # from the folders; with overrides, Hydra composes them into its help
        from dspy_mlflow.config.help import render

        print(render())
        sys.exit(0)
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    _terminate_like_ctrl_c()
    import os

    from dspy_mlflow.config.secrets import check_overrides

    try:  # before Hydra writes the overrides into its output folder
        check_overrides(sys.argv[1:])
    except ConfigError as exc:
        _refuse(exc)

    from dspy_mlflow.app import hydra_main

    # Hydra raises its errors instead of printing them over several lines: we print one line.
    # A user who sets HYDRA_FULL_ERROR gets Hydra's own report.
    hydra_reports = "HYDRA_FULL_ERROR" in os.environ
    if not hydra_reports:
        os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except KeyboardInterrupt as exc:
        run_id = getattr(exc, "run_id", None)
        print("interrupted" + (f": run {run_id} ended KILLED, partial results kept" if run_id else ""),
              file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        from dspy_mlflow.config.hydra_errors import describe

        line = None if hydra_reports else describe(exc, sys.argv[1:])
        if line is None:
            raise
        _fail_open_sweep(line)
        print(f"error: {line}", file=sys.stderr)
        sys.exit(1)
    finally:
        if not hydra_reports:
            os.environ.pop("HYDRA_FULL_ERROR", None)


def _refuse(exc: ConfigError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)


def _fail_open_sweep(reason: str) -> None:
    """A sweep that stops on a config error: its parent run ends FAILED with the reason."""
    callback = sys.modules.get("dspy_mlflow.sweep.callback")
    if callback is not None:
        callback.fail_open_sweep(reason)


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (kill, a CI timeout) ends the active run KILLED, as Ctrl-C does, instead of leaving it RUNNING."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    main()
