"""Nothing lost: provider faults of every kind are retried (and retried again at the end of the
split), a hung provider costs one timeout per try, and a job that cannot answer FAILS, loudly.

The offline model is served over HTTP on loopback and reached as a hosted model."""

from __future__ import annotations

import json
import time

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from dspy_mlflow.errors import DspyMlflowError
from dspy_mlflow.job.run import run
from dspy_mlflow.lm.offline import OfflineOptions
from dspy_mlflow.lm.offline.server import serving
from tests.conftest import NOT_EVALUATIONS, write_fruit_project

pytestmark = [pytest.mark.slow, pytest.mark.server]

KINDS = ("rate_limit", "server_error", "bad_gateway", "unavailable", "hang", "reset", "no_usage", "garbled")


def hosted(compose_cfg, workdir, base_url, *overrides):
    cfg = compose_cfg("model=openai_compatible", f"model.api_base={base_url}", "model.litellm_model=openai/offline",
                      f"tracking.uri=sqlite:///{workdir}/mlflow.db", "eval.progress=false", "tracking.autolog=false",
                      "tracking.log_model=false", "registry.register=false", "project.split.limit=60", *overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def test_twenty_percent_faults_of_every_kind_lose_nothing(compose_cfg, workdir):
    args = ["optimizer=bootstrap_few_shot", "model.num_retries=5", "model.timeout_s=2"]
    with serving() as clean:
        baseline = run(hosted(compose_cfg, workdir, clean, *args, f"cache.dir={workdir}/cache_a"),
                       output_dir=workdir / "clean")
    faults = dict.fromkeys(KINDS, 0.2 / len(KINDS))
    with serving(options=OfflineOptions(faults=faults, retry_after_s=0.2, hang_s=30, seed=7)) as faulty:
        result = run(hosted(compose_cfg, workdir, faulty, *args, f"cache.dir={workdir}/cache_b"),
                     output_dir=workdir / "faulty")
    m = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(result.run_id).data.metrics
    rows = [json.loads(x) for x in (workdir / "faulty" / "raw_outputs.jsonl").read_text().splitlines()]
    assert result.status == "FINISHED"
    assert sorted(r["index"] for r in rows) == list(range(15)), "every test example has its row"
    assert m["eval/errors"] == 0 and m["lm/retries"] > 0 and m["lm/usage_estimated"] > 0
    assert m["test/score"] == baseline.metrics["test/score"]
    assert m["dev/score"] == baseline.metrics["dev/score"]


def test_an_example_that_fails_is_tried_again_at_the_end_of_its_split(compose_cfg, workdir):
    """No retries inside a call: a 500 on an example's first attempt leaves it for the end of the
    split, where its second attempt (a fresh, seeded draw) answers it. Fault draws depend only on
    (seed, prompt, attempt), so the counts are the same on every run."""
    with serving(options=OfflineOptions(faults={"server_error": 0.4}, seed=3)) as flaky:
        cfg = hosted(compose_cfg, workdir, flaky, "optimizer=none", "model.num_retries=0", "eval.max_error_rate=1.0",
                     "eval.num_threads=4")
        result = run(cfg, output_dir=workdir / "out")
    m = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(result.run_id).data.metrics
    rows = [json.loads(x) for x in (workdir / "out" / "raw_outputs.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(int(m["data/test"]))), "one row per test example"
    failed = [r for r in rows if r["error"]]
    assert m["eval/retried_examples"] > 0, m
    assert m["eval/errors"] == len(failed) < m["eval/retried_examples"], "the end-of-split try answered some"
    assert result.status == "FINISHED"


def test_a_hung_provider_costs_one_timeout_per_try(compose_cfg, workdir):
    """Every answer hangs for 30 s; with model.timeout_s=1 and no retries each call gives up after ~1 s."""
    with serving(options=OfflineOptions(faults={"hang": 1.0}, hang_s=30)) as hung:
        cfg = hosted(compose_cfg, workdir, hung, "optimizer=none", "model.num_retries=0", "model.timeout_s=1",
                     "project.split.limit=16", "eval.num_threads=4")
        t0 = time.monotonic()
        with pytest.raises(DspyMlflowError, match="every LM call failed"):
            run(cfg, output_dir=workdir / "out")
        elapsed = time.monotonic() - t0
    # 4 dev examples on 4 threads: one round of 1 s timeouts, not 30 s hangs
    assert elapsed < 15, elapsed


def test_a_bad_example_fails_only_itself_and_the_run_says_so(compose_cfg, workdir):
    """One test example holds a lone surrogate (no provider can receive it): its row names the error,
    the others are answered, and the run FAILS unless eval.max_error_rate allows one loss."""
    import random

    rows = [[f"ripe fruit number {i}", "fruit"] if i % 2 else [f"a red car number {i}", "other"] for i in range(24)]
    order = list(range(24))
    random.Random(0).shuffle(order)  # the split's own shuffle (project.split.seed=0): 12 train, 6 dev, 6 test
    bad = order[18]
    rows[bad][0] = "broken \ud83d text"
    write_fruit_project(workdir, "bad_task", rows)
    args = [f"tracking.uri=sqlite:///{workdir}/mlflow.db", f"project.module={workdir}/bad_task.py",
            "optimizer=labeled_few_shot", "eval.progress=false", "tracking.autolog=false", "tracking.log_model=false"]
    with pytest.raises(DspyMlflowError, match=r"eval.max_error_rate=0.0 exceeded: 1 of 6 test examples"):
        run(OmegaConf.to_container(compose_cfg(*args), resolve=True), output_dir=workdir / "strict")
    written = [json.loads(x) for x in (workdir / "strict" / "raw_outputs.jsonl").read_text().splitlines()]
    assert len(written) == 6 and [r["error_kind"] for r in written].count("program") == 1
    (broken,) = [r for r in written if r["error"]]
    assert broken["inputs"]["text"] == "broken \ud83d text" and "lone surrogate" in broken["error"]

    allowed = run(OmegaConf.to_container(compose_cfg(*args, "eval.max_error_rate=0.2"), resolve=True),
                  output_dir=workdir / "allowed")
    assert allowed.status == "FINISHED" and allowed.metrics["eval/errors"] == 1


def test_a_provider_that_always_fails_fails_its_job_and_the_sweep_goes_on(cli, workdir):
    proc = cli(["-m", "model.provider_options.fault_rate=0.0,1.0", "model.num_retries=0", "optimizer=none",
                "cache.mode=off", "project.split.limit=20", "eval.progress=false", "tracking.log_model=false"],
               cwd=workdir)
    assert proc.returncode == 1, proc.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("dspy_mlflow").experiment_id], NOT_EVALUATIONS)
    jobs = {r.data.params["model.provider_options.fault_rate"]: r for r in runs if "model" in r.data.params}
    assert jobs["0.0"].info.status == "FINISHED" and jobs["1.0"].info.status == "FAILED"
    assert "every LM call failed" in jobs["1.0"].data.tags["dspy_mlflow.error"]
    assert "FAILED job" in proc.stderr and "every LM call failed" in proc.stderr
