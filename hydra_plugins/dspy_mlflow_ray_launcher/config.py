"""The launcher's options, stored as ``hydra/launcher=ray`` (composing them never imports Ray)."""
# no `from __future__ import annotations`: Hydra scans this module outside sys.modules, where
# dataclasses cannot resolve string annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional  # noqa: UP035 (OmegaConf structured configs)

from hydra.core.config_store import ConfigStore


@dataclass
class RayLauncherConf:
    _target_: str = "hydra_plugins.dspy_mlflow_ray_launcher.ray_launcher.RayLauncher"
    # local: start Ray in this process | auto: the cluster this machine belongs to |
    # ray://host:10001 (Ray Client) | host:port (the head's GCS, from `ray start --head`)
    address: str = "local"
    num_cpus: float = 1  # CPUs each job reserves on a worker
    max_retries: int = 2  # reruns of a job whose worker process or node was lost
    # passed to ray.init: env_vars, working_dir, py_modules, pip (Ray's runtime_env)
    runtime_env: Optional[Dict[str, Any]] = None  # noqa: UP006, UP007, UP045


ConfigStore.instance().store(group="hydra/launcher", name="ray", node=RayLauncherConf, provider="dspy_mlflow")
