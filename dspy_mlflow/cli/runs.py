"""``python -m dspy_mlflow runs``: the runs of an experiment or sweep side by side (CSV too)."""

from __future__ import annotations

import pandas as pd

from dspy_mlflow.cli.common import guard, parser
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.report.runs_table import DEFAULT_EXPERIMENT, runs_frame

_SHOWN = ("run_id", "status", "project", "model", "optimizer", "strategy", "test/score", "dev/score",
          "eval/tokens_in", "compile/tokens_in", "cost/total_usd", "cost/list_usd", "eval/cache_hits",
          "eval/latency_p50_ms", "duration_s")


DEFAULT_LIMIT = 50


def main(argv: list[str]) -> int:
    p = parser("runs", "Compare the runs of an experiment or sweep (and export them as CSV).")
    p.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="experiment name (default: %(default)s)")
    p.add_argument("--sweep", metavar="SWEEP_ID", help="only the runs of this sweep (tag dspy_mlflow.sweep_id)")
    p.add_argument("--csv", metavar="PATH", help="also write every column to this CSV file")
    p.add_argument("--limit", type=int, metavar="N",
                   help=f"the best N runs by test/score, 0: all (default: {DEFAULT_LIMIT}; with --csv: all)")
    a = p.parse_args(argv)
    limit = a.limit if a.limit is not None else (0 if a.csv else DEFAULT_LIMIT)

    def run() -> int:
        if limit < 0:
            raise ConfigError("--limit", limit, "a whole number >= 0 (0: all runs)")
        frame = runs_frame(a.experiment, sweep_id=a.sweep, tracking_uri=a.tracking_uri, limit=limit or None)
        if a.csv:
            try:
                frame.to_csv(a.csv, index=False)
            except OSError as exc:
                raise ConfigError("--csv", a.csv, f"a writable file path ({exc})") from exc
        if frame.empty:
            print(f"no runs in experiment {a.experiment!r}" + (f" for sweep {a.sweep}" if a.sweep else ""))
        else:
            view = frame[list(_SHOWN)].copy()
            view["run_id"] = view["run_id"].str[:8]  # the CSV and runs_frame() keep the whole id
            with pd.option_context("display.width", 250, "display.max_columns", 50):
                print(view.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}"))
        if limit and len(frame) == limit:
            print(f"(the best {limit} by test/score; --limit N for more, 0 for all)")
        if a.csv:
            print(f"wrote {len(frame)} run(s) to {a.csv}")
        return 0

    return guard(run)
