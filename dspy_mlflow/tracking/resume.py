"""Resume a killed job: reuse the test rows its run already answered, when the program is the same.

A job killed mid-evaluation leaves a KILLED run (ended by :mod:`heartbeat`'s stale-run
recovery or by Ctrl-C) with its partial ``raw_outputs.jsonl`` uploaded. The same
command again finds it by identity (config, data and code hashes); if its compiled
program has the same state (tag ``dspy_mlflow.program_hash``), the rows it answered
are written again and not sent to the model.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from dspy_mlflow import names
from dspy_mlflow.tracking.identity import identity_filter
from dspy_mlflow.tracking.run_artifacts import download

PROGRAM_TAG = names.PROGRAM_HASH
RESUMED_TAG = names.RESUMED_FROM


def program_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()[:16]


def killed_run(client, experiment_id: str, hashes: dict[str, str]):
    """The newest KILLED run of this identity that got as far as compiling, or None."""
    runs = client.search_runs([experiment_id], f"{identity_filter(hashes)} and attributes.status = 'KILLED'",
                              order_by=["attributes.start_time DESC"], max_results=5)
    return next((r for r in runs if r.data.tags.get(PROGRAM_TAG)), None)


def answered_rows(client, run_id: str, split: str = "test") -> dict[tuple[int, int], dict]:
    """The rows of ``split`` the run answered, by (index, repeat) (a parse error is an answer; a lost
    example is not)."""
    with tempfile.TemporaryDirectory(prefix="dspy-mlflow-resume-") as tmp:
        try:
            path = Path(download(client, run_id, "raw_outputs.jsonl", tmp))
        except Exception:  # nothing was uploaded before it died
            return {}
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {(r["index"], r.get("repeat", 0)): r for r in rows
            if r.get("split") == split and r.get("error_kind") not in ("provider", "program", "budget")}
