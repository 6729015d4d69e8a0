"""The minimum detectable difference against simulation: many seeded synthetic paired samples
whose true mean difference is the reported mde are detected by our paired sign-flip test (the
one ``gate`` uses) 80% of the time, and the examples needed for a difference give it back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dspy_mlflow.compare.paired import sign_flip_p_value
from dspy_mlflow.compare.power import BOUNDED_SD, examples_needed, examples_to_decide, mde, sd_from_scores
from dspy_mlflow.errors import ConfigError

SIMULATIONS = 2000


def normal(rng, n, mean, sd):
    return rng.normal(mean, sd, n)


def ternary(rng, n, mean, sd):
    """Differences of two 0/1 scores: +1, -1 or 0 with the given mean and standard deviation."""
    both = sd**2 + mean**2  # P(+1) + P(-1)
    plus, minus = (both + mean) / 2, (both - mean) / 2
    return rng.choice([1.0, -1.0, 0.0], size=n, p=[plus, minus, 1 - plus - minus])


@pytest.mark.parametrize("draw, n, sd", [(normal, 60, 0.5), (normal, 30, 0.2), (ternary, 200, BOUNDED_SD),
                                         (ternary, 400, 0.35)], ids=["normal-60", "normal-30", "01-200", "01-400"])
def test_the_detection_rate_at_the_reported_mde_is_eighty_percent(draw, n, sd):
    rng = np.random.default_rng(0)
    target = mde(sd, n)
    detected = 0
    for i in range(SIMULATIONS):
        d = draw(rng, n, target, sd)
        detected += d.mean() > 0 and sign_flip_p_value(d, seed=i, n_permutations=999) < 0.05
    # 0/1 differences tie often, which makes the sign-flip test a little conservative: about 0.77
    assert detected / SIMULATIONS == pytest.approx(0.8, abs=0.05)


def test_a_smaller_difference_is_missed_more_often_and_a_larger_one_less():
    rng = np.random.default_rng(3)
    rates = []
    for share in (0.5, 1.5):
        target = share * mde(0.5, 60)
        hits = sum(sign_flip_p_value(d, seed=i, n_permutations=999) < 0.05
                   for i, d in enumerate(normal(rng, 60, target, 0.5) for _ in range(500)))
        rates.append(hits / 500)
    assert rates[0] < 0.5 and rates[1] > 0.95


def test_the_formula_in_numbers():
    assert mde(0.5, 60) == pytest.approx((2.0010 + 0.8484) * 0.5 / math.sqrt(60), abs=1e-3)  # t with 59 df
    assert mde(0.5, 10**6) == pytest.approx((1.95996 + 0.84162) * 0.5 / 1000, rel=1e-3)  # the normal limit
    assert math.isnan(mde(0.5, 1))
    n = examples_needed(0.05, 0.5)
    assert mde(0.5, n) <= 0.05 < mde(0.5, n - 1) * 1.01
    assert examples_needed(mde(0.5, 60), 0.5) <= 60


def test_where_the_spread_comes_from():
    assert sd_from_scores(None) == (BOUNDED_SD, "bound")
    sd, source = sd_from_scores([1, 0] * 30)  # one program's 0/1 scores at 0.5, correlation 0.5 assumed
    assert source == "history" and sd == pytest.approx(np.std([1, 0] * 30, ddof=1))


def test_examples_to_decide_and_bad_input():
    assert examples_to_decide(-0.1, 0.4, 60, 0.05) is None  # below the margin already
    more = examples_to_decide(0.0, 0.4, 60, 0.02)
    assert 1.96 * 0.4 / math.sqrt(60 + more) < 0.02 <= 1.96 * 0.4 / math.sqrt(59 + more)
    with pytest.raises(ConfigError, match=r"--target-diff=-0.1 is not allowed"):
        examples_needed(-0.1, 0.5)
    with pytest.raises(ConfigError, match=r"alpha=1.5 is not allowed"):
        mde(0.5, 60, alpha=1.5)
