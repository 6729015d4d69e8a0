"""A seeded 95% bootstrap interval of a mean score over examples.

The interval is the BCa (bias-corrected and accelerated) bootstrap of ``scipy.stats.bootstrap``:
it corrects the plain percentile interval for the skew a mean of 0/1 scores has near 0 or 1.
Where BCa is undefined (scipy finds the bootstrap distribution degenerate) the percentile
interval is used instead. The same seed gives the same interval. With no example the interval
is (nan, nan); with one example, or when every score is the same, it is the point itself.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy import stats

from dspy_mlflow.errors import ConfigError

DEFAULT_RESAMPLES = 9999
CONFIDENCE = 0.95
_BATCH_CELLS = 2_000_000  # resampled scores held in memory at once


def as_scores(records: Iterable[Mapping[str, Any] | float]) -> np.ndarray:
    """Scores from raw-output rows (their ``score``) or from plain numbers."""
    values = [r["score"] if isinstance(r, Mapping) else r for r in records]
    scores = np.asarray(values, dtype=float)
    if not np.isfinite(scores).all():
        bad = next(v for v in scores if not math.isfinite(v))
        raise ConfigError("score", float(bad), "finite numbers (one per example)")
    return scores


def by_example(records: Iterable[Mapping[str, Any] | float]) -> list[Mapping[str, Any] | float]:
    """Repeated samples of one example (rows with the same split and index) as one row, its score
    their mean: resampling these is the clustered bootstrap over examples. Anything else as it is."""
    rows = list(records)
    if not rows or not all(isinstance(r, Mapping) and "index" in r for r in rows):
        return rows
    groups: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row.get("split"), row["index"]), []).append(row)
    if all(len(g) == 1 for g in groups.values()):
        return rows
    return [{**min(g, key=lambda r: r.get("repeat", 0)), "score": sum(float(r["score"]) for r in g) / len(g)}
            for g in groups.values()]


def within_example_sd(records: Iterable[Mapping[str, Any]]) -> float:
    """The mean over examples of the standard deviation of their repeated samples' scores (0 for one sample)."""
    groups: dict[tuple[Any, Any], list[float]] = {}
    for row in records:
        groups.setdefault((row.get("split"), row.get("index")), []).append(float(row["score"]))
    sds = [float(np.std(g, ddof=1)) if len(g) > 1 else 0.0 for g in groups.values()]
    return sum(sds) / len(sds) if sds else 0.0


def score_interval(
    scores: Iterable[Mapping[str, Any] | float],
    *,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """(low, high): a ``confidence`` BCa bootstrap interval of the mean of ``scores``."""
    if not 0 < confidence < 1:
        raise ConfigError("confidence", confidence, "a number between 0 and 1, e.g. 0.95")
    if n_resamples < 1:
        raise ConfigError("n_resamples", n_resamples, "a positive number of bootstrap resamples")
    x = as_scores(scores)
    if x.size == 0:
        return math.nan, math.nan
    if x.size == 1 or np.ptp(x) == 0:  # nothing to resample: the point itself
        point = float(x[0])
        return point, point
    batch = max(1, _BATCH_CELLS // x.size)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            ci = stats.bootstrap((x,), np.mean, n_resamples=n_resamples, batch=batch, confidence_level=confidence,
                                 method=method, rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
        if math.isfinite(low) and math.isfinite(high):
            break
    return low, high


def interval_metrics(records: Iterable[Mapping[str, Any] | float], split: str, seed: int = 0) -> dict[str, float]:
    """``{split}/score_ci_low`` and ``{split}/score_ci_high`` for one split's rows (or scores); repeated
    samples of an example count as one (see ``by_example``)."""
    low, high = score_interval(by_example(records), seed=seed)
    return {f"{split}/score_ci_low": low, f"{split}/score_ci_high": high}
