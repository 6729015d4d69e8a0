"""``python -m dspy_mlflow diff A B [--html FILE]``: two programs compared as programs and example by example.

A and B are run ids, ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``. Exit 0 with the diff on
stdout; 2 with one ``error:`` line on a bad reference or programs of different signatures.
"""

from __future__ import annotations

from pathlib import Path

from dspy_mlflow.cli.common import guard, parser
from dspy_mlflow.compare.diff_html import format_html
from dspy_mlflow.compare.program_diff import format_text, program_diff
from dspy_mlflow.errors import ConfigError
from dspy_mlflow.tracking import store


def main(argv: list[str]) -> int:
    p = parser("diff", "Compare two optimized programs: per predictor the instruction (unified diff) and the "
                       "demos added and removed, then the test examples B wins, loses and ties against A, with "
                       "the paired test.")
    p.add_argument("a", help="A: a run id, models:/NAME/VERSION or models:/NAME@ALIAS")
    p.add_argument("b", help="B: the same kinds of reference")
    p.add_argument("--html", metavar="FILE", help="also write the diff as one self-contained HTML page")
    p.add_argument("--examples", type=int, default=10, help="wins and losses listed on stdout (default: %(default)s)")
    a = p.parse_args(argv)

    def run() -> int:
        if a.examples < 0:
            raise ConfigError("--examples", a.examples, "a number of examples >= 0")
        d = program_diff(store.client(a.tracking_uri), a.a, a.b)
        if a.html:
            try:
                Path(a.html).write_text(format_html(d), encoding="utf-8")
            except OSError as exc:
                raise ConfigError("--html", a.html, f"a writable file path ({exc.strerror})") from None
        print(format_text(d, max_examples=a.examples))
        if a.html:
            print(f"html: {a.html}")
        return 0

    return guard(run)
