"""Register → lineage over three generations → promote → gate → force → rollback → load, on a
sqlite store and on an `mlflow server` on loopback."""

from __future__ import annotations

import warnings

import pytest

from dspy_mlflow.errors import RegistryError
from tests.registry.conftest import job, score

pytestmark = pytest.mark.usefixtures("offline_lm")


def test_three_generations_promote_gate_force_rollback_and_load(store, model_name, examples, capsys):
    import dspy
    import mlflow

    from dspy_mlflow.cli.lineage import main as lineage_main
    from dspy_mlflow.cli.promote import main as promote_main
    from dspy_mlflow.cli.rollback import main as rollback_main
    from dspy_mlflow.registry import load_program
    from dspy_mlflow.registry.lineage import lineage
    from dspy_mlflow.registry.register import resolve_parent

    # generation 1: the baseline, a root
    v1, _, s1 = job(model_name, examples)
    assert str(v1.version) == "1" and "parent" not in v1.tags
    assert v1.tags["semver"] == "1.0.0" and v1.tags["optimizer"] == "none" and v1.tags["model"] == "offline"
    assert v1.tags["config_hash"] == "cfgnone0" and v1.tags["source_run"] == v1.run_id
    assert float(v1.tags["test/score"]) == pytest.approx(s1)
    assert "root program" in v1.description and "test/score" in v1.description

    # generation 2: optimized from the baseline
    v2, _, s2 = job(model_name, examples, optimizer="labeled_few_shot", k=4, parent=f"models:/{model_name}/1")
    assert v2.tags["parent"] == f"models:/{model_name}/1" and v2.tags["semver"] == "1.1.0"
    assert s2 > s1, "few-shot demos must help the nearest-neighbour offline model"

    assert promote_main(["--tracking-uri", store, model_name, "2"]) == 0
    assert f"{model_name} v2 is now production" in capsys.readouterr().out

    # generation 3: re-optimized, starting from the production program
    parent = resolve_parent(f"models:/{model_name}@production", model_name)
    assert str(parent.version) == "2"
    start = load_program(f"models:/{model_name}@production")
    assert isinstance(start, dspy.Module) and len(start.predictors()[0].demos) == 4
    v3, _, s3 = job(model_name, examples, optimizer="labeled_few_shot", k=64, program=start,
                    parent=f"models:/{model_name}/{parent.version}")
    assert v3.tags["parent"] == f"models:/{model_name}/2" and v3.tags["semver"] == "1.2.0"

    nodes = lineage(model_name)
    assert nodes["1"].children == ["2"] and nodes["2"].children == ["3"] and nodes["3"].children == []
    assert nodes["1"].parent is None and nodes["3"].parent_version == "2"
    assert nodes["2"].aliases == ["production"] and nodes["2"].stage == "Production"

    capsys.readouterr()
    assert lineage_main(["--tracking-uri", store, model_name]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"{model_name}: 3 version(s), production: v2")
    assert lines[1].startswith("v1  1.0.0  optimizer=none") and lines[1].endswith("(root)")
    assert lines[2].startswith("└── v2  1.1.0  optimizer=labeled_few_shot") and "@production" in lines[2]
    assert "stage=Production" in lines[2] and f"test/score={float(v2.tags['test/score']):.6g}" in lines[2]
    assert lines[3].startswith("    └── v3  1.2.0")

    # the gate lets a better-or-equal version through and records it
    assert promote_main(["--tracking-uri", store, model_name, "3", "--gate", "test/score"]) == 0
    client = mlflow.MlflowClient(store, store)
    got = client.get_model_version(model_name, "3")
    assert got.tags["replaced_version"] == "2" and got.tags["promotion_forced"] == "false"
    assert got.tags["promoted_by"] and got.tags["promoted_at"].startswith("20")
    assert got.tags["promotion_gate"].startswith(f"test/score {float(v3.tags['test/score']):.6g} >=")
    assert client.get_model_version(model_name, "2").current_stage == "Archived"
    capsys.readouterr()

    # the gate refuses the worse baseline, naming both values, and changes nothing
    assert s1 < s3
    assert promote_main(["--tracking-uri", store, model_name, "1", "--gate", "test/score"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: gate test/score")
    assert f"{s1:.6g}" in err and f"{float(v3.tags['test/score']):.6g}" in err
    assert str(client.get_model_version_by_alias(model_name, "production").version) == "3"

    # --force overrides and is recorded
    assert promote_main(["--tracking-uri", store, model_name, "1", "--gate", "test/score", "--force"]) == 0
    forced = client.get_model_version(model_name, "1")
    assert forced.tags["promotion_forced"] == "true" and forced.tags["replaced_version"] == "3"
    assert forced.current_stage == "Production"
    assert "(forced)" in capsys.readouterr().out

    # rollback returns production to the previously promoted version, twice
    assert rollback_main(["--tracking-uri", store, model_name]) == 0
    assert str(client.get_model_version_by_alias(model_name, "production").version) == "3"
    assert client.get_model_version(model_name, "3").current_stage == "Production"
    assert client.get_model_version(model_name, "1").current_stage == "Archived"
    assert rollback_main(["--tracking-uri", store, model_name]) == 0
    assert str(client.get_model_version_by_alias(model_name, "production").version) == "2"
    capsys.readouterr()

    # both URIs load the production program (v2: 4 demos), rebuilt from code + JSON, and it runs
    for uri in (f"models:/{model_name}@production", f"models:/{model_name}/Production"):
        program = load_program(uri)
        assert len(program.predictors()[0].demos) == 4
        assert score(program, examples["test"]) == pytest.approx(s2)

    # rolling back past the first promotion is refused
    assert rollback_main(["--tracking-uri", store, model_name]) == 2
    assert "nothing to roll back" in capsys.readouterr().err


def test_semver_patch_and_major(store, model_name, examples):
    v1, _, _ = job(model_name, examples)
    v2, _, _ = job(model_name, examples, strategy="chain_of_thought")  # same signature, no optimizer
    v3, _, _ = job(model_name, examples, signature_hash="changed0000")
    v4, _, _ = job(model_name, examples, optimizer="labeled_few_shot", k=2, signature_hash="changed0000")
    assert [v.tags["semver"] for v in (v1, v2, v3, v4)] == ["1.0.0", "1.0.1", "2.0.0", "2.1.0"]
    assert "major: the DSPy signature changed" in v3.description
    assert v2.tags["strategy"] == "chain_of_thought"


def test_semver_counts_a_version_another_job_has_not_tagged_yet(sqlite_store, model_name, examples):
    """Parallel jobs: v2 exists (created with its tags) but its job has not written its semver yet."""
    from mlflow import MlflowClient

    v1, _, _ = job(model_name, examples)
    c = MlflowClient()
    c.create_model_version(model_name, source=v1.source, run_id=v1.run_id,
                           tags={"signature_hash": v1.tags["signature_hash"], "optimizer": "labeled_few_shot"})
    v3, _, _ = job(model_name, examples, optimizer="labeled_few_shot", k=2)
    assert str(v3.version) == "3" and v3.tags["semver"] == "1.2.0"
    # a deleted version does not make the next semver repeat an existing one
    c.delete_model_version(model_name, "2")
    v4, _, _ = job(model_name, examples, optimizer="labeled_few_shot", k=3)
    assert v4.tags["semver"] == "1.3.0"


def test_promote_hides_stage_deprecation_but_keeps_other_warnings(sqlite_store, model_name, examples):
    from dspy_mlflow.registry import promote

    job(model_name, examples)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = promote(model_name, "1")
        warnings.warn("a real warning", UserWarning, stacklevel=1)
    messages = [str(w.message) for w in caught]
    assert result.version == "1" and result.replaced is None
    assert not any("stage" in m.lower() and "deprecated" in m.lower() for m in messages), messages
    assert "a real warning" in messages
    # promoting the production version again is a no-op
    assert promote(model_name, "1").noop


def test_load_program_refuses_pickle_unless_allowed(sqlite_store, model_name, examples):
    from dspy_mlflow.registry import load_program, promote

    v1, _, s1 = job(model_name, examples, optimizer="labeled_few_shot", k=4, pickle_model=True, state=False)
    promote(model_name, "1")
    with pytest.raises(RegistryError, match=r"allow_pickle=True"):
        load_program(f"models:/{model_name}@production")
    import mlflow

    program = load_program(f"models:/{model_name}/Production", allow_pickle=True)
    assert len(program.predictors()[0].demos) == 4
    assert mlflow.get_active_model_id() is None  # the loaded model does not capture later logging
    assert score(program, examples["test"]) == pytest.approx(s1)
