"""The command line as a user types it, in subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import NOT_EVALUATIONS

pytestmark = pytest.mark.slow

FAST = ["project.split.limit=40", "eval.progress=false", "tracking.log_model=false"]


def runs_in(workdir: Path):
    db = workdir / "mlflow.db"
    if not db.exists():
        return []
    client = MlflowClient(f"sqlite:///{db}")
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id], NOT_EVALUATIONS)]


def test_single_job_runs_and_prints_a_summary(cli, workdir):
    proc = cli(["optimizer=labeled_few_shot", *FAST], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FINISHED: optimizer=labeled_few_shot" in proc.stdout and "cost $" in proc.stdout
    summary = next(x for x in proc.stdout.splitlines() if "FINISHED: optimizer=" in x)
    assert re.search(r"\(list \$\d+\.\d{4}\) \| lm calls [1-9]\d*, cache hits \d+, retries 0 \| test errors 0", summary), summary
    (run,) = runs_in(workdir)
    assert run.info.status == "FINISHED" and run.info.run_name == "offline-labeled_few_shot-predict"
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.temperature=9", "model.temperature=9.0 is not allowed: a number in [0.0, 2.0]"),
        ("+optimizer.max_bootstraped_demos=2", "optimizer.max_bootstraped_demos=2 is not allowed: BootstrapFewShot accepts"),
        ("project.module=no_such_pkg.task", "no_such_pkg.task"),
        ("optimizer.max_bootstrapped_demos=-3", "optimizer.max_bootstrapped_demos=-3 is not allowed: a whole number >= 0"),
        ("tracking.uri=http://127.0.0.1:9", "tracking.uri='http://127.0.0.1:9' is not allowed: a reachable MLflow"),
        ("program.init_from=garbage", "program.init_from='garbage' is not allowed: a registered program version"),
        # Hydra's own composition errors, made one line too
        ("model=gpt5", "model='gpt5' is not allowed: one of claude_sonnet, gpt4o, gpt4o_mini, mlx_7b"),
        ("eval.num_thread=4", "eval.num_thread='4' is not allowed: eval has no key 'num_thread'; its keys are num_threads"),
        ("eval.num_threads=abc", "eval.num_threads='abc' is not allowed: Value 'abc' of type 'str' could not be converted"),
        ("experiment=nope", "experiment='nope' is not allowed: one of contacts_quick, sentiment_sweep"),
    ],
)
def test_bad_input_is_one_line_nonzero_and_creates_no_run(cli, workdir, override, expected):
    proc = cli([override, *FAST], cwd=workdir)
    assert proc.returncode != 0
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert runs_in(workdir) == []


def test_help_lists_groups_and_subcommands(cli, workdir):
    (workdir / "conf" / "model").mkdir(parents=True)
    (workdir / "conf" / "model" / "my_local.yaml").write_text("# My own server.\nname: my_local\n")
    proc = cli(["--help"], cwd=workdir)
    assert proc.returncode == 0
    for word in ("model:", "optimizer:", "strategy:", "promote", "lineage", "serve-offline", "--cfg job"):
        assert word in proc.stdout
    lines = proc.stdout.splitlines()
    assert any(line.split()[:2] == ["*", "offline"] for line in lines)  # the default is marked
    (mine,) = [line for line in lines if "my_local" in line]
    assert "My own server" in mine and "(./conf)" in mine


def test_help_with_overrides_shows_hydras_composed_config(cli, workdir):
    proc = cli(["--help", "model=gpt4o"], cwd=workdir)
    assert proc.returncode == 0 and "litellm_model: openai/gpt-4o" in proc.stdout, proc.stderr[-2000:]


def test_a_user_conf_folder_adds_a_model(cli, workdir):
    (workdir / "conf" / "model").mkdir(parents=True)
    (workdir / "conf" / "model" / "offline_pricey.yaml").write_text(
        "name: offline_pricey\nlitellm_model: offline/pricey\npricing: {input_per_1m: 100.0, output_per_1m: 100.0}\n")
    proc = cli(["model=offline_pricey", "optimizer=none", *FAST], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = runs_in(workdir)
    m = run.data.metrics
    assert run.data.params["model"] == "offline_pricey"
    assert m["cost/total_usd"] == pytest.approx(
        (m["eval/tokens_in"] + m["eval/tokens_out"] + m["compile/tokens_in"] + m["compile/tokens_out"]) * 100 / 1e6)


def test_model_fallback_is_used_and_recorded(cli, workdir):
    proc = cli(["model=mlx_7b", "model.fallback=offline", "optimizer=none", *FAST], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = runs_in(workdir)
    assert run.data.tags["dspy_mlflow.fallback_from"] == "mlx_7b"
    assert run.data.tags["dspy_mlflow.fallback_to"] == "offline"
    assert run.data.params["model.effective"] == "offline"


def test_missing_local_weights_fail_the_run_with_the_download_command(cli, workdir):
    proc = cli(["model=mlx_7b", "optimizer=none", *FAST], cwd=workdir)
    assert proc.returncode != 0
    (run,) = runs_in(workdir)
    assert run.info.status == "FAILED"
    error = run.data.tags["dspy_mlflow.error"]
    assert "mlx-community/" in error and "download" in error


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_job_ends_killed_with_partial_outputs(workdir, sig):
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dspy_mlflow", "optimizer=none", "eval.num_threads=1", "eval.progress=false",
         "model.provider_options.latency_ms=300", "cache.mode=off", "project.split.limit=80",
         "hydra.run.dir=out"], cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a process started with SIGINT ignored keeps it ignored (Python installs no Ctrl-C handler
        # then): the job must see the SIGINT a terminal would send, whatever the test runner ignores
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    raw = workdir / "out" / "raw_outputs.jsonl"
    deadline = time.monotonic() + 120
    while not (raw.exists() and raw.read_text().count("\n") >= 2):  # inside the test evaluation
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, (proc.returncode, out[-1500:], err[-3000:])
    (run,) = runs_in(workdir)
    assert f"run {run.info.run_id} ended KILLED" in err
    assert run.info.status == "KILLED"
    done = len(raw.read_text().splitlines())
    assert done >= 2
    how = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM"}[sig]
    assert run.data.tags["dspy_mlflow.error"].startswith(
        f"interrupted by {how} during the test evaluation: "), run.data.tags["dspy_mlflow.error"]
    assert "examples answered" in run.data.tags["dspy_mlflow.error"]
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    assert "raw_outputs.jsonl" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_optimizer_progress_goes_to_stderr_and_stdout_keeps_the_summary(cli, workdir):
    proc = cli(["optimizer=bootstrap_random_search", "optimizer.num_candidate_programs=2", *FAST], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Average Metric" in proc.stderr  # DSPy's own progress bar, on stderr
    out = [line for line in proc.stdout.splitlines() if line.strip()]
    assert out[0].startswith("compiling with bootstrap_random_search") and "FINISHED" in out[-1]
    assert "Average Metric" not in proc.stdout and "Going to sample" not in proc.stdout


def test_sixteen_threads_with_every_example_traced_write_the_sqlite_store_cleanly(cli, workdir):
    proc = cli(["optimizer=labeled_few_shot", "eval.num_threads=16", "tracking.max_traces_per_split=null",
                "project.split.limit=120", "registry.register=false", "tracking.log_model=false",
                "eval.progress=false"], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "database is locked" not in proc.stderr and "Traceback" not in proc.stderr
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    (run,) = runs_in(workdir)
    traces = client.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id, max_results=500)
    assert len(traces) == 120 - 60 + 30, "every dev (twice) and test example was traced"


def test_the_summary_of_a_cached_run_shows_its_cache_hits_and_list_cost():
    from dspy_mlflow.cli.app import _summary
    from dspy_mlflow.job.result import JobResult

    cached = JobResult("r1", "FINISHED", {"test/score": 0.8, "eval/cache_hits": 120, "compile/cache_hits": 64,
                                          "cost/list_usd": 0.0247, "eval/errors": 2, "lm/retries": 3},
                       optimizer="bootstrap_few_shot")
    line = _summary(cached)
    assert "tokens in/out 0/0 cost $0.0000 (list $0.0247)" in line
    assert "lm calls 0, cache hits 184, retries 3 | test errors 2" in line


def test_subcommands_tab_complete_beside_hydras_overrides(workdir):
    def complete(line: str) -> list[str]:
        env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
        proc = subprocess.run([sys.executable, "-m", "dspy_mlflow", "-sc", "query=bash"], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout.split()

    assert complete("dspy-mlflow pro") == ["promote", "program.", "project.", "project="]
    everything = complete("dspy-mlflow ")
    assert {"promote", "rollback", "lineage", "runs", "plan", "gate", "model=", "optimizer="} <= set(everything)
    assert complete("dspy-mlflow opti") == ["optimizer.", "optimizer="]  # no subcommand starts so
    assert complete("dspy-mlflow lineage ") == []  # a subcommand's own arguments: no overrides offered


def test_build_mlx_tiny_says_what_it_built(workdir):
    proc = subprocess.run([sys.executable, "-m", "dspy_mlflow", "build-mlx-tiny", str(workdir / "tiny")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"built: {workdir / 'tiny'}" and (workdir / "tiny" / "config.json").is_file()
