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


DISCOVER = """
import sys
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
names = [p.__module__ + "." + p.__name__ for p in Plugins.instance().discover(Launcher)]
assert "hydra_plugins.dspy_mlflow_ray_launcher.ray_launcher.RayLauncher" in names, names
from hydra import compose, initialize_config_dir
from dspy_mlflow.config.paths import conf_dir
from dspy_mlflow.config.schema import register_schemas
register_schemas()
with initialize_config_dir(str(conf_dir()), version_base="1.3"):
    cfg = compose("config", ["hydra/launcher=ray", "hydra.launcher.address=auto"], return_hydra_config=True)
assert cfg.hydra.launcher.address == "auto" and cfg.hydra.launcher.max_retries == 2
assert "ray" not in sys.modules, "composing hydra/launcher=ray imported Ray"
import hydra_plugins.dspy_mlflow_ray_launcher as plugin
print(plugin.__file__)
"""


def test_installed_wheel_ships_the_ray_launcher_and_hydra_finds_it(installed, tmp_path):
    assert not (installed / "hydra_plugins" / "__init__.py").exists()  # a namespace package, as Hydra's own
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(installed)
    proc = subprocess.run([sys.executable, "-c", DISCOVER], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith(str(installed))
