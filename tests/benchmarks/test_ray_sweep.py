"""Benchmark: an 8-job sweep whose model answers after 300 ms, on 2 Ray nodes
(``hydra/launcher=ray``) vs Hydra's basic launcher, side by side in one run, repeated.

    python -m pytest -m benchmark tests/benchmarks/test_ray_sweep.py -s

Both sweeps track to the same `mlflow server` on PostgreSQL, with the LM cache off and
``tracking.rerun=true`` (every job really runs) and one eval thread (each job waits on its
model, as with a rate-limited hosted one). Wall time is the driver's; CPU time is the
driver's and its children's plus every process of the Ray cluster (head and node). The ratio
printed is basic wall / Ray wall (min and median over the repeats); expected >= 1.7x. Each
node offers one CPU and each job reserves half (``hydra.launcher.num_cpus=0.5``, as for any
latency-bound job; ``BENCH_RAY_NUM_CPUS=1`` runs one job per node instead, measured at 1.6x,
below the asserted 1.7x: two jobs at a time cannot reach it once start-up is counted).
"""

from __future__ import annotations

import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.server, pytest.mark.slow]

_spec = importlib.util.spec_from_file_location(
    "_distributed_fixtures", Path(__file__).resolve().parents[1] / "distributed" / "conftest.py")
_fx = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _fx  # its dataclasses look their module up
_spec.loader.exec_module(_fx)  # type: ignore[union-attr]
postgres, mlflow_server, ray_cluster = _fx.postgres, _fx.mlflow_server, _fx.ray_cluster

REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
GRID = ["optimizer=none,labeled_few_shot", "strategy=predict,chain_of_thought", "project=sentiment,contact_extraction"]
COMMON = ["project.split.limit=30", "eval.progress=false", "eval.num_threads=1", "tracking.log_model=false",
          "registry.register=false", "tracking.autolog=false", "tracking.rerun=true", "cache.mode=off",
          "model.provider_options.latency_ms=300"]


def _cluster_cpu(markers: list[str]) -> float:
    procs = _fx._procs()
    roots = {pid for pid, (_, cmd) in procs.items() if any(m in cmd for m in markers)}
    tree, grew = set(roots), True
    while grew:
        kids = {pid for pid, (ppid, _) in procs.items() if ppid in tree} - tree
        grew, tree = bool(kids), tree | kids
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in tree:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError):
            pass
    return total


def _run(cmd: list[str], cwd: Path, env: dict, markers: list[str]) -> tuple[float, float]:
    cwd.mkdir(parents=True, exist_ok=True)
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_cluster = _cluster_cpu(markers)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before_children.ru_utime + after.ru_stime - before_children.ru_stime
           + _cluster_cpu(markers) - before_cluster)
    return wall, cpu


def test_ray_sweep_on_two_nodes_vs_the_basic_launcher(ray_cluster, mlflow_server, tmp_path):
    base = [sys.executable, "-m", "dspy_mlflow", "-m", *GRID, *COMMON, "tracking=server",
            f"tracking.uri={mlflow_server.uri}"]
    # each node offers 1 CPU; a job that mostly waits on its model reserves half of one, so two run per node
    ray_cmd = [*base, "hydra/launcher=ray", f"hydra.launcher.address={ray_cluster.address}",
               f"hydra.launcher.num_cpus={os.environ.get('BENCH_RAY_NUM_CPUS', '0.5')}"]
    results: dict[str, list[tuple[float, float]]] = {"basic": [], "ray": []}
    for i in range(REPEATS):  # interleaved: both see the same machine load
        results["basic"].append(_run(base, tmp_path / f"basic{i}", ray_cluster.env, ray_cluster.markers))
        results["ray"].append(_run(ray_cmd, tmp_path / f"ray{i}", ray_cluster.env, ray_cluster.markers))
    lines = []
    for name, rows in results.items():
        walls, cpus = [r[0] for r in rows], [r[1] for r in rows]
        lines.append(f"{name:>5}: wall min {min(walls):6.1f} s median {statistics.median(walls):6.1f} s | "
                     f"cpu min {min(cpus):6.1f} s median {statistics.median(cpus):6.1f} s")
    ratio_min = min(r[0] for r in results["basic"]) / min(r[0] for r in results["ray"])
    ratio_med = statistics.median(r[0] for r in results["basic"]) / statistics.median(r[0] for r in results["ray"])
    lines.append(f"ratio basic/ray wall: min {ratio_min:.2f}x, median {ratio_med:.2f}x (expected >= 1.7x)")
    print("\n" + "\n".join(lines))
    assert ratio_min >= 1.7, "\n".join(lines)


def test_a_200_job_sweep_on_ray_against_postgres(ray_cluster, mlflow_server, postgres, tmp_path):
    """200 jobs of the offline model (optimizer=none, the shipped defaults otherwise) on the Ray
    launcher against the MLflow server on PostgreSQL, after a 20-job sweep of the same kind: every
    job FINISHED, each metric logged once, what PostgreSQL's log says, and the added CPU per job
    (driver, Ray cluster and MLflow server: (CPU of 200 - CPU of 20) / 180)."""
    import re

    from mlflow import MlflowClient

    markers = [*ray_cluster.markers, str(mlflow_server.artifacts)]
    base = [sys.executable, "-m", "dspy_mlflow", "-m", "optimizer=none", "eval.progress=false", "tracking=server",
            f"tracking.uri={mlflow_server.uri}", "hydra/launcher=ray", f"hydra.launcher.address={ray_cluster.address}",
            "hydra.launcher.num_cpus=0.5"]
    errors_before = len(postgres.errors("ERROR:", database="mlflow"))
    _, cpu20 = _run([*base, "seed=range(1000,1020)"], tmp_path / "s20", ray_cluster.env, markers)
    wall, cpu200 = _run([*base, "seed=range(0,200)"], tmp_path / "s200", ray_cluster.env, markers)
    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name("dspy_mlflow")
    jobs = client.search_runs([exp.experiment_id], "params.seed LIKE '%' and attributes.status = 'FINISHED'",
                              max_results=1000)
    seeds = sorted(int(r.data.params["seed"]) for r in jobs if int(r.data.params["seed"]) < 200)
    twice = [(r.info.run_id, key) for r in jobs[:40] for key in ("test/score", "data/test", "cost/total_usd")
             if len(client.get_metric_history(r.info.run_id, key)) != 1]
    errors = postgres.errors("ERROR:", database="mlflow")[errors_before:]
    kinds: dict[str, int] = {}
    for e in errors:
        kind = m.group(1) if (m := re.search(r'constraint "(\w+)"', e)) else e.split("ERROR:", 1)[1][:80]
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"\n200-job sweep on Ray + MLflow server + PostgreSQL: wall {wall:.0f} s, CPU {cpu200:.0f} s; "
          f"20-job sweep CPU {cpu20:.0f} s; added CPU per job {(cpu200 - cpu20) / 180:.2f} s\n"
          f"  FINISHED jobs {len(seeds)} of 200; metrics logged twice (40 runs sampled): {len(twice)}\n"
          f"  PostgreSQL ERROR lines: {len(errors)} {kinds}")
    assert seeds == list(range(200)) and twice == []
