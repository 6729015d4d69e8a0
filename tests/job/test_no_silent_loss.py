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
from dspy_mlflow.lm.offline_server import serving

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


def test_an_unanswered_test_example_fails_the_run_unless_allowed(compose_cfg, workdir):
    """The provider fails every call but those of the compile and dev phases (which are cached first):
    the test examples cannot be answered, so the run ends FAILED, naming them; allowed, it FINISHES."""
    with serving() as clean:
        args = ["optimizer=none", "project.split.limit=40", f"cache.dir={workdir}/cache", "model.num_retries=0"]
        run(hosted(compose_cfg, workdir, clean, *args, "project.split.dev=0.75"), output_dir=workdir / "warm")
    with serving(options=OfflineOptions(fault_rate=1.0)) as broken:
        # same port is not guaranteed: point the cached answers' api_base at the broken server by cache key
        cfg = hosted(compose_cfg, workdir, broken, *args, "tracking.rerun=true")
        with pytest.raises(DspyMlflowError, match=r"every LM call failed|eval.max_error_rate=0.0 exceeded"):
            run(cfg, output_dir=workdir / "broken")
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    failed = client.search_runs([client.get_experiment_by_name("dspy_mlflow").experiment_id],
                                "attributes.status = 'FAILED'")
    assert failed and failed[0].data.tags["dspy_mlflow.error"]
