"""The paired comparison: figures computed here by hand (binomial sums, sign patterns, normal approximations)."""

from __future__ import annotations

import math
import random

import pytest

from dspy_mlflow.compare import CompareError
from dspy_mlflow.compare.paired import align, paired, paired_metrics, sign_flip_p_value
from dspy_mlflow.errors import ConfigError

Z95 = 1.959964


def pairs_of(both: int, only_b: int, only_a: int, neither: int) -> tuple[list[float], list[float]]:
    """0/1 scores of programs a and b on the same examples."""
    a = [1.0] * both + [0.0] * only_b + [1.0] * only_a + [0.0] * neither
    b = [1.0] * both + [1.0] * only_b + [0.0] * only_a + [0.0] * neither
    return a, b


def exact_mcnemar(only_b: int, only_a: int) -> float:
    """2 * P(X >= max(only_b, only_a)) with X ~ Binomial(discordant, 1/2), capped at 1."""
    m, k = only_b + only_a, max(only_b, only_a)
    return min(1.0, 2 * sum(math.comb(m, i) for i in range(k, m + 1)) / 2**m)


# 60 examples: b gets 41 right, a 36; 8 only b gets right, 3 only a, 33 both, 16 neither.
A, B = pairs_of(33, 8, 3, 16)


def test_41_vs_36_of_60_exact_p_value_and_interval():
    assert (sum(A), sum(B), len(A)) == (36, 41, 60)
    p = exact_mcnemar(8, 3)
    assert p == 464 / 2048 == 0.2265625  # 2 * (C(11,8) + C(11,9) + C(11,10) + C(11,11)) / 2**11 = 2 * 232 / 2048
    result = paired(A, B, seed=0)
    assert result.n == 60 and result.diff == pytest.approx(5 / 60)
    assert result.p_value == p
    # the normal approximation of the mean difference: d is +1 (8), -1 (3), 0 (49)
    var = 11 / 60 - (5 / 60) ** 2
    half = Z95 * math.sqrt(var / 60)  # 0.1063: [-0.0229, +0.1896]
    assert half == pytest.approx(0.1063, abs=1e-4)
    assert abs(result.low - (5 / 60 - half)) < 0.025 and abs(result.high - (5 / 60 + half)) < 0.025
    assert result.low < 0 < result.diff < result.high  # not significant: the interval holds 0
    assert (result.low, result.high) == pytest.approx((-0.016667, 0.183333), abs=1e-5)  # BCa, seed 0
    assert not result.significantly_worse() and paired(B, A).significantly_worse() is False


def test_order_of_the_pairs_and_the_direction():
    order = list(range(60))
    random.Random(3).shuffle(order)
    shuffled = paired([A[i] for i in order], [B[i] for i in order])
    assert shuffled.p_value == paired(A, B).p_value and shuffled.diff == pytest.approx(5 / 60)
    reverse = paired(B, A)
    assert reverse.diff == pytest.approx(-5 / 60) and reverse.p_value == 0.2265625
    assert reverse.low == pytest.approx(-paired(A, B).high, abs=0.02)
    assert paired(A, B, seed=5) == paired(A, B, seed=5)


def test_a_significant_difference():
    strong, weak = pairs_of(30, 2, 18, 10)  # 20 discordant, 18 of them won by ``strong``: exact
    p = exact_mcnemar(18, 2)  # 2 * (C(20,18) + C(20,19) + C(20,20)) / 2**20 = 2 * 211 / 1048576
    assert p == 422 / 2**20 == pytest.approx(4.0245e-4, rel=1e-4)
    result = paired(strong, weak)
    assert result.p_value == p and result.diff == pytest.approx(-16 / 60) and result.high < 0
    assert result.significantly_worse() and not paired(weak, strong).significantly_worse()
    assert not result.significantly_worse(alpha=1e-4)


def test_beyond_twenty_discordant_pairs_a_seeded_monte_carlo_near_the_exact_figure():
    a, b = pairs_of(100, 20, 10, 70)  # 30 discordant: 2**30 patterns, so sampled
    exact = exact_mcnemar(20, 10)  # 0.0987
    assert exact == pytest.approx(0.09874, abs=1e-4)
    result = paired(a, b, seed=1)
    assert abs(result.p_value - exact) < 0.015  # 9999 samples: standard error 0.003
    assert paired(a, b, seed=1).p_value == result.p_value


def test_twenty_discordant_pairs_are_still_exact():
    a, b = pairs_of(10, 14, 6, 10)
    assert paired(a, b).p_value == exact_mcnemar(14, 6)  # 0.1153...


def test_non_binary_scores_by_enumerating_the_sign_patterns():
    # differences 0.5, -0.25, 1.0: observed sum 1.25; the 8 sums of +-0.5 +-0.25 +-1.0 are
    # +-1.75, +-1.25, +-0.75, +-0.25, and 4 of them reach |1.25|
    assert sign_flip_p_value([0.5, -0.25, 1.0]) == 4 / 8
    assert sign_flip_p_value([0.5, -0.25, 1.0, 0.0, 0.0]) == 4 / 8  # ties change nothing
    assert sign_flip_p_value([1.0]) == 1.0  # one pattern of two as extreme, both ways
    assert sign_flip_p_value([1.0, 1.0, 1.0]) == 2 / 8


def test_no_difference_and_no_examples():
    same = paired(A, A)
    assert (same.diff, same.low, same.high, same.p_value, same.n) == (0.0, 0.0, 0.0, 1.0, 60)
    empty = paired([], [])
    assert empty.n == 0 and empty.p_value == 1.0 and math.isnan(empty.diff)
    with pytest.raises(ConfigError, match=r"b_scores='3 scores' is not allowed: one per example of a_scores \(2\)"):
        paired([1.0, 0.0], [1.0, 0.0, 1.0])


def rows(scores, texts=None, split="test", shuffle=0):
    out = [{"split": split, "index": i, "inputs": {"text": (texts or [f"t{j}" for j in range(len(scores))])[i],
                                                     "n": i % 3}, "score": s}
           for i, s in enumerate(scores)]
    random.Random(shuffle).shuffle(out)
    return out


def test_align_pairs_by_inputs_not_by_index_or_completion_order():
    a_rows = rows(A, shuffle=1)
    b_rows = [{**r, "index": 59 - r["index"], "inputs": dict(reversed(list(r["inputs"].items())))}
              for r in rows(B, shuffle=2)]  # other index, other key order, other completion order
    pairs = align(a_rows, b_rows)
    assert pairs.matched == 60 and (pairs.n_a, pairs.n_b) == (60, 60)
    assert paired(pairs.a, pairs.b).p_value == 0.2265625 and sum(pairs.b) - sum(pairs.a) == 5
    with_dev = a_rows + rows([0.0] * 10, texts=[f"d{j}" for j in range(10)], split="dev")
    assert align(with_dev, b_rows).matched == 60  # other splits are left out


def test_align_repeated_inputs_pair_in_index_order():
    a_rows = [{"split": "test", "index": i, "inputs": {"q": "same"}, "score": s} for i, s in enumerate([1.0, 0.0])]
    b_rows = [{"split": "test", "index": i, "inputs": {"q": "same"}, "score": s} for i, s in enumerate([1.0, 1.0])]
    pairs = align(list(reversed(a_rows)), b_rows)
    assert (pairs.a, pairs.b) == ([1.0, 0.0], [1.0, 1.0])


def test_align_refuses_when_fewer_than_80_percent_match():
    a_rows = rows([1.0] * 10)
    b_rows = rows([1.0] * 10, texts=[f"t{j}" for j in range(8)] + ["x", "y"])
    assert align(a_rows, b_rows).matched == 8  # 80%: enough
    b_rows = rows([1.0] * 10, texts=[f"t{j}" for j in range(7)] + ["x", "y", "z"])
    with pytest.raises(CompareError) as err:
        align(a_rows, b_rows, labels=("production v2", "sentiment v3"))
    message = str(err.value)
    assert message == ("examples do not pair: 7 of 10 test examples of production v2 and of 10 of sentiment v3 "
                       "have the same inputs; at least 80% of each side must")
    with pytest.raises(CompareError, match=r"^b has no test examples in its raw outputs \(splits: dev\)$"):
        align(a_rows, rows([1.0], split="dev"))
    with pytest.raises(CompareError, match=r"row 0 has no 'inputs' and 'score'"):
        align(a_rows, [{"score": 1.0}])


def test_paired_metrics_from_rows_in_completion_order_or_from_aligned_numbers():
    names = ["baseline/diff", "baseline/diff_ci_low", "baseline/diff_ci_high", "baseline/p_value"]
    from_numbers = paired_metrics(A, B, "baseline")
    assert list(from_numbers) == names
    assert from_numbers["baseline/diff"] == pytest.approx(5 / 60) and from_numbers["baseline/p_value"] == 0.2265625
    a_rows, b_rows = rows(A, shuffle=4), rows(B, shuffle=5)
    for r in a_rows:
        r["split"] = "dev_baseline"  # the baseline's split name differs from the compiled program's
    from_rows = paired_metrics(a_rows, b_rows, "baseline")
    assert from_rows["baseline/p_value"] == 0.2265625 and from_rows["baseline/diff"] == pytest.approx(5 / 60)
