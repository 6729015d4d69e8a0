"""The bootstrap interval of a mean score, checked against figures computed here by hand."""

from __future__ import annotations

import math
import warnings

import pytest

from dspy_mlflow.compare.intervals import interval_metrics, score_interval
from dspy_mlflow.errors import ConfigError

Z95 = 1.959964  # the 97.5% point of the standard normal


def correct(k: int, n: int) -> list[float]:
    return [1.0] * k + [0.0] * (n - k)


def wald(k: int, n: int) -> tuple[float, float]:
    """The normal-approximation 95% interval of a proportion k/n: p ± z sqrt(p(1-p)/n)."""
    p = k / n
    half = Z95 * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def test_41_of_60_lies_near_the_normal_approximation_and_contains_the_mean():
    low, high = score_interval(correct(41, 60), seed=0)
    wald_low, wald_high = wald(41, 60)  # 0.6833 ± 0.1177 = [0.5657, 0.8010]
    assert wald_low == pytest.approx(0.5657, abs=1e-4) and wald_high == pytest.approx(0.8010, abs=1e-4)
    assert low < 41 / 60 < high
    assert abs(low - wald_low) < 0.025 and abs(high - wald_high) < 0.025
    assert 0.8 < (high - low) / (wald_high - wald_low) < 1.2
    assert (low, high) == pytest.approx((0.55, 0.78333), abs=1e-4)  # BCa, seed 0: recorded for the README


def test_the_same_seed_gives_the_same_interval_and_another_seed_nearly_the_same():
    scores = correct(41, 60)
    assert score_interval(scores, seed=7) == score_interval(scores, seed=7)
    other = score_interval(scores, seed=8)
    assert other == pytest.approx(score_interval(scores, seed=7), abs=0.034)  # at most two examples' worth


def test_ten_times_the_examples_narrow_the_interval_by_about_root_ten():
    small = score_interval(correct(41, 60))
    large = score_interval(correct(410, 600))
    ratio = (small[1] - small[0]) / (large[1] - large[0])
    assert math.sqrt(10) * 0.8 < ratio < math.sqrt(10) * 1.2


def test_no_example_one_example_and_equal_scores_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = score_interval([])
        assert math.isnan(low) and math.isnan(high)
        assert score_interval([0.7]) == (0.7, 0.7)
        assert score_interval([1.0] * 30) == (1.0, 1.0)
        assert score_interval([0.0, 1.0]) == (0.0, 1.0)
        low, high = score_interval(correct(1, 60))  # one success: skewed, BCa still defined
        assert low == 0.0 and 1 / 60 < high <= 0.12


def test_interval_metrics_reads_raw_output_rows_or_numbers():
    rows = [{"split": "test", "score": s} for s in correct(41, 60)]
    metrics = interval_metrics(rows, "test", 0)
    assert metrics == {"test/score_ci_low": score_interval(correct(41, 60))[0],
                       "test/score_ci_high": score_interval(correct(41, 60))[1]}
    assert interval_metrics(correct(41, 60), "dev", seed=0).keys() == {"dev/score_ci_low", "dev/score_ci_high"}


def test_bad_arguments_name_the_key():
    with pytest.raises(ConfigError, match=r"confidence=95 is not allowed"):
        score_interval([1.0, 0.0], confidence=95)
    with pytest.raises(ConfigError, match=r"score=nan is not allowed: finite numbers"):
        score_interval([1.0, float("nan")])
