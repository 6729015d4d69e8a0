"""Two optimized programs compared as programs: per predictor, the instruction as a unified diff and
the demos added and removed; then the test examples B wins, loses and ties against A.

A side is a run id, ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (a version is read from its
source run): the run's ``program/program.json`` (DSPy state) and ``raw_outputs.jsonl``. Examples
pair by their inputs (compare/paired.py), never by index.
"""

from __future__ import annotations

import difflib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from dspy_mlflow import names
from dspy_mlflow.compare.paired import Paired, canonical, keyed_rows, paired
from dspy_mlflow.errors import CompareError, ConfigError
from dspy_mlflow.registry import versions as V
from dspy_mlflow.tracking.raw_outputs import load_raw_outputs
from dspy_mlflow.tracking.run_artifacts import download


@dataclass
class Side:
    label: str  # "sentiment v3 (run 1a2b3c4d)" or "run 1a2b3c4d"
    run_id: str
    state: dict[str, Any]
    rows: list[dict[str, Any]] | None  # None: the run has no raw outputs


@dataclass
class PredictorDiff:
    name: str
    instruction: list[str]  # unified diff lines; empty when unchanged
    prefixes: list[str] = field(default_factory=list)  # "field 2 prefix: 'Sentiment:' -> 'Label:'" (COPRO sets them)
    added: list[dict[str, Any]] = field(default_factory=list)  # demos of B that A has not
    removed: list[dict[str, Any]] = field(default_factory=list)  # demos of A that B has not
    kept: int = 0


@dataclass
class Outcome:
    inputs: Any
    gold: Any
    a: Any  # A's prediction (or error)
    b: Any
    a_score: float
    b_score: float


@dataclass
class ProgramDiff:
    a: Side
    b: Side
    predictors: list[PredictorDiff]
    wins: list[Outcome]  # B scores higher
    losses: list[Outcome]
    ties: list[Outcome]
    test: Paired | None  # B minus A; None without raw outputs on both sides


def resolve_side(c: MlflowClient, ref: str) -> Side:
    """A run id or a models:/ reference, read into its program state and raw outputs."""
    ref = str(ref).strip()
    if ref.startswith("models:/"):
        mv = V.resolve(c, ref)
        run_id = V.source_run(mv)
        label = f"{mv.name} v{mv.version} (run {str(run_id)[:8]})"
    else:
        try:
            run_id = c.get_run(ref).info.run_id
        except MlflowException:
            raise ConfigError("reference", ref, "a run id, models:/NAME/VERSION or models:/NAME@ALIAS") from None
        label = f"run {run_id[:8]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state = json.loads(Path(download(c, run_id, names.PROGRAM_STATE, tmp)).read_text(encoding="utf-8"))
    except (MlflowException, OSError, ValueError):
        raise CompareError(f"{label} has no readable {names.PROGRAM_STATE} (a job logs it after compiling)") from None
    try:
        rows = load_raw_outputs(c, run_id)
    except CompareError:
        rows = None
    return Side(label, run_id, state, rows)


def predictors(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Predictor name -> its state (a bare Predict saves itself flat, as ``self``)."""
    if "signature" in state:
        return {"self": dict(state)}
    return {k: v for k, v in state.items() if isinstance(v, Mapping) and "signature" in v}


def _fields(pred: Mapping[str, Any]) -> list[str]:
    return [str(f.get("prefix")) for f in (pred.get("signature") or {}).get("fields") or []]


def _demo_key(demo: Mapping[str, Any]) -> str:
    return canonical({k: v for k, v in demo.items() if k != "augmented"})


def diff_predictors(a_state: Mapping[str, Any], b_state: Mapping[str, Any], labels=("A", "B")) -> list[PredictorDiff]:
    a, b = predictors(a_state), predictors(b_state)
    if set(a) != set(b):
        raise CompareError(f"the programs have different predictors: {labels[0]} has {', '.join(sorted(a)) or 'none'}, "
                           f"{labels[1]} has {', '.join(sorted(b)) or 'none'}")
    out = []
    for name in sorted(a):
        fa, fb = _fields(a[name]), _fields(b[name])
        if len(fa) != len(fb):
            raise CompareError(f"predictor {name!r} has different signatures: {labels[0]} {fa}, {labels[1]} {fb}")
        prefixes = [f"field {i} prefix: {x!r} -> {y!r}" for i, (x, y) in enumerate(zip(fa, fb, strict=True), 1)
                    if x != y]
        ia = str((a[name].get("signature") or {}).get("instructions") or "")
        ib = str((b[name].get("signature") or {}).get("instructions") or "")
        lines = list(difflib.unified_diff(ia.splitlines(), ib.splitlines(), f"{labels[0]}", f"{labels[1]}",
                                          lineterm="")) if ia != ib else []
        da = {_demo_key(d): d for d in a[name].get("demos") or []}
        db = {_demo_key(d): d for d in b[name].get("demos") or []}
        out.append(PredictorDiff(name, lines, prefixes, [d for k, d in db.items() if k not in da],
                                 [d for k, d in da.items() if k not in db], sum(k in db for k in da)))
    return out


def compare_examples(a_rows, b_rows) -> tuple[list[Outcome], list[Outcome], list[Outcome], Paired]:
    a, b = keyed_rows(a_rows, "test", "A"), keyed_rows(b_rows, "test", "B")
    common = [k for k in a if k in b]
    if not common:
        raise CompareError("no test example of A has the same inputs as one of B: they were not evaluated "
                           "on the same data")
    wins, losses, ties = [], [], []
    for key in common:
        ra, rb = a[key], b[key]
        o = Outcome(ra.get("inputs"), ra.get("gold"), ra.get("prediction") or ra.get("error"),
                    rb.get("prediction") or rb.get("error"), float(ra.get("score") or 0.0),
                    float(rb.get("score") or 0.0))
        (wins if o.b_score > o.a_score else losses if o.b_score < o.a_score else ties).append(o)
    result = paired([float(a[k].get("score") or 0.0) for k in common], [float(b[k].get("score") or 0.0) for k in common])
    return wins, losses, ties, result


def program_diff(c: MlflowClient, ref_a: str, ref_b: str) -> ProgramDiff:
    a, b = resolve_side(c, ref_a), resolve_side(c, ref_b)
    preds = diff_predictors(a.state, b.state, labels=(a.label, b.label))
    if a.rows is None or b.rows is None:
        return ProgramDiff(a, b, preds, [], [], [], None)
    wins, losses, ties, result = compare_examples(a.rows, b.rows)
    return ProgramDiff(a, b, preds, wins, losses, ties, result)


def _short(value: Any, width: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


def paired_line(d: ProgramDiff) -> str:
    r = d.test
    if r is None:
        missing = d.a.label if d.a.rows is None else d.b.label
        return f"examples: {missing} has no raw_outputs.jsonl, so no example comparison"
    return (f"test examples (paired by inputs): B wins {len(d.wins)}, loses {len(d.losses)}, ties {len(d.ties)}; "
            f"diff {r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}], p={r.p_value:.2g}")


def format_text(d: ProgramDiff, max_examples: int = 10) -> str:
    out = [f"A: {d.a.label}", f"B: {d.b.label}"]
    for p in d.predictors:
        out.append(f"\npredictor {p.name}")
        out.append("  instruction: unchanged" if not p.instruction else "  instruction:")
        out += [f"    {line}" for line in p.instruction]
        out += [f"  {line}" for line in p.prefixes]
        out.append(f"  demos: {len(p.added)} added, {len(p.removed)} removed, {p.kept} kept")
        out += [f"    + {_short(demo)}" for demo in p.added]
        out += [f"    - {_short(demo)}" for demo in p.removed]
    out.append("\n" + paired_line(d))
    for title, outcomes in (("B wins", d.wins), ("B loses", d.losses)):
        if outcomes:
            out.append(f"  {title} ({len(outcomes)}{', first ' + str(max_examples) if len(outcomes) > max_examples else ''}):")
        for o in outcomes[:max_examples]:
            out.append(f"    inputs {_short(o.inputs, 90)} | gold {_short(o.gold, 40)} | "
                       f"A {_short(o.a, 40)} ({o.a_score:g}) | B {_short(o.b, 40)} ({o.b_score:g})")
    return "\n".join(out)
