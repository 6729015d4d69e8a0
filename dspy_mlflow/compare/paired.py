"""Two programs on the same examples: the difference of their mean scores, its interval, a p-value.

``paired(a, b)`` gives diff = mean(b - a), a BCa bootstrap interval of that mean difference
(resampling examples, so each pair stays together) and a two-sided p-value from a paired
permutation test: under "no difference" each pair's sign is a coin flip. Pairs with equal scores
flip to themselves, so only the m discordant pairs count: with m <= 20 every one of the 2**m sign
patterns is enumerated (an exact p-value; for 0/1 scores it equals the exact McNemar test,
2 * P(X >= max) with X ~ Binomial(m, 1/2)); beyond that a seeded Monte Carlo sample is drawn.

``align(a_rows, b_rows)`` pairs two raw_outputs.jsonl row lists by the example's inputs
(canonical JSON), never by index or completion order; an example's repeated samples are one
score, their mean (the paired test resamples examples, not samples).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dspy_mlflow.compare.intervals import CONFIDENCE, DEFAULT_RESAMPLES, as_scores, by_example, score_interval
from dspy_mlflow.errors import CompareError, ConfigError

EXACT_MAX_DISCORDANT = 20  # 2**20 sign patterns, enumerated in well under a second
DEFAULT_PERMUTATIONS = 9999
MIN_MATCHED_SHARE = 0.8
_CHUNK_CELLS = 2_000_000  # signs held in memory at once


@dataclass(frozen=True)
class Paired:
    diff: float  # mean(b - a)
    low: float  # the interval of diff
    high: float
    p_value: float  # two-sided, paired sign-flip test
    n: int  # pairs

    def significantly_worse(self, alpha: float = 0.05) -> bool:
        """b scores below a, and the difference is not noise at level ``alpha``."""
        return self.diff < 0 and self.p_value < alpha


def paired(
    a_scores: Iterable[float],
    b_scores: Iterable[float],
    *,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Paired:
    """Compare b with a on the same examples, in the same order (see ``align``)."""
    a, b = as_scores(a_scores), as_scores(b_scores)
    if a.size != b.size:
        raise ConfigError("b_scores", f"{b.size} scores", f"one per example of a_scores ({a.size})")
    d = b - a
    if d.size == 0:
        return Paired(math.nan, math.nan, math.nan, 1.0, 0)
    low, high = score_interval(d, seed=seed, n_resamples=n_resamples, confidence=confidence)
    return Paired(float(d.mean()), low, high, sign_flip_p_value(d, seed=seed), int(d.size))


def sign_flip_p_value(diffs: Iterable[float], *, seed: int = 0, n_permutations: int = DEFAULT_PERMUTATIONS) -> float:
    """Two-sided p-value of "the mean difference is 0": P(|sum of sign-flipped diffs| >= |observed sum|)."""
    d = np.asarray(list(diffs), dtype=float)
    size = np.abs(d[d != 0])  # a zero difference flips to itself
    m = size.size
    if m == 0:
        return 1.0
    observed = abs(float(d.sum()))
    at_least = observed - 1e-9 * max(1.0, observed)  # float sums of the same values may differ in the last bit
    rows = max(1, _CHUNK_CELLS // m)
    if m <= EXACT_MAX_DISCORDANT:
        total, hits = 2**m, 0
        for start in range(0, total, rows):
            patterns = np.arange(start, min(start + rows, total))[:, None] >> np.arange(m) & 1
            hits += int((np.abs((1 - 2 * patterns) @ size) >= at_least).sum())
        return hits / total
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < n_permutations:
        k = min(rows, n_permutations - done)
        signs = rng.integers(0, 2, size=(k, m), dtype=np.int8) * 2 - 1
        hits += int((np.abs(signs @ size) >= at_least).sum())
        done += k
    return (hits + 1) / (n_permutations + 1)  # the observed pattern is one of the permutations


def canonical(inputs: Any) -> str:
    """One string per example: its inputs as sorted, compact JSON."""
    return json.dumps(inputs, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Pairs:
    a: list[float]  # scores of the matched examples, in the same order on both sides
    b: list[float]
    n_a: int  # rows of the split on each side
    n_b: int

    @property
    def matched(self) -> int:
        return len(self.a)


def keyed_rows(rows: Sequence[Mapping[str, Any]], split: str | None, label: str
               ) -> dict[tuple[str, int], Mapping[str, Any]]:
    """{(canonical inputs, occurrence): row} of ``split`` (None: every row), an example's repeated
    samples as one row with their mean score; repeated inputs pair in index order."""
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or "inputs" not in row or "score" not in row:
            raise CompareError(f"{label}: raw output row {i} has no 'inputs' and 'score' (not a raw_outputs.jsonl row)")
    chosen = by_example([r for r in rows if split is None or r.get("split") == split])  # repeats: one row
    chosen.sort(key=lambda r: r.get("index") if isinstance(r.get("index"), int) else -1)
    seen: Counter[str] = Counter()
    keyed = {}
    for row in chosen:
        key = canonical(row["inputs"])
        keyed[(key, seen[key])] = row
        seen[key] += 1
    return keyed


def _keyed(rows: Sequence[Mapping[str, Any]], split: str | None, label: str) -> dict[tuple[str, int], float]:
    """{(canonical inputs, occurrence): score}."""
    return {key: float(row["score"]) for key, row in keyed_rows(rows, split, label).items()}


def align(
    a_rows: Sequence[Mapping[str, Any]],
    b_rows: Sequence[Mapping[str, Any]],
    *,
    split: str | None = "test",
    labels: tuple[str, str] = ("a", "b"),
    min_share: float = MIN_MATCHED_SHARE,
) -> Pairs:
    """Pair rows of ``split`` (None: every row) by their inputs; CompareError when fewer than
    ``min_share`` of either side's rows find a partner."""
    a, b = _keyed(a_rows, split, labels[0]), _keyed(b_rows, split, labels[1])
    where = f"{split} " if split else ""
    for label, side, rows in ((labels[0], a, a_rows), (labels[1], b, b_rows)):
        if not side:
            splits = sorted({str(r.get("split")) for r in rows if isinstance(r, Mapping)})
            raise CompareError(f"{label} has no {where}examples in its raw outputs"
                               + (f" (splits: {', '.join(splits)})" if splits else ""))
    common = [k for k in a if k in b]
    pairs = Pairs([a[k] for k in common], [b[k] for k in common], len(a), len(b))
    if pairs.matched < min_share * len(a) or pairs.matched < min_share * len(b):
        raise CompareError(
            f"examples do not pair: {pairs.matched} of {len(a)} {where}examples of {labels[0]} and of {len(b)} "
            f"of {labels[1]} have the same inputs; at least {min_share:.0%} of each side must"
        )
    return pairs


def paired_metrics(
    baseline_scores: Sequence[Mapping[str, Any] | float],
    scores: Sequence[Mapping[str, Any] | float],
    prefix: str,
    *,
    seed: int = 0,
) -> dict[str, float]:
    """``{prefix}/diff``, ``/diff_ci_low``, ``/diff_ci_high``, ``/p_value`` of ``scores`` against the baseline.

    Raw-output rows (dicts) are paired by their inputs (see ``align``; any split); plain numbers
    must already be in the same example order on both sides.
    """
    if any(isinstance(r, Mapping) for r in (*baseline_scores, *scores)):
        pairs = align(baseline_scores, scores, split=None, labels=("the baseline", prefix))
        baseline_scores, scores = pairs.a, pairs.b
    result = paired(baseline_scores, scores, seed=seed)
    return {f"{prefix}/diff": result.diff, f"{prefix}/diff_ci_low": result.low,
            f"{prefix}/diff_ci_high": result.high, f"{prefix}/p_value": result.p_value}
