"""One job, in process, against a real sqlite MLflow store and the offline provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from dspy_mlflow.errors import BudgetExceeded
from dspy_mlflow.job.run import run
from dspy_mlflow.lm.offline.rules import parse_rules

METRICS = ["test/score", "dev/baseline_score", "dev/score", "eval/tokens_in", "eval/tokens_out",
           "compile/tokens_in", "compile/tokens_out", "eval/cost_usd", "compile/cost_usd", "cost/total_usd",
           "cost/usd_per_example", "eval/latency_p50_ms", "eval/latency_p95_ms", "eval/errors",
           "eval/cache_hits", "lm/calls", "compile/duration_s", "eval/duration_s"]


def job_cfg(compose_cfg, workdir, *overrides):
    cfg = compose_cfg(f"tracking.uri=sqlite:///{workdir}/mlflow.db", "eval.progress=false",
                      "tracking.autolog=false", "project.split.limit=60", *overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def artifacts(client, run_id, path=""):
    out = []
    for item in client.list_artifacts(run_id, path):
        out.extend(artifacts(client, run_id, item.path) if item.is_dir else [item.path])
    return out


def test_job_logs_the_design_contract(compose_cfg, workdir):
    cfg = job_cfg(compose_cfg, workdir, "optimizer=labeled_few_shot", "optimizer.k=16", "registry.register=false",
                  "project.split.limit=null")
    result = run(cfg, output_dir=workdir / "out")
    assert result.status == "FINISHED"
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    r = client.get_run(result.run_id)
    assert r.info.status == "FINISHED"
    p = r.data.params
    assert (p["model"], p["optimizer"], p["strategy"], p["project"]) == (
        "offline", "labeled_few_shot", "predict", "sentiment")
    assert p["model.temperature"] == "0.0" and p["optimizer.k"] == "16"
    assert set(METRICS) <= set(r.data.metrics), set(METRICS) - set(r.data.metrics)
    m = r.data.metrics
    assert 0.0 <= m["test/score"] <= 1.0
    # the offline model copies the nearest demo: demos must beat no demos
    assert m["dev/score"] > m["dev/baseline_score"]
    assert m["eval/tokens_in"] > 0 and m["lm/calls"] > 0
    assert m["cost/total_usd"] == pytest.approx(
        ((m["eval/tokens_in"] + m["compile/tokens_in"]) * 0.15
         + (m["eval/tokens_out"] + m["compile/tokens_out"]) * 0.60) / 1e6)
    tags = r.data.tags
    assert len(tags["dspy_mlflow.config_hash"]) == 16 and "dspy_mlflow.error" not in tags
    files = artifacts(client, result.run_id)
    assert {"config.yaml", "raw_outputs.jsonl", "raw_outputs_table.json", "program/program.json"} <= set(files)
    raw = (workdir / "out" / "raw_outputs.jsonl").read_text().splitlines()
    assert len(raw) == int(m["data/test"])
    first = json.loads(raw[0])
    assert {"inputs", "gold", "prediction", "score", "latency_ms", "tokens_in", "tokens_out", "cost_usd",
            "error"} <= set(first)
    assert m["cost/usd_per_example"] == pytest.approx(sum(json.loads(x)["cost_usd"] for x in raw) / len(raw))
    contexts = {d.tags[0].value for d in r.inputs.dataset_inputs}
    assert contexts == {"train", "dev", "test"}
    # the logged model carries the final metrics, each logged once (Model.log copied none again)
    (output,) = r.outputs.model_outputs
    model = client.get_logged_model(output.model_id)
    assert output.step == -1 and {x.key: x.value for x in model.metrics}["test/score"] == m["test/score"]
    assert len(client.get_metric_history(result.run_id, "data/test")) == 1
    assert len(client.get_metric_history(result.run_id, "test/score")) == 1
    (workdir / "dl").mkdir()
    local = client.download_artifacts(result.run_id, "program/program.json", str(workdir / "dl"))
    state = json.loads(Path(local).read_text())
    assert len(state["demos"]) == 16  # a Predict program: its state is flat
    models = mlflow.search_logged_models(experiment_ids=[r.info.experiment_id], output_format="list")
    assert [lm.name for lm in models] == ["program"] and models[0].source_run_id == result.run_id
    # the LM cache: beside the store by default, private, its place and mode params of the run
    assert p["cache.dir"] == str(workdir / "lm_cache") and p["cache.mode"] == "on"
    assert (workdir / "lm_cache").stat().st_mode & 0o777 == 0o700
    # every score with its 95% interval; the compiled program paired with the baseline on dev
    for split in ("test", "dev"):
        assert m[f"{split}/score_ci_low"] <= m[f"{split}/score"] <= m[f"{split}/score_ci_high"]
        assert m[f"{split}/score_ci_low"] < m[f"{split}/score_ci_high"]
    assert m["dev/vs_baseline/diff"] == pytest.approx(m["dev/score"] - m["dev/baseline_score"])
    assert m["dev/vs_baseline/diff_ci_low"] <= m["dev/vs_baseline/diff"] <= m["dev/vs_baseline/diff_ci_high"]
    assert 0.0 <= m["dev/vs_baseline/p_value"] <= 1.0
    # the test evaluation in MLflow's evaluation view: one trace per test example (up to the cap)
    evaluation = client.get_run(tags["dspy_mlflow.evaluation_run"])
    assert evaluation.data.tags["dspy_mlflow.evaluates"] == result.run_id
    assert evaluation.data.metrics["examples"] == min(100, int(m["data/test"]))
    assert evaluation.data.metrics["score/mean"] == pytest.approx(
        sum(json.loads(x)["score"] for x in raw[:100]) / min(100, len(raw)))
    traces = mlflow.search_traces(locations=[r.info.experiment_id], run_id=evaluation.info.run_id,
                                  return_type="list", max_results=200)
    assert len(traces) == evaluation.data.metrics["examples"]


def test_identical_job_is_skipped_then_rerun_hits_the_cache(compose_cfg, workdir):
    cfg = job_cfg(compose_cfg, workdir, "optimizer=none", "tracking.log_model=false", "model.cache=true")
    first = run(cfg, output_dir=workdir / "a")
    again = run(cfg, output_dir=workdir / "b")
    assert again.status == "SKIPPED" and again.run_id == first.run_id
    cfg["tracking"]["rerun"] = True
    rerun = run(cfg, output_dir=workdir / "c")
    assert rerun.status == "FINISHED" and rerun.run_id != first.run_id
    assert rerun.metrics["lm/calls"] == 0 and rerun.metrics["cost/total_usd"] == 0
    assert rerun.metrics["eval/cache_hits"] > 0
    assert rerun.metrics["test/score"] == first.metrics["test/score"]


def test_budget_stops_the_job_failed_and_keeps_partial_results(compose_cfg, workdir):
    base = job_cfg(compose_cfg, workdir, "optimizer=none", "tracking.log_model=false", "model.cache=false",
                   "eval.num_threads=1", "tracking.rerun=true")
    full = run(base, output_dir=workdir / "full")
    per_example = full.metrics["cost/usd_per_example"]
    n_dev, n_test = 15, int(full.metrics["eval/errors"] * 0 + 60 - 30 - 15)
    # dev is evaluated twice (baseline and after compile), then test: stop halfway through test
    base["budget"]["max_cost_usd"] = per_example * (2 * n_dev + n_test / 2)
    with pytest.raises(BudgetExceeded) as info:
        run(base, output_dir=workdir / "stopped")
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    r = client.get_run(info.value.run_id)
    assert r.info.status == "FAILED"
    assert "budget.max_cost_usd" in r.data.tags["dspy_mlflow.error"]
    assert r.data.metrics["cost/total_usd"] > base["budget"]["max_cost_usd"]
    kept = (workdir / "stopped" / "raw_outputs.jsonl").read_text().splitlines()
    assert 0 < len(kept) < n_test
    assert "raw_outputs.jsonl" in artifacts(client, r.info.run_id)


def test_failure_inside_a_job_ends_the_run_failed(compose_cfg, workdir):
    from dspy_mlflow.errors import DspyMlflowError

    cfg = job_cfg(compose_cfg, workdir, "model=gpt4o_mini", "optimizer=none")
    with pytest.raises(DspyMlflowError, match="OPENAI_API_KEY is not set") as info:
        run(cfg, output_dir=workdir / "out")
    r = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(info.value.run_id)
    assert r.info.status == "FAILED" and "OPENAI_API_KEY" in r.data.tags["dspy_mlflow.error"]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["none", "labeled_few_shot", "bootstrap_few_shot", "bootstrap_random_search",
                                       "mipro_v2", "copro", "simba", "gepa", "auto"])
def test_every_optimizer_runs_end_to_end(compose_cfg, workdir, optimizer):
    cfg = job_cfg(compose_cfg, workdir, f"optimizer={optimizer}", "tracking.log_model=false",
                  "project.split.limit=32")
    result = run(cfg, output_dir=workdir / "out")
    assert result.status == "FINISHED"
    assert 0.0 <= result.metrics["test/score"] <= 1.0
    tags = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(result.run_id).data.tags
    assert "dspy_mlflow.warning" not in tags, tags.get("dspy_mlflow.warning")  # each changed the program
    if optimizer == "auto":
        assert result.optimizer == "labeled_few_shot"  # 16 training examples


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["predict", "chain_of_thought", "best_of_n"])
@pytest.mark.parametrize("project", ["sentiment", "contact_extraction"])
def test_every_strategy_runs_end_to_end(compose_cfg, workdir, strategy, project):
    cfg = job_cfg(compose_cfg, workdir, f"strategy={strategy}", f"project={project}", "optimizer=labeled_few_shot",
                  "optimizer.k=8", "tracking.log_model=false", "project.split.limit=32")
    result = run(cfg, output_dir=workdir / "out")
    assert result.status == "FINISHED"
    assert result.metrics["eval/errors"] == 0
    assert result.metrics["dev/score"] > 0


def test_a_provider_that_answers_nothing_fails_the_job(compose_cfg, workdir):
    from dspy_mlflow.errors import ProviderError

    # a closed loopback port: every call fails at the provider, not at parsing
    cfg = job_cfg(compose_cfg, workdir, "model=openai_compatible", "model.api_base=http://127.0.0.1:9/v1",
                  "model.num_retries=0", "optimizer=none", "tracking.log_model=false")
    with pytest.raises(ProviderError, match="model=openai_compatible: every LM call failed") as info:
        run(cfg, output_dir=workdir / "out")
    r = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(info.value.run_id)
    assert r.info.status == "FAILED" and "every LM call failed" in r.data.tags["dspy_mlflow.error"]


def test_search_job_logs_the_chosen_hyperparameters(compose_cfg, workdir):
    cfg = job_cfg(compose_cfg, workdir, "optimizer=labeled_few_shot", "search=optuna", "search.n_trials=2",
                  "optimizer.search_space.k.high=6", "tracking.log_model=false")
    result = run(cfg, output_dir=workdir / "out")
    params = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(result.run_id).data.params
    assert params["optimizer.k"] == params["search.best.k"] and int(params["optimizer.k"]) <= 6


def test_registered_program_loads_with_its_lm_and_answers(compose_cfg, workdir):
    import dspy_mlflow

    cfg = job_cfg(compose_cfg, workdir, "optimizer=labeled_few_shot", "optimizer.k=8")
    result = run(cfg, output_dir=workdir / "out")
    assert result.model_version == "1"
    program = dspy_mlflow.load_program("models:/sentiment/1", tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    assert len(program.demos) == 8
    assert program.lm is not None and program.lm.model == "offline/nn"  # attached, not the global one
    assert program(text="Cold food, rude staff, never again.").sentiment in ("positive", "negative")

    # in a fresh process, loading does not import LiteLLM (a 2-3 s import): the offline provider
    # registers on the program's first call; its options are still checked at load
    script = ("import sys; from dspy_mlflow import load_program; "
              f"p = load_program('models:/sentiment/1', tracking_uri='sqlite:///{workdir}/mlflow.db'); "
              "assert 'litellm' not in sys.modules and p.lm is not None; "
              "print(p(text='Cold food, rude staff, never again.').sentiment); assert 'litellm' in sys.modules")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=workdir,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == program(text="Cold food, rude staff, never again.").sentiment


def test_a_loaded_offline_program_with_bad_provider_options_gets_no_lm():
    from dspy_mlflow.registry.load import _attach_lm

    class Program:
        lm = None

        def set_lm(self, lm):
            self.lm = lm

    bad, good = Program(), Program()
    _attach_lm(bad, {"name": "offline", "litellm_model": "offline/nn", "provider_options": {"latency_ms": -5}})
    _attach_lm(good, {"name": "offline", "litellm_model": "offline/nn", "provider_options": {"latency_ms": 0}})
    assert bad.lm is None and good.lm is not None and good.lm.provider_cfg is not None


@pytest.mark.parametrize("cap", [None, 2])
def test_trace_sampling_traces_the_chosen_share_of_examples(compose_cfg, workdir, cap):
    """At 30%, uncapped: every sampled example; capped at 2: the 2 lowest draws of each split, the
    same dev examples before (baseline) and after compiling."""
    from dspy_mlflow.project.splits import split_examples
    from dspy_mlflow.steps.trace_sampling import draw
    from projects.sentiment import load_examples

    cfg = job_cfg(compose_cfg, workdir, "optimizer=labeled_few_shot", "registry.register=false",
                  "tracking.log_model=false", "tracking.autolog=true", "tracking.trace_sampling=0.3",
                  f"tracking.max_traces_per_split={'null' if cap is None else cap}")
    result = run(cfg, output_dir=workdir / "out")
    assert result.status == "FINISHED"
    _, dev, test = split_examples(load_examples(), cfg["project"]["split"])

    def chosen_of(split):
        sampled = sorted((ex for ex in split if draw(ex) < 0.3), key=draw)
        return [ex.text for ex in (sampled if cap is None else sampled[:cap])]

    chosen = chosen_of(dev) * 2 + chosen_of(test)
    assert 0 < len(chosen) < 2 * len(dev) + len(test)
    if cap is not None:
        assert len(chosen) == 3 * cap
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    experiment_id = MlflowClient().get_run(result.run_id).info.experiment_id
    traces = mlflow.search_traces(locations=[experiment_id], run_id=result.run_id, return_type="list")
    traced = [next(s for s in t.data.spans if s.parent_id is None).inputs["text"] for t in traces]
    assert sorted(traced) == sorted(chosen)


TWO_JOBS = """
import gc, sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from tests.conftest import compose
from omegaconf import OmegaConf
from dspy_mlflow.job.run import run

writes = []
log_spans = SqlAlchemyStore.log_spans
SqlAlchemyStore.log_spans = lambda self, location, spans, *a, **k: (writes.append(len(spans)), log_spans(self, location, spans, *a, **k))[1]
results = []
for rerun in ("false", "true"):
    cfg = OmegaConf.to_container(compose(f"tracking.uri=sqlite:///{sys.argv[1]}/mlflow.db", "eval.progress=false",
        "project.split.limit=60", "optimizer=none", "registry.register=false", "tracking.log_model=false",
        "tracking.evaluation_view=false", "tracking.rerun=" + rerun), resolve=True)
    results.append(run(cfg, output_dir=sys.argv[1] + "/out"))
    print("JOB", results[-1].run_id, gc.get_freeze_count(), len(writes), sum(writes))
print("UNFROZEN", any(o is results[0] for o in gc.get_objects()))  # made after the one freeze
"""


def test_a_job_writes_its_traces_in_one_batch_and_freezes_the_library_heap_once(workdir):
    """Two jobs in one fresh process. MLflow's exporter writes spans 5 at a time by default (one
    store transaction each); the job raises the batch to 256, so its 3 traces' 12 spans (4 per
    Predict) are written together. The heap (MLflow, DSPy, LiteLLM: about 700,000 objects) is
    frozen when the first job has loaded them, and not again by the second (job/heap.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run([sys.executable, "-c", TWO_JOBS, str(workdir)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], env={**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (first, frozen, writes, spans), (_, frozen_after, writes_after, spans_after) = [
        (line.split()[1], *map(int, line.split()[2:])) for line in proc.stdout.splitlines() if line.startswith("JOB ")]
    assert spans == 12 and writes <= 2  # default batching: at least 3 transactions
    assert spans_after - spans == 12 and writes_after - writes <= 2
    assert frozen > 300_000 and frozen_after <= frozen and proc.stdout.splitlines()[-1] == "UNFROZEN True"
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    experiment_id = MlflowClient().get_run(first).info.experiment_id
    traces = mlflow.search_traces(locations=[experiment_id], run_id=first, return_type="list")
    assert sorted(len(t.data.spans) for t in traces) == [4, 4, 4]


def test_traced_examples_do_not_depend_on_the_split_order():
    import random

    import dspy

    from dspy_mlflow.steps.trace_sampling import traced_indices

    examples = [dspy.Example(text=f"example {i}").with_inputs("text") for i in range(500)]
    picked = {examples[i].text for i in traced_indices(examples, 0.05, 3)}
    shuffled = examples[:]
    random.Random(1).shuffle(shuffled)
    assert len(picked) == 3 and {shuffled[i].text for i in traced_indices(shuffled, 0.05, 3)} == picked
    assert len(traced_indices(examples, 0.05, None)) > 3  # uncapped: the whole 5%
    assert traced_indices(examples, 1.0, None) == set(range(500))
    assert traced_indices(examples, 0.0, None) == set() == traced_indices(examples, 1.0, 0)
    assert len(traced_indices(examples, 1.0, 4)) == 4


def test_gepa_writes_rules_the_offline_model_follows_and_its_candidates_rise(compose_cfg, workdir):
    """GEPA's reflection on the offline model reads the feedback of the sentiment metric and writes
    rules; its candidates' instructions change and their dev scores rise above the seed program's."""
    cfg = job_cfg(compose_cfg, workdir, "optimizer=gepa", "registry.register=false", "tracking.log_model=false",
                  "project.split.limit=null")
    result = run(cfg, output_dir=workdir / "out")
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    r = client.get_run(result.run_id)
    m = r.data.metrics
    assert result.status == "FINISHED" and m["compile/candidates_accepted"] >= 1
    assert "dspy_mlflow.warning" not in r.data.tags
    history = sorted(client.get_metric_history(result.run_id, "compile/candidate_score"), key=lambda h: h.step)
    assert history[0].step == 0 and max(h.value for h in history) > history[0].value
    assert len(client.get_metric_history(result.run_id, "compile/minibatch_score")) == m["compile/candidates_proposed"]
    candidates = json.loads(Path(client.download_artifacts(result.run_id, "compile/candidates.json", str(workdir)))
                            .read_text())
    seed, *later = [c["instructions"] for c in candidates]
    assert later and all(c != seed for c in later)
    assert all(parse_rules(text) for c in later for text in c.values())
    assert m["dev/score"] > m["dev/baseline_score"]


@pytest.mark.parametrize(("optimizer", "extra"), [
    ("bootstrap_random_search", ["optimizer.num_candidate_programs=3"]),
    ("mipro_v2", ["optimizer.compile.num_trials=3"]),
])
def test_optimizer_candidates_are_a_metric_series(compose_cfg, workdir, optimizer, extra):
    cfg = job_cfg(compose_cfg, workdir, f"optimizer={optimizer}", *extra, "registry.register=false",
                  "tracking.log_model=false")
    result = run(cfg, output_dir=workdir / "out")
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    history = client.get_metric_history(result.run_id, "compile/candidate_score")
    assert len(history) >= 3 and all(0.0 <= h.value <= 1.0 for h in history)
    assert [h.step for h in history] == sorted(h.step for h in history)
    assert result.metrics["compile/candidates"] == len(history)
    # no nested eval_N runs (MLflow's own autolog of compiles is off)
    nested = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                                f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert [r.data.tags.get("dspy_mlflow.evaluates") for r in nested] in ([], [result.run_id])  # its view only
