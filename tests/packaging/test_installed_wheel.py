"""The built wheel works from any directory: configs ship inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel, built by pip and unpacked into a target folder of its own."""
    root = tmp_path_factory.mktemp("wheel")
    # no build isolation: the build backend (hatchling, in the dev extra) is not fetched again
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(root / "dist"), str(REPO)], check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = (root / "dist").glob("dspy_mlflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dspy_mlflow/conf/config.yaml" in names and "projects/sentiment/data.jsonl" in names
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    return target


def test_installed_package_runs_a_job_from_another_directory(installed, tmp_path):
    # PYTHONPATH holds only the installed copy: the repository is not importable from tmp_path
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(installed)
    where = subprocess.run([sys.executable, "-c", "import dspy_mlflow; print(dspy_mlflow.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(installed))
    proc = subprocess.run(
        [sys.executable, "-m", "dspy_mlflow", "optimizer=none", "project.split.limit=40", "eval.progress=false",
         "tracking.log_model=false"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FINISHED" in proc.stdout and (tmp_path / "mlflow.db").exists()
