"""``python -m dspy_mlflow plan [-m] [--json] [--target-diff D] overrides...``: a forecast table before spending."""

from __future__ import annotations

import argparse
import json
import math

from dspy_mlflow.cli.common import guard
from dspy_mlflow.compare.power import check_target, examples_needed
from dspy_mlflow.job.validation import validate_job
from dspy_mlflow.plan.forecast import format_plan, job_configs, sweep_cost
from dspy_mlflow.quiet import quiet_libraries


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m dspy_mlflow plan",
                                description="Forecast tokens, dollars, time and statistical power of a job or a "
                                            "sweep (-m) before running it: from finished runs of the same identity, "
                                            "else from a few probe calls and a dry run on the offline stand-in. "
                                            "mde is the smallest test/score difference the job's test split "
                                            "detects (paired, alpha 0.05, 80%% power).")
    p.add_argument("-m", "--multirun", action="store_true", help="the overrides describe a sweep")
    p.add_argument("--json", action="store_true", help="one JSON object per job (and the total) instead of a table")
    p.add_argument("--target-diff", type=float, metavar="D",
                   help="also print the test-split size each job needs to detect a difference of D")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for the job or sweep itself")
    a = p.parse_args(argv)

    def run() -> int:
        if a.target_diff is not None:
            check_target(a.target_diff)  # before any forecast is paid for
        quiet_libraries()
        configs = job_configs(a.overrides, a.multirun)
        for _, cfg in configs:
            validate_job(cfg)
        forecasts, total = sweep_cost(configs)
        budget = configs[0][1]["budget"].get("sweep_max_cost_usd") if a.multirun else None
        needed = {f.job: examples_needed(a.target_diff, f.sd_diff) for f in forecasts} if a.target_diff else {}
        if a.json:
            jobs = [{**vars(f), **({"target_diff": a.target_diff, "test_examples_needed": needed[f.job]}
                                   if needed else {})} for f in forecasts]
            print(json.dumps({"jobs": [_nan_to_none(j) for j in jobs], "total_cost_usd": total, "budget": budget}))
            return 0
        print(format_plan(forecasts, budget))
        for f in forecasts if needed else []:
            verdict = "enough" if needed[f.job] <= f.test_examples else f"{needed[f.job] - f.test_examples} more"
            print(f"{f.job}: to detect a difference of {a.target_diff:g}: {needed[f.job]} test examples "
                  f"(it has {f.test_examples}: {verdict})")
        return 0

    return guard(run)


def _nan_to_none(job: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in job.items()}
