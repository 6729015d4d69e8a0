"""What a job is told about the sweep it belongs to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SweepContext:
    sweep_id: str
    parent_run_id: str | None
    experiment_id: str | None = None
    flushes_traces: bool = False  # the sweep's callback runs in this process and flushes traces at its end
