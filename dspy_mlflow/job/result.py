"""What a job returns."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class JobResult:
    run_id: str | None
    status: str  # FINISHED, FAILED, KILLED or SKIPPED
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    optimizer: str | None = None  # resolved optimizer (auto -> what it picked)
    model_version: str | None = None
    output_dir: str | None = None

    @property
    def objective(self) -> float | None:
        """The value a sweeper maximizes: the dev score (the test split stays held out)."""
        return self.metrics.get("dev/score")


def skipped(run_id: str, hashes: dict[str, str], metrics: dict[str, float], optimizer: str | None) -> JobResult:
    print(f"skipped: config, data and code identical to FINISHED run {run_id} "
          f"(config {hashes['config']}, data {hashes['data']}, code {hashes['code']}; "
          f"set tracking.rerun=true to run again)")
    return JobResult(run_id, "SKIPPED", metrics, optimizer=optimizer)
