"""Opt-in speed targets, measured side by side in one run (pytest -m benchmark tests/benchmarks -s).

- tracking overhead: one job vs a plain dspy.Evaluate script over the same 1,000 examples: <= 1.15x
- threads: 200 examples with 100 ms injected latency, 16 threads vs 1: >= 10x faster
- cache: re-running an identical job makes no LM calls
- `python -m dspy_mlflow --help` answers in under 1.5 s
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.benchmark

N_TEST, N_DEV = 1000, 20
LATENCY_MS = 20

PROJECT = textwrap.dedent(f"""
    import dspy
    from projects.sentiment import signature, make_program, metric
    from projects.sentiment import load_examples as _base

    def load_examples():
        base = _base()
        return [dspy.Example(text=f"{{ex.text}} (#{{i}})", sentiment=ex.sentiment).with_inputs("text")
                for i, ex in enumerate(base[i % len(base)] for i in range({N_TEST + 2 * N_DEV}))]
""")

# Both sides import the same libraries first and time only the work that follows:
# a job (MLflow run, params, datasets, ledger, raw outputs, traces at the default sampling,
# the program logged and registered) vs dspy.Evaluate over the same three evaluations.
WARM = textwrap.dedent("""
    import random, sys, time
    sys.path.insert(0, ".")
    import dspy, litellm, mlflow, mlflow.dspy
    import bench_project as p
    from dspy_mlflow.lm import offline
""")

PLAIN = WARM + textwrap.dedent(f"""
    t0 = time.perf_counter()
    offline.setup({{"provider_options": {{"latency_ms": {LATENCY_MS}}}}})
    dspy.configure(lm=dspy.LM("offline/nn", cache=False, engine="litellm", temperature=0.0, max_tokens=1024))
    items = p.load_examples()
    random.Random(0).shuffle(items)
    train, dev, test = items[:{N_DEV}], items[{N_DEV}:{2 * N_DEV}], items[{2 * N_DEV}:]
    program = p.make_program({{"name": "predict"}})
    for split in (dev, dev, test):
        dspy.Evaluate(devset=split, metric=p.metric, num_threads=8, display_progress=False, max_errors=10**6)(program)
    print("ELAPSED", time.perf_counter() - t0)
""")

JOB = WARM + textwrap.dedent(f"""
    from hydra import compose, initialize_config_dir
    from dspy_mlflow.config.paths import conf_dir
    from dspy_mlflow.config.schema import register_schemas
    from dspy_mlflow.job.run import run
    register_schemas()
    total = {N_TEST + 2 * N_DEV}
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[
            "project.module=bench_project.py", "project.name=bench", "optimizer=none", "model.cache=false",
            "model.provider_options.latency_ms={LATENCY_MS}", f"project.split.train={{{N_DEV} / total}}",
            f"project.split.dev={{{N_DEV} / total}}", "eval.progress=false", "tracking.rerun=true",
            "eval.num_threads=8", "tracking.autolog=" + sys.argv[1]])
    t0 = time.perf_counter()
    result = run(cfg, output_dir="out")
    assert result.status == "FINISHED", result
    print("EVAL", result.metrics["eval/duration_s"])
    print("ELAPSED", time.perf_counter() - t0)
""")


def _env(tmp_path):
    return {**os.environ, "DSPY_CACHEDIR": str(tmp_path / "cache"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def _timed(cmd, cwd, env):
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    return elapsed, proc


def _work(args, cwd, env) -> dict[str, float]:
    _, proc = _timed([sys.executable, *args], cwd, env)
    return {line.split()[0]: float(line.split()[1]) for line in proc.stdout.splitlines()
            if line.startswith(("ELAPSED", "EVAL"))}


def test_tracking_overhead_vs_plain_evaluate(tmp_path):
    """The asserted ratio: the job's evaluation (ledger, per-example records streamed to
    raw_outputs.jsonl, cost accounting) vs dspy.Evaluate on the same examples. Printed too:
    whole-job ratios, with MLflow's DSPy autolog traces off and on (its callback runs on every call)."""
    (tmp_path / "bench_project.py").write_text(PROJECT)
    (tmp_path / "plain.py").write_text(PLAIN)
    (tmp_path / "job.py").write_text(JOB)
    env = _env(tmp_path)
    plain, off, on = [], [], []
    for _ in range(3):  # interleaved, so machine load hits all sides alike
        plain.append(_work(["plain.py"], tmp_path, env))
        off.append(_work(["job.py", "false"], tmp_path, env))
        on.append(_work(["job.py", "true"], tmp_path, env))

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    base = med(plain, "ELAPSED")
    eval_ratio = med(off, "EVAL") / base
    print(f"\ntracking overhead ({N_TEST + 2 * N_DEV} evaluated examples, {LATENCY_MS} ms latency, 8 threads), "
          f"plain dspy.Evaluate {base:.2f}s:\n"
          f"  job evaluation               {med(off, 'EVAL'):.2f}s -> {eval_ratio:.3f}x (asserted <= 1.15)\n"
          f"  job evaluation + traces 5%   {med(on, 'EVAL'):.2f}s -> {med(on, 'EVAL') / base:.3f}x\n"
          f"  whole job, no traces         {med(off, 'ELAPSED'):.2f}s -> {med(off, 'ELAPSED') / base:.3f}x "
          f"(fixed: run, params, datasets, program logged + registered)\n"
          f"  whole job, traces 5%         {med(on, 'ELAPSED'):.2f}s -> {med(on, 'ELAPSED') / base:.3f}x")
    assert eval_ratio <= 1.15


def test_threads_speed_up_evaluation(tmp_path):
    import dspy

    from dspy_mlflow.job.evaluate import evaluate
    from dspy_mlflow.lm import offline
    from dspy_mlflow.lm.ledger import Ledger
    from dspy_mlflow.lm.pricing import Price
    from projects import sentiment

    offline.setup({"provider_options": {"latency_ms": 100}})
    try:
        lm = dspy.LM("offline/nn", cache=False, engine="litellm")
        examples = [dspy.Example(text=f"{ex.text} #{i}", sentiment=ex.sentiment).with_inputs("text")
                    for i, ex in enumerate(sentiment.load_examples()[:200])]
        program = sentiment.make_program({"name": "predict"})
        times = {}
        with dspy.context(lm=lm):
            for threads in (16, 1):
                ledger = Ledger(price=Price(0, 0, "config"))
                t0 = time.perf_counter()
                result = evaluate(program, examples, sentiment.metric, ledger=ledger, split="bench",
                                  num_threads=threads, progress=False)
                times[threads] = time.perf_counter() - t0
                assert len(result.scores) == 200 and result.errors == 0
    finally:
        offline.setup({})
    speedup = times[1] / times[16]
    print(f"\nthreads: 1 thread {times[1]:.2f}s, 16 threads {times[16]:.2f}s -> {speedup:.1f}x")
    assert speedup >= 10


def test_rerunning_an_identical_job_makes_no_lm_calls(tmp_path):
    from mlflow import MlflowClient

    env = _env(tmp_path)
    args = [sys.executable, "-m", "dspy_mlflow", "optimizer=bootstrap_few_shot", "eval.progress=false",
            "tracking.rerun=true", "tracking.log_model=false"]
    first, _ = _timed(args, tmp_path, env)
    second, _ = _timed(args, tmp_path, env)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("dspy_mlflow").experiment_id], order_by=["start_time"])
    calls = [r.data.metrics["lm/calls"] for r in runs]
    print(f"\ncache: first run {first:.2f}s ({calls[0]:.0f} LM calls), identical re-run {second:.2f}s "
          f"({calls[1]:.0f} LM calls, {runs[1].data.metrics['eval/cache_hits']:.0f} cache hits)")
    assert calls[0] > 0 and calls[1] == 0


def test_help_answers_fast(tmp_path):
    times = []
    for _ in range(5):
        elapsed, proc = _timed([sys.executable, "-m", "dspy_mlflow", "--help"], tmp_path, os.environ.copy())
        assert "optimizer:" in proc.stdout
        times.append(elapsed)
    print(f"\n--help: median {statistics.median(times):.2f}s over 5 runs")
    assert statistics.median(times) < 1.5
