"""``python -m dspy_mlflow gate NAME VERSION [--margin M]``: exit 0 not worse than production, 1 worse
(or, with a margin, not shown to be within it), 2 bad input.

One verdict line on stdout; a refused or impossible request prints ``error: <one line>`` to stderr
and returns 2.
"""

from __future__ import annotations

from dspy_mlflow.cli.common import guard, parser
from dspy_mlflow.compare.gate import gate


def main(argv: list[str]) -> int:
    p = parser("gate", "Compare a candidate with NAME@production on the same test examples (paired test on "
                       "the source runs' raw_outputs.jsonl). Exit 0: not significantly worse; 1: significantly "
                       "worse; 2: bad input.")
    p.add_argument("name", help="registered model name")
    p.add_argument("version", help="candidate: version number, models:/NAME/VERSION, or a run id")
    p.add_argument("--metric", default="test/score", help="SPLIT/score compared per example (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default: %(default)s)")
    p.add_argument("--margin", type=float, default=None,
                   help="non-inferiority: pass only when the 95%% interval of candidate - production stays above "
                        "-M (e.g. 0.02); exit 1 names worse or inconclusive, and how many more examples would decide")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and Monte Carlo (default: %(default)s)")
    a = p.parse_args(argv)

    def run() -> int:
        result = gate(a.name, a.version, metric=a.metric, alpha=a.alpha, margin=a.margin, seed=a.seed,
                      tracking_uri=a.tracking_uri)
        print(result.summary())
        return result.exit_code

    return guard(run)
