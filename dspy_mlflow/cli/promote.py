"""``python -m dspy_mlflow promote NAME VERSION``: make a version the production version."""

from __future__ import annotations

from dspy_mlflow.cli.common import guard, parser
from dspy_mlflow.registry.promotion import promote


def main(argv: list[str]) -> int:
    p = parser("promote", "Make a registered program version the production version "
                "(alias 'production' and stage Production).")
    p.add_argument("name", help="registered model name")
    p.add_argument("version", help="version number (or models:/NAME/VERSION)")
    p.add_argument("--gate", metavar="METRIC", help="refuse if METRIC is worse than production's (e.g. test/score)")
    p.add_argument("--lower-is-better", action="store_true", help="for --gate on a cost or latency metric")
    p.add_argument("--force", action="store_true", help="promote even if the gate refuses (recorded on the version)")
    a = p.parse_args(argv)

    def run() -> int:
        result = promote(a.name, a.version, gate=a.gate, force=a.force,
                         lower_is_better=a.lower_is_better, tracking_uri=a.tracking_uri)
        print(result.summary())
        return 0

    return guard(run)
