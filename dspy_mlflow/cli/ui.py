"""``python -m dspy_mlflow ui``: the MLflow UI on the configured store, offline-safe."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from dspy_mlflow.cli.common import parser
from dspy_mlflow.tracking import store


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> bool:
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


def main(argv: list[str]) -> int:
    p = parser("ui", "Open the MLflow UI on the configured store and print its address (Ctrl-C stops it).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=5000, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--artifacts-destination", default=None, help="where new artifacts go (mlflow ui default: ./mlartifacts)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for start-up (default: %(default)s)")
    a = p.parse_args(argv)
    uri = store.tracking_uri(a.tracking_uri)
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
