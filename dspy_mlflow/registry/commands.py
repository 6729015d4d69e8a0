"""Command-line entry points: promote, rollback, lineage, runs, ui.

Each is ``def <word>_main(argv: list[str]) -> int``; ``python -m dspy_mlflow <word> ...`` dispatches
to them. A refused or impossible request prints ``error: <one line>`` to stderr and returns 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from dspy_mlflow.errors import DspyMlflowError, one_line
from dspy_mlflow.registry import _common as C


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A subcommand's parser, with the --tracking-uri every subcommand takes."""
    p = argparse.ArgumentParser(prog=f"python -m dspy_mlflow {prog}", description=description)
    p.add_argument(
        "--tracking-uri",
        default=None,
        help=f"MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI or {C.DEFAULT_TRACKING_URI})",
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


def promote_main(argv: list[str]) -> int:
    p = parser("promote", "Make a registered program version the production version "
                "(alias 'production' and stage Production).")
    p.add_argument("name", help="registered model name")
    p.add_argument("version", help="version number (or models:/NAME/VERSION)")
    p.add_argument("--gate", metavar="METRIC", help="refuse if METRIC is worse than production's (e.g. test/score)")
    p.add_argument("--lower-is-better", action="store_true", help="for --gate on a cost or latency metric")
    p.add_argument("--force", action="store_true", help="promote even if the gate refuses (recorded on the version)")
    a = p.parse_args(argv)

    def run() -> int:
        from dspy_mlflow.registry.promotion import promote

        result = promote(a.name, a.version, gate=a.gate, force=a.force,
                         lower_is_better=a.lower_is_better, tracking_uri=a.tracking_uri)
        print(result.summary())
        return 0

    return guard(run)


def rollback_main(argv: list[str]) -> int:
    p = parser("rollback", "Return production to the previously promoted version.")
    p.add_argument("name", help="registered model name")
    a = p.parse_args(argv)

    def run() -> int:
        from dspy_mlflow.registry.promotion import rollback

        print(rollback(a.name, tracking_uri=a.tracking_uri).summary())
        return 0

    return guard(run)


def lineage_main(argv: list[str]) -> int:
    p = parser("lineage", "Print the version tree of a registered program.")
    p.add_argument("name", help="registered model name")
    a = p.parse_args(argv)

    def run() -> int:
        from dspy_mlflow.registry.lineage import format_lineage, lineage

        print(format_lineage(a.name, lineage(a.name, tracking_uri=a.tracking_uri)))
        return 0

    return guard(run)


_SHOWN = ("run_id", "status", "project", "model", "optimizer", "strategy", "test/score", "dev/score",
          "eval/tokens_in", "compile/tokens_in", "cost/total_usd", "cost/list_usd", "eval/cache_hits",
          "eval/latency_p50_ms", "duration_s")


def runs_main(argv: list[str]) -> int:
    from dspy_mlflow.registry.compare import DEFAULT_EXPERIMENT

    p = parser("runs", "Compare the runs of an experiment or sweep (and export them as CSV).")
    p.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="experiment name (default: %(default)s)")
    p.add_argument("--sweep", metavar="SWEEP_ID", help="only the runs of this sweep (tag dspy_mlflow.sweep_id)")
    p.add_argument("--csv", metavar="PATH", help="also write every column to this CSV file")
    a = p.parse_args(argv)

    def run() -> int:
        import pandas as pd

        from dspy_mlflow.registry.compare import runs_frame

        frame = runs_frame(a.experiment, sweep_id=a.sweep, tracking_uri=a.tracking_uri)
        if a.csv:
            try:
                frame.to_csv(a.csv, index=False)
            except OSError as exc:
                from dspy_mlflow.errors import ConfigError

                raise ConfigError("--csv", a.csv, f"a writable file path ({exc})") from exc
        if frame.empty:
            print(f"no runs in experiment {a.experiment!r}" + (f" for sweep {a.sweep}" if a.sweep else ""))
        else:
            view = frame[list(_SHOWN)].copy()
            view["run_id"] = view["run_id"].str[:8]  # the CSV and runs_frame() keep the whole id
            with pd.option_context("display.width", 250, "display.max_columns", 50):
                print(view.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}"))
        if a.csv:
            print(f"wrote {len(frame)} run(s) to {a.csv}")
        return 0

    return guard(run)


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def ui_main(argv: list[str]) -> int:
    p = parser("ui", "Open the MLflow UI on the configured store and print its address (Ctrl-C stops it).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=5000, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--artifacts-destination", default=None, help="where new artifacts go (mlflow ui default: ./mlartifacts)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for start-up (default: %(default)s)")
    a = p.parse_args(argv)
    uri = C.tracking_uri(a.tracking_uri)
    if uri.startswith(("http://", "https://")):
        print(f"MLflow UI: {uri}  (the configured store is a tracking server)", flush=True)
        return 0
    port = a.port or _free_port(a.host)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", a.host,
           "--port", str(port), "--workers", "1"]
    if a.artifacts_destination:
        cmd += ["--artifacts-destination", a.artifacts_destination]
    # Offline, litellm (imported by the server) blocks start-up fetching its price map without this.
    # Server-side job workers (huey consumers) are not needed to browse runs and outlive the UI.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)  # its own group: stopping ends the whole tree

    def _stop(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    shown_host = "127.0.0.1" if a.host in ("0.0.0.0", "::") else a.host
    url = f"http://{shown_host}:{port}"
    try:
        if not _wait_healthy(url, proc, a.timeout):
            code = proc.poll()
            print(f"error: the MLflow UI did not start on {url} within {a.timeout:g}s "
                  f"(exit code {code}); is the port free?", file=sys.stderr)
            return 2
        print(f"MLflow UI: {url}  (store {uri}; Ctrl-C to stop)", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (gunicorn/uvicorn workers too), SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


COMMANDS = {"promote": promote_main, "rollback": rollback_main, "lineage": lineage_main,
            "runs": runs_main, "ui": ui_main}


def main(argv: list[str] | None = None) -> int:
    """``python -m dspy_mlflow.registry.commands WORD ...`` (the same as ``python -m dspy_mlflow WORD``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m dspy_mlflow.registry.commands {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
