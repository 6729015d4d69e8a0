"""``python -m dspy_mlflow view RUN_ID...``: the evaluation view of finished runs, from their raw outputs."""

from __future__ import annotations

import mlflow

from dspy_mlflow.cli.common import guard, parser
from dspy_mlflow.tracking import store
from dspy_mlflow.tracking.evaluation import log_run_evaluation


def main(argv: list[str]) -> int:
    p = parser("view", "Log the evaluation view (MLflow's \"Evaluation runs\": a trace per test example with "
                       "its score) of finished job runs, from their raw_outputs.jsonl; no LM call. A run that "
                       "has one already is left as it is.")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="job run ids")
    p.add_argument("--max-examples", type=int, default=100,
                   help="the first N test examples by index; 0: all (default: %(default)s)")
    a = p.parse_args(argv)

    def run() -> int:
        client = store.client(a.tracking_uri)  # never creates an empty store
        mlflow.set_tracking_uri(client.tracking_uri)  # the traces go where the runs are
        for run_id in a.run_ids:
            logged = log_run_evaluation(client, run_id, max_examples=a.max_examples or None)
            what = f"{logged.examples} examples" if logged.examples else "had one already"
            print(f"run {run_id}: evaluation run {logged.run_id} ({what})")
        return 0

    return guard(run)
