"""Opt-in: what the evaluation view costs (pytest -m benchmark tests/benchmarks/test_evaluation_view.py -s).

Side by side in one process, repeated: a job's test evaluation (the offline model through LiteLLM,
no cache, no latency: the cheapest an evaluation gets) and the evaluation view logged from its rows.
Process CPU (every thread), min and median: per logged example, and evaluation + view over
evaluation alone. The target: under 100 ms CPU per logged example.
"""

from __future__ import annotations

import statistics
import time

import mlflow
import pytest

from dspy_mlflow.tracking.evaluation import log_evaluation

pytestmark = pytest.mark.benchmark

N_TEST, REPEATS = 200, 3


def test_evaluation_view_cpu_per_example_and_ratio(tmp_path):
    import dspy

    from dspy_mlflow.lm import ledger as ledger_mod
    from dspy_mlflow.lm import offline
    from dspy_mlflow.lm.pricing import Price
    from dspy_mlflow.steps.evaluate import evaluate
    from projects.sentiment import load_examples, make_program, metric

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_experiment("bench")
    offline.setup({"provider_options": {"latency_ms": 0}})
    dspy.configure(lm=dspy.LM("offline/nn", cache=False, engine="litellm", temperature=0.0, max_tokens=1024))
    base = load_examples()
    test = [dspy.Example(text=f"{base[i % len(base)].text} (#{i})", sentiment=base[i % len(base)].sentiment)
            .with_inputs("text") for i in range(N_TEST)]
    program = make_program({"name": "predict"})
    ledger = ledger_mod.Ledger(price=Price(0.15, 0.60, "config"))
    ledger_mod.activate(ledger)

    def cpu(work):
        t0 = time.process_time()
        out = work()
        return time.process_time() - t0, out

    evaluate(program, test[:10], metric, ledger=ledger, split="test", progress=False)  # warm both paths
    with mlflow.start_run() as warm:
        log_evaluation([_row(i) for i in range(5)], run_id=warm.info.run_id)

    eval_cpu, view_cpu = [], []
    for _ in range(REPEATS):
        with mlflow.start_run() as run:
            spent, result = cpu(lambda: evaluate(program, test, metric, ledger=ledger, split="test",
                                                 num_threads=4, progress=False, keep_records=True))
            eval_cpu.append(spent)
            spent, logged = cpu(lambda: log_evaluation(result.records, run_id=run.info.run_id,  # noqa: B023
                                                       max_examples=None))
            assert logged.examples == N_TEST
            view_cpu.append(spent)
    per_example_ms = [v / N_TEST * 1000 for v in view_cpu]
    ratio = [(e + v) / e for e, v in zip(eval_cpu, view_cpu, strict=True)]
    print(f"\nevaluation view, {N_TEST} examples x {REPEATS}:"
          f"\n  evaluation CPU s     min {min(eval_cpu):.2f}  median {statistics.median(eval_cpu):.2f}"
          f"\n  view CPU s           min {min(view_cpu):.2f}  median {statistics.median(view_cpu):.2f}"
          f"\n  view CPU ms/example  min {min(per_example_ms):.1f}  median {statistics.median(per_example_ms):.1f}"
          f"\n  (eval + view) / eval min {min(ratio):.2f}x  median {statistics.median(ratio):.2f}x")
    assert statistics.median(per_example_ms) < 100


def _row(i: int) -> dict:
    return {"split": "test", "index": i, "inputs": {"text": f"t{i}"}, "gold": {"sentiment": "positive"},
            "prediction": {"sentiment": "positive"}, "score": 1.0}
