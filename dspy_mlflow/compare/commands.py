"""``python -m dspy_mlflow gate NAME VERSION``: exit 0 not worse than production, 1 worse, 2 bad input.

Also runnable as ``python -m dspy_mlflow.compare.commands gate ...``. One verdict line on stdout;
a refused or impossible request prints ``error: <one line>`` to stderr and returns 2.
"""

from __future__ import annotations

import sys

from dspy_mlflow.registry.commands import guard, parser

EXIT_BAD_INPUT = 2


def gate_main(argv: list[str]) -> int:
    p = parser("gate", "Compare a candidate with NAME@production on the same test examples (paired test on "
                       "the source runs' raw_outputs.jsonl). Exit 0: not significantly worse; 1: significantly "
                       "worse; 2: bad input.")
    p.add_argument("name", help="registered model name")
    p.add_argument("version", help="candidate: version number, models:/NAME/VERSION, or a run id")
    p.add_argument("--metric", default="test/score", help="SPLIT/score compared per example (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and Monte Carlo (default: %(default)s)")
    a = p.parse_args(argv)

    def run() -> int:
        from dspy_mlflow.compare.gate import gate

        result = gate(a.name, a.version, metric=a.metric, alpha=a.alpha, seed=a.seed, tracking_uri=a.tracking_uri)
        print(result.summary())
        return result.exit_code

    return guard(run)


def view_main(argv: list[str]) -> int:
    p = parser("view", "Log the evaluation view (MLflow's \"Evaluation runs\": a trace per test example with "
                       "its score) of finished job runs, from their raw_outputs.jsonl; no LM call. A run that "
                       "has one already is left as it is.")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="job run ids")
    p.add_argument("--max-examples", type=int, default=100,
                   help="the first N test examples by index; 0: all (default: %(default)s)")
    a = p.parse_args(argv)

    def run() -> int:
        import mlflow

        from dspy_mlflow.registry import _common as C
        from dspy_mlflow.tracking.evaluation import log_run_evaluation

        client = C.client(a.tracking_uri)  # never creates an empty store
        mlflow.set_tracking_uri(client.tracking_uri)  # the traces go where the runs are
        for run_id in a.run_ids:
            logged = log_run_evaluation(client, run_id, max_examples=a.max_examples or None)
            what = f"{logged.examples} examples" if logged.examples else "had one already"
            print(f"run {run_id}: evaluation run {logged.run_id} ({what})")
        return 0

    return guard(run)


COMMANDS = {"gate": gate_main, "view": view_main}


def main(argv: list[str] | None = None) -> int:
    """``python -m dspy_mlflow.compare.commands WORD ...`` (the same as ``python -m dspy_mlflow WORD``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m dspy_mlflow.compare.commands {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return EXIT_BAD_INPUT
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    from dspy_mlflow.quiet import quiet_environment

    quiet_environment()
    sys.exit(main())
