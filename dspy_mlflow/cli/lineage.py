"""``python -m dspy_mlflow lineage NAME``: the version tree of a registered program."""

from __future__ import annotations

from dspy_mlflow.cli.common import guard, parser
from dspy_mlflow.registry.lineage import format_lineage, lineage


def main(argv: list[str]) -> int:
    p = parser("lineage", "Print the version tree of a registered program.")
    p.add_argument("name", help="registered model name")
    a = p.parse_args(argv)

    def run() -> int:
        print(format_lineage(a.name, lineage(a.name, tracking_uri=a.tracking_uri)))
        return 0

    return guard(run)
