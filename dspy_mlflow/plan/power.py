"""A job's statistical power before it runs: the smallest test-score difference its test split can
see (``mde``, alpha 0.05, 80 % power, paired), and the test-split size a wanted difference needs.

The spread comes from the newest FINISHED run of the same identity (its test rows in
raw_outputs.jsonl) when there is one, else from the bound of a score in [0, 1]
(compare/power.py has the formula and its assumptions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dspy_mlflow.compare.power import mde, sd_from_scores
from dspy_mlflow.errors import CompareError
from dspy_mlflow.project.splits import split_examples
from dspy_mlflow.steps.prepare import Prepared, prepare
from dspy_mlflow.tracking.finished import find_finished
from dspy_mlflow.tracking.raw_outputs import load_raw_outputs


@dataclass
class JobPower:
    test_examples: int
    test_share: float  # of the project's examples (after project.split.limit)
    sd_diff: float
    source: str  # "history (1a2b3c4d)" or "bound"
    mde: float


def _history_scores(prepared: Prepared) -> tuple[list[float] | None, str]:
    """The test scores of the newest FINISHED run of the same identity (as plan's history forecast finds it)."""
    import mlflow

    conf = prepared.conf
    mlflow.set_tracking_uri(conf["tracking"]["uri"])
    experiment = mlflow.get_experiment_by_name(str(conf["tracking"]["experiment"]))
    if experiment is None:
        return None, ""
    found, _ = find_finished(experiment.experiment_id, prepared.hashes)
    if found is None:
        return None, ""
    try:
        rows = load_raw_outputs(mlflow.MlflowClient(), found.info.run_id)
    except CompareError:
        return None, ""
    return [float(r["score"]) for r in rows if r.get("split") == "test"], found.info.run_id[:8]


def job_power(conf: dict, prepared: Prepared | None = None) -> JobPower:
    prepared = prepared or prepare(json.loads(json.dumps(conf)))
    examples = prepared.project.load_examples()
    train, dev, test = split_examples(examples, conf["project"]["split"])
    scores, run = _history_scores(prepared)
    sd, source = sd_from_scores(scores)
    if source == "history":
        source = f"history ({run})"
    return JobPower(len(test), len(test) / (len(train) + len(dev) + len(test)), sd, source, mde(sd, len(test)))
