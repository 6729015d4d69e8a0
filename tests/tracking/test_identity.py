"""Run identity: a job is skipped only when its config, data and code all match a FINISHED run;
a project given by file is named after it and found again from any directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from dspy_mlflow.job.run import run
from tests.conftest import write_fruit_project

pytestmark = pytest.mark.slow

ROWS = [["an apple a day", "fruit"], ["a red car", "other"], ["ripe banana", "fruit"], ["the bus stop", "other"],
        ["sweet mango", "fruit"], ["a long road", "other"], ["green pear", "fruit"], ["a fast bike", "other"]] * 3


def cfg_for(compose_cfg, workdir, module: str, *overrides):
    cfg = compose_cfg(f"tracking.uri=sqlite:///{workdir}/mlflow.db", "eval.progress=false", "tracking.autolog=false",
                      f"project.module={module}", "optimizer=labeled_few_shot",
                      *overrides)
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture
def project_file(workdir) -> Path:
    return write_fruit_project(workdir, "fruit_task", ROWS)


def test_skipped_only_when_config_data_and_code_match(compose_cfg, workdir, project_file, capsys):
    cfg = lambda: cfg_for(compose_cfg, workdir, str(project_file), "tracking.log_model=false")  # noqa: E731
    first = run(cfg(), output_dir=workdir / "a")
    assert first.status == "FINISHED"
    tags = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(first.run_id).data.tags
    assert {len(tags[f"dspy_mlflow.{p}_hash"]) for p in ("config", "data", "code")} == {16}

    again = run(cfg(), output_dir=workdir / "b")
    assert (again.status, again.run_id) == ("SKIPPED", first.run_id)
    assert "config, data and code identical to FINISHED run" in capsys.readouterr().out

    (workdir / "rows.json").write_text(json.dumps([["a red car", "fruit"], *ROWS[1:]]))  # one example edited
    edited_data = run(cfg(), output_dir=workdir / "c")
    assert edited_data.status == "FINISHED" and edited_data.run_id != first.run_id
    assert "its data changed" in capsys.readouterr().out

    project_file.write_text(project_file.read_text() + "\n# a comment is code too\n")
    edited_code = run(cfg(), output_dir=workdir / "d")
    assert edited_code.status == "FINISHED"
    assert "its code changed" in capsys.readouterr().out
    assert run(cfg(), output_dir=workdir / "e").status == "SKIPPED"


def test_project_given_by_file_is_named_after_it_and_loads_from_anywhere(compose_cfg, workdir, project_file,
                                                                         tmp_path_factory):
    import dspy_mlflow

    result = run(cfg_for(compose_cfg, workdir, "fruit_task.py"), output_dir=workdir / "out")  # relative to cwd
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    r = client.get_run(result.run_id)
    assert r.data.params["project"] == "fruit_task" and r.data.params["project.name"] == "fruit_task"
    assert r.data.params["project.module"] == str(project_file.resolve())
    assert client.get_registered_model("fruit_task").name == "fruit_task"
    assert not [m for m in client.search_registered_models() if m.name == "sentiment"]

    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.chdir(elsewhere)
    program = dspy_mlflow.load_program("models:/fruit_task/1", tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    assert program.predictors()[0].demos, "the compiled demos came back with the program"
