"""Registering a program registers each predictor's instruction in MLflow's Prompt Registry;
promote and rollback move the prompts' production alias with the model's; lineage shows them.
Real jobs in subprocesses, on a sqlite store and on an MLflow server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

FAST = ["project.split.limit=40", "eval.progress=false", "tracking.autolog=false", "tracking.log_model=true"]


@pytest.fixture(params=["sqlite", pytest.param("server", marks=[pytest.mark.server, pytest.mark.slow])])
def uri(request, workdir) -> str:
    return f"sqlite:///{workdir}/mlflow.db" if request.param == "sqlite" else request.getfixturevalue(
        "mlflow_server").url


def test_prompts_follow_the_versions_and_production(cli, workdir, uri):
    name = f"sentiment_{uuid.uuid4().hex[:8]}"
    common = [f"tracking.uri={uri}", f"registry.name={name}", *FAST]
    assert cli(["optimizer=none", *common], cwd=workdir).returncode == 0
    assert cli(["optimizer=labeled_few_shot", "optimizer.k=3", *common], cwd=workdir).returncode == 0
    c = MlflowClient(uri, registry_uri=uri)
    prompt = f"{name}.self"
    for version, demos in (("1", 0), ("2", 3)):
        mv = c.get_model_version(name, version)
        assert mv.tags["prompt.self"] == f"prompts:/{prompt}/{version}"
        pv = c.load_prompt(f"prompts:/{prompt}/{version}")
        assert pv.tags["model_version"] == f"{name}/{version}" and pv.tags["source_run"] == mv.tags["source_run"]
        path = c.download_artifacts(mv.tags["source_run"], "program/program.json", str(workdir / version))
        state = json.loads(Path(path).read_text())
        system, *turns, last = pv.template
        assert system == {"role": "system", "content": state["signature"]["instructions"]}
        assert len(turns) == 2 * demos and [t["role"] for t in turns[:2]] in ([], ["user", "assistant"])
        if demos:  # each demo as a user turn (the inputs) and an assistant turn (the outputs)
            assert turns[0]["content"] == f"text: {state['demos'][0]['text']}"
            assert turns[1]["content"] == f"sentiment: {state['demos'][0]['sentiment']}"
        assert last == {"role": "user", "content": "text: {{text}}"} and pv.variables == {"text"}
    for command, production in ((["promote", name, "1"], 1), (["promote", name, "2"], 2), (["rollback", name], 1)):
        proc = cli([*command, "--tracking-uri", uri], cwd=workdir)
        assert proc.returncode == 0, proc.stderr[-2000:]
        # another process moved the alias: this one asks past MLflow's alias cache (60 s by default)
        assert c.load_prompt(f"prompts:/{prompt}@production", cache_ttl_seconds=0).version == production
        assert str(c.get_model_version_by_alias(name, "production").version) == str(production)
    lineage = cli(["lineage", name, "--tracking-uri", uri], cwd=workdir).stdout
    assert f"prompts={prompt}/1 @production" in lineage and f"prompts={prompt}/2" in lineage, lineage
