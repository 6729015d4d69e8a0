"""``python -m dspy_mlflow rollback NAME``: production returns to the previous version."""

from __future__ import annotations

from dspy_mlflow.cli.common import guard, parser
from dspy_mlflow.registry.promotion import rollback


def main(argv: list[str]) -> int:
    p = parser("rollback", "Return production to the previously promoted version.")
    p.add_argument("name", help="registered model name")
    a = p.parse_args(argv)

    def run() -> int:
        print(rollback(a.name, tracking_uri=a.tracking_uri).summary())
        return 0

    return guard(run)
