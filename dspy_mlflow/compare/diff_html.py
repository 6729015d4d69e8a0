"""A program diff as one self-contained HTML page (inline CSS, no script, no external resource)."""

from __future__ import annotations

import html
import json
from typing import Any

from dspy_mlflow.compare.program_diff import Outcome, ProgramDiff, paired_line

_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.3em}h2{font-size:1.1em;
margin-top:1.6em}pre{background:#f6f8fa;padding:.6em;white-space:pre-wrap}.add{color:#116329;background:#dafbe1}
.del{color:#82071e;background:#ffebe9}.hunk{color:#6639ba}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ddd;padding:.3em .5em;vertical-align:top;text-align:left}th{background:#f6f8fa}"""


def _text(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True))


def _diff_line(line: str) -> str:
    kind = "add" if line.startswith("+") else "del" if line.startswith("-") else "hunk" if line.startswith("@@") else ""
    return f'<span class="{kind}">{html.escape(line)}</span>' if kind else html.escape(line)


def _examples(title: str, outcomes: list[Outcome]) -> str:
    if not outcomes:
        return ""
    rows = "".join(f"<tr><td>{_text(o.inputs)}</td><td>{_text(o.gold)}</td><td>{_text(o.a)} ({o.a_score:g})</td>"
                   f"<td>{_text(o.b)} ({o.b_score:g})</td></tr>" for o in outcomes)
    return (f"<h2>{html.escape(title)} ({len(outcomes)})</h2><table><tr><th>inputs</th><th>gold</th><th>A</th>"
            f"<th>B</th></tr>{rows}</table>")


def format_html(d: ProgramDiff) -> str:
    parts = [f"<h1>A: {html.escape(d.a.label)}<br>B: {html.escape(d.b.label)}</h1>"]
    for p in d.predictors:
        parts.append(f"<h2>predictor {html.escape(p.name)}</h2>")
        parts.append("<p>instruction unchanged</p>" if not p.instruction else
                     "<pre>" + "\n".join(_diff_line(line) for line in p.instruction) + "</pre>")
        parts += [f"<p>{html.escape(line)}</p>" for line in p.prefixes]
        parts.append(f"<p>demos: {len(p.added)} added, {len(p.removed)} removed, {p.kept} kept</p>")
        demos = [f'<span class="add">+ {_text(x)}</span>' for x in p.added] + \
                [f'<span class="del">- {_text(x)}</span>' for x in p.removed]
        if demos:
            parts.append("<pre>" + "\n".join(demos) + "</pre>")
    parts.append(f"<h2>{html.escape(paired_line(d))}</h2>")
    parts += [_examples("B wins", d.wins), _examples("B loses", d.losses), _examples("ties", d.ties)]
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>program diff</title><style>{_CSS}</style>'
            f"</head><body>{''.join(parts)}</body></html>\n")
