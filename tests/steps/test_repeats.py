"""``eval.repeats=N``: each test example answered N times with distinct rollout ids. A real job on the
offline model (which samples at temperature > 0, seeded by the request), its identical rerun, and the
statistics that resample examples, not samples."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from dspy_mlflow.compare.intervals import by_example, interval_metrics, score_interval, within_example_sd
from dspy_mlflow.compare.paired import align
from dspy_mlflow.tracking.identity import config_hash
from tests.conftest import NOT_EVALUATIONS

pytestmark = pytest.mark.slow
ARGS = ["optimizer=labeled_few_shot", "optimizer.k=8", "eval.repeats=3", "model.temperature=0.7",
        "project.split.limit=60", "eval.progress=false", "registry.register=false", "tracking.log_model=false"]


def test_three_samples_per_example_distinct_answers_and_a_rerun_without_calls(cli, workdir):
    first = cli(ARGS, cwd=workdir)
    assert first.returncode == 0, first.stderr[-2000:]
    again = cli([*ARGS, "tracking.rerun=true"], cwd=workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("dspy_mlflow").experiment_id], NOT_EVALUATIONS,
                              order_by=["attributes.start_time ASC"])
    run, rerun = runs
    m = run.data.metrics
    path = client.download_artifacts(run.info.run_id, "raw_outputs.jsonl", str(workdir))
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    samples = defaultdict(dict)
    for row in rows:
        samples[row["index"]][row["repeat"]] = row
    assert len(samples) == m["data/test"] == 15 and all(sorted(s) == [0, 1, 2] for s in samples.values())
    answers = [{json.dumps(r["prediction"]) for r in s.values()} for s in samples.values()]
    assert sum(len(a) > 1 for a in answers) >= 3  # temperature 0.7: the samples disagree on several examples
    assert m["test/repeats"] == 3
    assert m["test/score"] == pytest.approx(statistics.mean(r["score"] for r in rows))
    sds = [statistics.stdev([r["score"] for r in s.values()]) for s in samples.values()]
    assert m["test/score_within_sd"] == pytest.approx(statistics.mean(sds)) and m["test/score_within_sd"] > 0
    # the interval resamples the 15 examples (their mean scores), not the 45 samples
    means = [statistics.mean(r["score"] for r in s.values()) for s in samples.values()]
    assert (m["test/score_ci_low"], m["test/score_ci_high"]) == pytest.approx(score_interval(means, seed=0))
    # an identical rerun: every sample from the cache, the same answers
    assert rerun.data.metrics["lm/calls"] == 0 and rerun.data.metrics["eval/cache_hits"] > 0
    assert rerun.data.metrics["test/score"] == m["test/score"]
    # the evaluation view holds every sample
    (view,) = client.search_runs([run.info.experiment_id], f"tags.`dspy_mlflow.evaluates` = '{run.info.run_id}'")
    assert view.data.metrics["examples"] == 45


def rows_of(scores_by_example, repeats):
    return [{"split": "test", "index": i, "repeat": r, "inputs": {"text": f"t{i}"}, "score": s[r]}
            for i, s in enumerate(scores_by_example) for r in range(repeats)]


def test_repeated_samples_count_as_one_example_in_intervals_and_pairing():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 2, size=(40, 3)).astype(float).tolist()
    rows = rows_of(scores, 3)
    collapsed = by_example(rows)
    assert len(collapsed) == 40 and collapsed[0]["score"] == pytest.approx(sum(scores[0]) / 3)
    assert interval_metrics(rows, "test") == pytest.approx(
        interval_metrics([sum(s) / 3 for s in scores], "test"))
    single = rows_of([[s[0]] for s in scores], 1)
    pairs = align(single, rows)  # a run of one sample against one of three: 40 pairs, not 40 vs 120
    assert pairs.matched == 40 and pairs.b[0] == pytest.approx(sum(scores[0]) / 3)
    assert within_example_sd(single) == 0.0


def test_one_repeat_keeps_the_identity_of_runs_made_before_repeats_existed():
    before = {"model": {"name": "offline"}, "eval": {"num_threads": 8, "max_error_rate": 0.0}}
    assert config_hash({**before, "eval": {**before["eval"], "repeats": 1}}) == config_hash(before)
    assert config_hash({**before, "eval": {**before["eval"], "repeats": 3}}) != config_hash(before)
