"""A running job's heartbeat, its partial raw outputs uploaded as it goes, and stale-run recovery.

While a job runs, a daemon thread stamps its run with tag ``dspy_mlflow.heartbeat``
(JSON: host, pid, time, interval) every ``tracking.heartbeat_s`` seconds and uploads
the test split's partial ``raw_outputs.jsonl``. A job killed with ``kill -9`` stops
beating; the next job on the same store ends its run KILLED with the reason, and its
uploaded rows stay in MLflow.

A run is stale when its process is gone (same host, pid not alive) or it missed
three beats.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from dspy_mlflow import names

TAG = names.HEARTBEAT
MISSED_BEATS = 3
HOST = socket.gethostname()


def beat_value(interval_s: float, now: float | None = None) -> str:
    return json.dumps({"host": HOST, "pid": os.getpid(), "time": round(now or time.time(), 3),
                       "interval_s": interval_s})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_reason(tag_value: str | None, now: float | None = None) -> str | None:
    """Why a RUNNING run with this heartbeat is dead, or None while it lives (or has no heartbeat)."""
    try:
        beat = json.loads(tag_value or "")
        host, pid, last, interval = beat["host"], int(beat["pid"]), float(beat["time"]), float(beat["interval_s"])
    except (ValueError, KeyError, TypeError):
        return None
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last))
    if host == HOST and pid != os.getpid() and not _alive(pid):
        return f"its process is gone (host {host}, pid {pid}; last heartbeat {stamp})"
    if now - last > MISSED_BEATS * interval + 5:
        return f"no heartbeat for {now - last:.0f} s (host {host}, pid {pid}; last {stamp})"
    return None


def end_stale_runs(client, experiment_ids: list[str], *, by: str = "the next job") -> list[tuple[str, str]]:
    """End every stale RUNNING run of these experiments KILLED, tagged with the reason."""
    from mlflow.entities import ViewType

    ended = []
    runs = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'", run_view_type=ViewType.ACTIVE_ONLY,
                              max_results=500)
    status = {run.info.run_id: run.info.status for run in runs}
    for run in runs:
        reason = stale_reason(run.data.tags.get(TAG)) or _orphaned(run, status)
        if reason is None:
            continue
        line = f"stale run ended KILLED by {by}: {reason}"
        client.set_tag(run.info.run_id, names.ERROR, line)
        client.set_terminated(run.info.run_id, "KILLED")
        ended.append((run.info.run_id, line))
    return ended


def _orphaned(run, running: dict[str, str]) -> str | None:
    """An evaluation run written before evaluation runs had a heartbeat, whose job is no longer RUNNING."""
    job = run.data.tags.get(names.EVALUATES)
    if not job or TAG in run.data.tags or job in running:
        return None
    return f"its job run {job} is no longer running"


class Heartbeat:
    """Beats on ``run_id`` and uploads ``raw_path`` (as it is so far) every ``interval_s``."""

    def __init__(self, client, run_id: str, interval_s: float, raw_path: Path | None = None):
        self.client, self.run_id, self.interval_s, self.raw_path = client, run_id, interval_s, raw_path
        self._stop = threading.Event()
        self._uploaded_size = 0
        self._thread = threading.Thread(target=self._run, name="dspy-mlflow-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=max(5.0, self.interval_s))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
                self.upload_rows()
            except Exception:  # a missed beat is recovered by the next one
                pass

    def beat(self) -> None:
        self.client.set_tag(self.run_id, TAG, beat_value(self.interval_s))

    def upload_rows(self) -> None:
        """The complete lines written so far, when there are new ones."""
        path = self.raw_path
        if path is None or not path.exists() or path.stat().st_size == self._uploaded_size:
            return
        data = path.read_bytes()
        data = data[: data.rfind(b"\n") + 1]
        if not data or len(data) == self._uploaded_size:
            return
        folder = Path(tempfile.mkdtemp(prefix="dspy-mlflow-rows-"))
        try:
            (folder / path.name).write_bytes(data)
            self.client.log_artifact(self.run_id, str(folder / path.name))
            self._uploaded_size = len(data)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
