"""The leaderboard's interval columns and its paired test against the best job (runs written here, no LM)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dspy_mlflow import names
from dspy_mlflow.sweep.leaderboard import COLUMNS, build_leaderboard, format_board, log_leaderboard
from tests.compare.conftest import log_run, rows_of


@pytest.fixture
def store(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    return uri


def scores(correct: int, n: int = 60, offset: int = 0) -> list[float]:
    """``correct`` ones starting at example ``offset`` (wrapping), zeros elsewhere."""
    return [1.0 if (i - offset) % n < correct else 0.0 for i in range(n)]


def test_intervals_and_not_worse_than_best(store, tmp_path):
    best = log_run(rows_of(scores(48)), metrics={"test/score_ci_low": 0.7, "test/score_ci_high": 0.9,
                                                  "dev/score_ci_low": 0.6, "dev/score_ci_high": 0.8})
    close = log_run(rows_of(scores(45), seed=3))  # 3 fewer, all among the best's: p = 0.25
    worse = log_run(rows_of(scores(30), seed=4))  # 18 fewer: p = 2 / 2**18
    skipped = log_run(rows_of(scores(48), seed=5))
    no_raw = log_run(None, metrics={"test/score": 0.5})
    other = log_run(rows_of(scores(40), inputs=lambda i: {"text": f"other {i}"}))
    jobs = [{"job": "worse", "status": "FINISHED", "run_id": worse},
            {"job": "failed", "status": "FAILED", "run_id": None, "error": "boom"},
            {"job": "close", "status": "FINISHED", "run_id": close},
            {"job": "best", "status": "FINISHED", "run_id": best},
            {"job": "no_raw", "status": "FINISHED", "run_id": no_raw},
            {"job": "other", "status": "FINISHED", "run_id": other},
            {"job": "skipped", "status": "SKIPPED", "run_id": skipped}]
    board = build_leaderboard(store, jobs)

    assert list(board.columns) == COLUMNS
    assert COLUMNS[COLUMNS.index("cost/total_usd") + 1:COLUMNS.index("cost/total_usd") + 3] == [
        "cost/list_usd", "eval/cache_hits"]
    assert list(board["job"]) == ["best", "skipped", "close", "other", "worse", "no_raw", "failed"]  # the sort
    by_job = board.set_index("job")
    assert by_job.loc["best", "test/score_ci_low"] == 0.7 and by_job.loc["best", "dev/score_ci_high"] == 0.8
    assert math.isnan(by_job.loc["close", "test/score_ci_low"]) and board["test/score_ci_high"].dtype == float
    verdicts = {job: (None if pd.isna(v) else bool(v)) for job, v in by_job["not_worse_than_best"].items()}
    assert verdicts == {"best": True, "skipped": True, "close": True, "other": None, "worse": False,
                        "no_raw": None, "failed": None}

    # a skipped job is shown as such and links to the run it reused; the sweep's own jobs link to none
    assert by_job.loc["skipped", "reused_run"] == skipped and set(by_job.drop("skipped")["reused_run"]) == {""}
    text = format_board(board)
    assert text.splitlines()[2].split()[4:6] == ["reused", skipped[:8]] and "SKIPPED" not in text
    header, first = text.splitlines()[:2]
    assert header.split() == ["rank", "model", "optimizer", "strategy", "status", "test", "test_95ci", "not_worse",
                              "dev", "baseline", "cost_usd", "list_usd", "run"]
    assert first.split()[5:9] == ["0.8000", "[0.700,", "0.900]", "yes"]  # rounded for display only
    assert text.splitlines()[5].split()[5:8] == ["0.5000", "-", "no"]  # worse: no interval logged

    import mlflow

    mlflow.set_experiment("compare_tests")
    with mlflow.start_run() as parent:
        pass
    log_leaderboard(store, parent.info.run_id, board, tmp_path)
    assert mlflow.get_run(parent.info.run_id).data.tags[names.REUSED_RUNS] == skipped  # runs --sweep lists it from here
    back = pd.read_csv(tmp_path / "leaderboard.csv")
    assert back["test/score"].tolist()[:3] == pytest.approx([0.8, 0.8, 0.75])  # unrounded in the CSV
    assert back["not_worse_than_best"].tolist()[:3] == [True, True, True]
    assert back["not_worse_than_best"].isna().sum() == 3
