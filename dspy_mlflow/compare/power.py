"""How small a difference a paired comparison can see, and how many examples a difference needs.

For n paired examples whose per-example differences have standard deviation s_d, a two-sided
test at level alpha detects a true mean difference of

    mde = (t(1 - alpha/2, n - 1) + t(power, n - 1)) * s_d / sqrt(n)

with probability ``power``, t being Student's t quantiles with n - 1 degrees of freedom (alpha = 0.05
and power = 0.8 give 2.85 * s_d / sqrt(n) at n = 60, 2.80 for large n). Turned round, detecting a
difference D needs the smallest n whose mde is at most D.

s_d comes from the best source there is:

* observed paired differences (``gate``): their sample standard deviation;
* one program's observed per-example scores (``plan``, a finished run of the same identity):
  s_d = s * sqrt(2 * (1 - rho)) with rho = 0.5, the correlation assumed between two programs'
  scores on the same example, so s_d = s;
* nothing observed: a score in [0, 1] has a standard deviation of at most 0.5, so s_d = 0.5.

tests/compare/test_power.py checks the formula against seeded simulations of the sign-flip test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist

import numpy as np
from scipy import stats

from dspy_mlflow.errors import ConfigError

ALPHA = 0.05
POWER = 0.8
ASSUMED_CORRELATION = 0.5  # between two programs' scores on the same example
BOUNDED_SD = 0.5  # the largest standard deviation of a score in [0, 1]


def _check(alpha: float, power: float) -> None:
    if not 0 < alpha < 1:
        raise ConfigError("alpha", alpha, "a significance level between 0 and 1, e.g. 0.05")
    if not 0 < power < 1:
        raise ConfigError("power", power, "a probability between 0 and 1, e.g. 0.8")


def _t_sum(n: int, alpha: float, power: float) -> float:
    df = max(1, n - 1)
    return float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df))


def mde(sd_diff: float, n: int, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """The minimum detectable difference of a paired comparison of ``n`` examples (nan for n < 2)."""
    _check(alpha, power)
    if n < 2:
        return math.nan
    return _t_sum(n, alpha, power) * sd_diff / math.sqrt(n)


def check_target(target: float) -> None:
    """A difference to detect: a number > 0 (``plan --target-diff``)."""
    if not (isinstance(target, (int, float)) and target > 0):
        raise ConfigError("--target-diff", target, "a difference > 0 on the metric's scale, e.g. 0.05")


def examples_needed(target: float, sd_diff: float, *, alpha: float = ALPHA, power: float = POWER) -> int:
    """Paired examples needed to detect a difference of ``target`` (> 0): the smallest n with mde <= target."""
    _check(alpha, power)
    check_target(target)
    z = NormalDist().inv_cdf
    n = max(2, math.ceil(((z(1 - alpha / 2) + z(power)) * sd_diff / target) ** 2))  # the normal estimate, a floor
    while mde(sd_diff, n, alpha=alpha, power=power) > target:
        n += max(1, n // 100)
    return n


def sd_of_differences(diffs: Iterable[float]) -> float:
    d = np.asarray(list(diffs), dtype=float)
    return float(d.std(ddof=1)) if d.size > 1 else BOUNDED_SD


def sd_from_scores(scores: Iterable[float] | None) -> tuple[float, str]:
    """(s_d, where it came from) for a comparison against a program with these per-example scores."""
    s = np.asarray(list(scores or []), dtype=float)
    if s.size < 2:
        return BOUNDED_SD, "bound"
    return float(s.std(ddof=1)) * math.sqrt(2 * (1 - ASSUMED_CORRELATION)), "history"


def examples_to_decide(diff: float, sd_diff: float, n: int, margin: float, *, confidence: float = 0.95) -> int | None:
    """More paired examples after which an interval around ``diff`` of this spread would clear ``-margin``
    (normal approximation); None when ``diff`` itself is not above ``-margin``."""
    if diff <= -margin or sd_diff <= 0:
        return None
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    needed = math.ceil((z * sd_diff / (diff + margin)) ** 2)
    return max(1, needed - n)
