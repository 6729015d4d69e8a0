"""Bad input gives a clear one-line RegistryError (exit 2 from the CLI) and changes nothing."""

from __future__ import annotations

import pytest

from dspy_mlflow.errors import RegistryError
from tests.registry.conftest import job, registry_snapshot

pytestmark = pytest.mark.usefixtures("offline_lm")


@pytest.fixture
def two_models(store, model_name, examples):
    """NAME: v1 (baseline, production) and v2 (few-shot, its dev/score tag removed); OTHER: v1."""
    import mlflow

    from dspy_mlflow.registry import promote

    job(model_name, examples)
    promote(model_name, "1")
    job(model_name, examples, optimizer="labeled_few_shot", k=4)
    client = mlflow.MlflowClient(store, store)
    client.delete_model_version_tag(model_name, "2", "dev/score")  # v2 lacks dev/score as a tag...
    other = model_name + "_other"
    job(other, examples)
    return model_name, other


BAD_PROMOTIONS = [
    (["NOPE_missing_model", "1"], "no registered model named 'NOPE_missing_model'"),
    (["{name}", "7"], "registered model '{name}' has no version 7"),
    (["{name}", "models:/{other}/1"], "models:/{other}/1 is a version of '{other}', not of '{name}'"),
    (["{name}", "2", "--gate", "eval/latency_p50_ms"], "{name} v2 has no 'eval/latency_p50_ms'"),
    (["{name}", "banana"], "cannot read 'banana'"),
]


def test_promote_bad_input_is_one_line_and_changes_nothing(two_models, store, capsys):
    from dspy_mlflow.cli.promote import main as promote_main

    name, other = two_models
    before = registry_snapshot(store, name), registry_snapshot(store, other)
    for argv, message in BAD_PROMOTIONS:
        argv = [a.format(name=name, other=other) for a in argv]
        assert promote_main(["--tracking-uri", store, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.endswith("\n") and err.count("\n") == 1, err
        assert err.startswith("error: ") and message.format(name=name, other=other) in err, err
    assert (registry_snapshot(store, name), registry_snapshot(store, other)) == before


def test_gate_reads_the_run_metric_when_the_tag_is_missing(two_models, store):
    """v2 has no dev/score tag, but its source run has the metric: the gate uses it."""
    from dspy_mlflow.registry import promote

    name, _ = two_models
    result = promote(name, "2", gate="dev/score", tracking_uri=store)
    assert result.gate.startswith("dev/score 0.7 >= 0.5 (v1)") and not result.forced


def test_lineage_rollback_resolve_unknown(store, capsys):
    from dspy_mlflow.cli.lineage import main as lineage_main
    from dspy_mlflow.cli.rollback import main as rollback_main
    from dspy_mlflow.registry.register import resolve_parent

    assert lineage_main(["--tracking-uri", store, "no_such_model"]) == 2
    assert capsys.readouterr().err == "error: no registered model named 'no_such_model'\n"
    assert rollback_main(["--tracking-uri", store, "no_such_model"]) == 2
    assert capsys.readouterr().err == "error: no registered model named 'no_such_model'\n"
    with pytest.raises(RegistryError, match="no registered model named 'ghost'"):
        resolve_parent("models:/ghost@production", "ghost")


def test_resolve_parent_forms_and_errors(two_models, store):
    from dspy_mlflow.registry.register import resolve_parent

    name, other = two_models
    assert str(resolve_parent("2", name).version) == "2"
    assert str(resolve_parent(f"models:/{name}/1", name).version) == "1"
    assert str(resolve_parent(f"models:/{name}@production", name).version) == "1"
    assert str(resolve_parent(f"models:/{name}/Production", name).version) == "1"
    assert resolve_parent(f"models:/{other}/1", name).name == other  # a program may start from another model
    with pytest.raises(RegistryError, match="has no alias 'champion'"):
        resolve_parent(f"models:/{name}@champion", name)
    with pytest.raises(RegistryError, match="has no version in stage Staging"):
        resolve_parent(f"models:/{name}/Staging", name)
    with pytest.raises(RegistryError, match="has no version 9"):
        resolve_parent("9", name)


def test_register_with_unknown_parent_registers_nothing(store, model_name, examples):
    import mlflow

    job(model_name, examples)
    before = registry_snapshot(store, model_name)
    with pytest.raises(RegistryError, match="has no version 5"):
        job(model_name, examples, parent=f"models:/{model_name}/5")
    assert registry_snapshot(store, model_name) == before
    assert mlflow.MlflowClient(store, store).get_registered_model(model_name).name == model_name


def test_rollback_without_production(store, model_name, examples, capsys):
    from dspy_mlflow.cli.rollback import main as rollback_main

    job(model_name, examples)
    assert rollback_main(["--tracking-uri", store, model_name]) == 2
    assert f"registered model '{model_name}' has no production version" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_subprocess_reports_one_line(sqlite_uri, tmp_path):
    """Through the real entry point `python -m dspy_mlflow promote ...` (no traceback, exit 2)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.run(
        [sys.executable, "-m", "dspy_mlflow", "promote", "--tracking-uri", sqlite_uri, "no_such_model", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: no registered model named 'no_such_model'"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [["runs"], ["lineage", "sentiment"], ["promote", "sentiment", "1"],
                                     ["rollback", "sentiment"]])
def test_looking_at_a_store_that_is_not_there_creates_nothing(cli, tmp_path, command):
    missing = tmp_path / "typo.db"
    proc = cli([*command, "--tracking-uri", f"sqlite:///{missing}"], cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --tracking-uri='sqlite:///") and str(missing) in lines[0]
    assert "an existing MLflow store" in lines[0]
    assert not missing.exists() and not (tmp_path / "mlflow.db").exists()
