"""Benchmark: what `runs`, a sweep's leaderboard (`runs --sweep`), `lineage` and `gate` cost on a
store of 2,000 runs and 300 versions against the same commands on a store of 20 runs and 3 versions.

    python -m pytest -m benchmark tests/benchmarks/test_store_scale.py -s

Both stores start from the same real sweep (two jobs of the offline model, each registering a
version of `sentiment`, the first promoted); the rest is filled through MLflow's tracking API
with copies of those runs (their params, metrics and tags, a new config hash) and versions that
descend from one another. Each command runs in a fresh process, three times per store,
interleaved; CPU time (user+sys) min and median, and the ratio large/small of the medians.
Target: each ratio <= 2 (but `runs --limit 0`, which prints all 2,000 runs, shown for scale).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

REPEATS = 3
SIZES = {"small": (20, 3), "large": (2000, 300)}  # runs, versions of `sentiment`


def _cli(args: list[str], cwd: Path, env: dict) -> tuple[float, subprocess.CompletedProcess]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "dspy_mlflow", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, proc


def _fill(uri: str, runs: int, versions: int) -> None:
    """Copies of the sweep's job runs up to ``runs`` job runs, and versions up to ``versions``."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    mlflow.set_tracking_uri(uri)  # a version's models:/m-... source resolves through the current store
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("dspy_mlflow")
    jobs = [r for r in c.search_runs([exp.experiment_id], "params.model = 'offline'")]
    now = int(time.time() * 1000)
    copies = []
    for i in range(runs - len(jobs)):
        src = jobs[i % len(jobs)]
        tags = {k: v for k, v in src.data.tags.items() if not k.startswith("mlflow.")}
        tags.update({"dspy_mlflow.config_hash": f"{i:016x}", "dspy_mlflow.sweep_id": f"filler-{i // 12}"})
        run = c.create_run(exp.experiment_id, start_time=now + i, run_name=f"filler-{i}")
        c.log_batch(run.info.run_id,
                    metrics=[Metric(k, v, now + i, 0) for k, v in src.data.metrics.items()],
                    params=[Param(k, v) for k, v in src.data.params.items()],
                    tags=[RunTag(k, v) for k, v in tags.items()])
        c.set_terminated(run.info.run_id, "FINISHED", end_time=now + i + 1)
        copies.append(run.info.run_id)
    existing = c.search_model_versions("name = 'sentiment'")
    template = max(existing, key=lambda v: int(v.version))
    last = int(template.version)
    for i in range(versions - len(existing)):
        tags = {**template.tags, "parent": f"models:/sentiment/{last}", "semver": f"1.{i + 1}.0",
                "source_run": copies[i % len(copies)] if copies else template.run_id}
        mv = c.create_model_version("sentiment", template.source, run_id=tags["source_run"], tags=tags)
        last = int(mv.version)


def test_commands_on_a_store_of_2000_runs_within_2x_of_one_of_20(tmp_path):
    env = {**os.environ, "DSPY_CACHEDIR": str(tmp_path / "cache"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    base = tmp_path / "base"
    base.mkdir()
    cpu, proc = _cli(["-m", "optimizer=none,labeled_few_shot", "project.split.limit=40", "eval.progress=false"],
                     base, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep_id = next(line.split()[1].rstrip(":") for line in proc.stdout.splitlines() if line.startswith("sweep "))
    assert _cli(["promote", "sentiment", "1"], base, env)[1].returncode == 0
    dirs = {}
    for name, (runs, versions) in SIZES.items():
        d = tmp_path / name
        shutil.copytree(base, d)
        t0 = time.perf_counter()
        _fill(f"sqlite:///{d}/mlflow.db", runs, versions)
        print(f"\n{name}: {runs} runs, {versions} versions filled in {time.perf_counter() - t0:.0f} s", end="")
        dirs[name] = d
    commands = {"runs (the best 50)": ["runs"], "runs --sweep (the leaderboard)": ["runs", "--sweep", sweep_id],
                "lineage sentiment": ["lineage", "sentiment"], "gate sentiment 2": ["gate", "sentiment", "2"],
                "runs --limit 0 (every run; for scale)": ["runs", "--limit", "0"]}
    spent: dict[tuple[str, str], list[float]] = {}
    for _ in range(REPEATS):
        for label, args in commands.items():
            for name, d in dirs.items():
                cpu, proc = _cli(args, d, env)
                assert proc.returncode in (0, 1), (label, name, proc.stderr[-2000:])
                spent.setdefault((label, name), []).append(cpu)
    lines, ratios = [], {}
    for label in commands:
        small, large = spent[(label, "small")], spent[(label, "large")]
        ratios[label] = statistics.median(large) / statistics.median(small)
        lines.append(f"{label:38} small CPU s min {min(small):.2f} median {statistics.median(small):.2f} | "
                     f"large min {min(large):.2f} median {statistics.median(large):.2f} | "
                     f"ratio {ratios[label]:.2f}x (target <= 2)")
    print("\n" + "\n".join(lines))
    # every run listed grows with the store by its nature (MLflow reads each run whole): not asserted
    assert all(r <= 2.0 for label, r in ratios.items() if "for scale" not in label), "\n".join(lines)
