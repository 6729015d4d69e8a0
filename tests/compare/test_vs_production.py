"""compare.to=production: a job's test rows are paired with the production version's."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dspy_mlflow.job.run import run

pytestmark = pytest.mark.slow


def test_a_job_compares_itself_with_production(compose_cfg, workdir):
    from dspy_mlflow.registry import promote

    def cfg(*extra):
        return OmegaConf.to_container(compose_cfg(
            f"tracking.uri=sqlite:///{workdir}/mlflow.db", "eval.progress=false", "tracking.autolog=false",
            "project.split.limit=80", "compare.to=production", *extra), resolve=True)

    first = run(cfg("optimizer=none"), output_dir=workdir / "a")
    assert not any(k.startswith("test/vs_production") for k in first.metrics), "no production yet"
    promote("sentiment", first.model_version, tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    second = run(cfg("optimizer=labeled_few_shot", "optimizer.k=8"), output_dir=workdir / "b")
    m = second.metrics
    assert m["test/vs_production/diff"] == pytest.approx(m["test/score"] - first.metrics["test/score"])
    assert m["test/vs_production/diff_ci_low"] <= m["test/vs_production/diff"] <= m["test/vs_production/diff_ci_high"]
    assert 0.0 <= m["test/vs_production/p_value"] <= 1.0
