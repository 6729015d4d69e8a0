"""A job's test evaluation in MLflow's GenAI evaluation view, built from the recorded rows.

MLflow 3.17's UI ("Evaluation runs", mlflow/server/js) lists the runs of an
experiment that have no logged-model outputs, and a nested run only under a
listed parent. A job's run logs its program as a model, so it is a training run:
the evaluation goes into a run of its own, nested under the job's run (one row
per job in the runs table). It holds one root-span trace per example, made from its row (no LM
call, the program is not run again): the inputs, the prediction as outputs,
the gold as an expectation and the score as feedback. The view shows a run's
traces with their assessments and compares two runs trace by trace, matched by
their inputs.

``mlflow.genai.evaluate`` over the same rows builds the same traces at about 4x
the CPU (thread pools, a re-read of every trace, a search of the run's traces).

The traces are written in a batch (tracking/trace_batch.py), about 6 ms CPU each on a sqlite
store (tests/benchmarks/test_evaluation_view.py); in a sweep the jobs log none and the sweep logs the view for its best jobs once it ends
(``tracking.sweep_evaluation_views``); ``python -m dspy_mlflow view RUN_ID`` adds it to any run
later, from its raw_outputs.jsonl.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from dspy_mlflow import names
from dspy_mlflow.tracking.heartbeat import beat_value
from dspy_mlflow.tracking.raw_outputs import load_raw_outputs
from dspy_mlflow.tracking.trace_batch import RootSpan, write_traces

WRITER_BEAT_S = 600  # the view is written in seconds; a lost machine is found after 3 of these
DEFAULT_MAX_EXAMPLES = 100  # ~6 ms CPU each (tests/benchmarks/test_evaluation_view.py): ~0.6 s a job at most
SOURCE_ID = names.ASSESSMENT_SOURCE
EVALUATES_TAG = names.EVALUATES  # on the evaluation run: the job's run id
EVALUATION_RUN_TAG = names.EVALUATION_RUN  # on the job's run: its evaluation run id


class LoggedEvaluation(NamedTuple):
    run_id: str | None  # the evaluation run, None when there was nothing to log
    examples: int


def log_evaluation(rows: Iterable[Mapping[str, Any]], *, run_id: str, split: str = "test",
                   metric_name: str = "score", max_examples: int | None = DEFAULT_MAX_EXAMPLES) -> LoggedEvaluation:
    """The rows of ``split`` (the first ``max_examples`` by index; None: all) as the evaluation run
    of the job's run ``run_id``: one trace per example with inputs, prediction as outputs, gold as
    expectation and score as feedback named ``metric_name``. Needs no active run."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_TYPE, MLFLOW_RUN_TYPE_GENAI_EVALUATE

    chosen = sorted((r for r in rows if r.get("split", split) == split), key=lambda r: (r["index"], r.get("repeat", 0)))
    if max_examples is not None:  # the first examples, each with every repeated sample
        kept = sorted({r["index"] for r in chosen})[:max(0, max_examples)]
        chosen = [r for r in chosen if r["index"] in set(kept)]
    if not chosen:
        return LoggedEvaluation(None, 0)
    client = MlflowClient()
    job = client.get_run(run_id)
    # nested under its job (one row per job in the runs table); its writer's heartbeat: a kill -9
    # while it is written leaves a run the next job ends KILLED
    tags = {MLFLOW_RUN_TYPE: MLFLOW_RUN_TYPE_GENAI_EVALUATE, EVALUATES_TAG: run_id, MLFLOW_PARENT_RUN_ID: run_id,
            names.HEARTBEAT: beat_value(WRITER_BEAT_S)}
    evaluation = client.create_run(job.info.experiment_id, run_name=names.evaluation_run_name(job.info.run_name, split), tags=tags)
    eval_id, status = evaluation.info.run_id, "FAILED"
    try:
        # the view lists the newest trace first: the last index is the oldest, so index 0 heads the list
        now = evaluation.info.start_time
        trace_ids = write_traces(job.info.experiment_id, [
            _root_span(row, eval_id, split, metric_name, now + k) for k, row in enumerate(reversed(chosen))])
        for start in range(0, len(trace_ids), 100):  # MLflow links at most 100 traces a call
            client.link_traces_to_run(trace_ids[start:start + 100], run_id=eval_id)
        scores = [float(r.get("score") or 0.0) for r in chosen]
        client.log_batch(eval_id, metrics=[Metric(f"{metric_name}/mean", sum(scores) / len(scores), now, 0),
                                           Metric("examples", len(chosen), now, 0)])
        client.set_tag(run_id, EVALUATION_RUN_TAG, eval_id)
        status = "FINISHED"
    finally:
        client.set_terminated(eval_id, status)
    return LoggedEvaluation(eval_id, len(chosen))


def max_examples_of(tracking: Mapping[str, Any]) -> int | None:
    """``tracking.evaluation_max_examples`` (default 100; null: all)."""
    cap = tracking.get("evaluation_max_examples", DEFAULT_MAX_EXAMPLES)
    return None if cap is None else int(cap)


def log_test_evaluation(records: Iterable[Mapping[str, Any]], tracking: Mapping[str, Any], *,
                        run_id: str) -> LoggedEvaluation:
    """The job's call after its test evaluation: ``tracking.evaluation_view`` (default on) and
    ``tracking.evaluation_max_examples`` (default 100; null: all). A tracking store that refuses
    traces costs the view, not the job: one printed line, nothing logged."""
    from mlflow.exceptions import MlflowException

    if not tracking.get("evaluation_view", True):
        return LoggedEvaluation(None, 0)
    try:
        return log_evaluation(records, run_id=run_id, max_examples=max_examples_of(tracking))
    except MlflowException as exc:
        print(f"evaluation view not logged: {str(exc).splitlines()[0][:300]}")
        return LoggedEvaluation(None, 0)


def log_run_evaluation(client, run_id: str, *, max_examples: int | None = DEFAULT_MAX_EXAMPLES) -> LoggedEvaluation:
    """The view of a finished job's run, from its raw_outputs.jsonl artifact; nothing when it has one
    already (its tag names the evaluation run). CompareError when the run has no raw outputs."""

    existing = client.get_run(run_id).data.tags.get(EVALUATION_RUN_TAG)
    if existing:
        return LoggedEvaluation(existing, 0)
    return log_evaluation(load_raw_outputs(client, run_id), run_id=run_id, max_examples=max_examples)


def _root_span(row: Mapping[str, Any], eval_run_id: str, split: str, metric_name: str, time_ms: int) -> RootSpan:
    """One example as a trace: inputs, the prediction as outputs, the gold as an expectation and the
    score as feedback, in the evaluation run (its trace metadata), whatever run is active."""
    from mlflow.entities import AssessmentSource, AssessmentSourceType, Expectation, Feedback
    from mlflow.tracing.constant import AssessmentMetadataKey, TraceMetadataKey, TraceTagKey

    source = AssessmentSource(source_type=AssessmentSourceType.CODE, source_id=SOURCE_ID)
    metadata = {AssessmentMetadataKey.SOURCE_RUN_ID: eval_run_id}
    repeat = int(row.get("repeat") or 0)
    sample = f"{row['index']}" + (f"-{repeat}" if repeat else "")  # a repeated sample is a trace of its own
    assessments = [Feedback(name=metric_name, value=float(row.get("score") or 0.0), source=source,
                            rationale=_rationale(row), metadata=metadata)]
    if row.get("gold"):
        assessments.insert(0, Expectation(name="expected_response", value=row["gold"], source=source,
                                          metadata=metadata))
    return RootSpan(
        name=f"{split}[{row['index']}]" + (f" repeat {repeat}" if repeat else ""),
        inputs=dict(row.get("inputs") or {}), outputs=_outputs(row), time_ms=time_ms,
        attributes={names.SPAN_SPLIT: split, names.SPAN_INDEX: int(row["index"]), names.SPAN_REPEAT: repeat},
        metadata={TraceMetadataKey.SOURCE_RUN: eval_run_id},
        tags={TraceTagKey.EVAL_REQUEST_ID: f"{eval_run_id}-{sample}"}, assessments=assessments)


def _outputs(row: Mapping[str, Any]) -> dict[str, Any]:
    """The prediction's fields; a failed example shows its error instead."""
    prediction = row.get("prediction")
    if prediction is not None:
        return dict(prediction) if isinstance(prediction, Mapping) else {"prediction": prediction}
    return {"error": row.get("error"), "error_kind": row.get("error_kind")}


def _rationale(row: Mapping[str, Any]) -> str | None:
    if row.get("error"):
        return f"{row.get('error_kind') or 'error'}: {row['error']}"[:1000]
    return row.get("feedback") or None  # what a feedback metric said of the answer
