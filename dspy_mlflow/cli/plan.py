"""``python -m dspy_mlflow plan [-m] overrides...``: a forecast table before spending."""

from __future__ import annotations

import argparse

from dspy_mlflow.cli.common import guard
from dspy_mlflow.job.validation import validate_job
from dspy_mlflow.plan.forecast import forecast_job, format_plan, job_configs
from dspy_mlflow.quiet import quiet_libraries


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m dspy_mlflow plan",
                                description="Forecast tokens, dollars and time of a job or a sweep (-m) "
                                            "before running it: from finished runs of the same identity, "
                                            "else from a few probe calls and a dry run on the offline stand-in.")
    p.add_argument("-m", "--multirun", action="store_true", help="the overrides describe a sweep")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for the job or sweep itself")
    a = p.parse_args(argv)

    def run() -> int:
        quiet_libraries()
        configs = job_configs(a.overrides, a.multirun)
        for _, cfg in configs:
            validate_job(cfg)
        forecasts = [forecast_job(cfg, label) for label, cfg in configs]
        budget = configs[0][1]["budget"].get("sweep_max_cost_usd") if a.multirun else None
        print(format_plan(forecasts, budget))
        return 0

    return guard(run)
