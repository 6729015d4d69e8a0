"""The package's layers hold: ``lint-imports`` keeps every contract in pyproject.toml, and no room
hides an arrow in a function (the source is measured the way the contract cannot: function-level
imports included)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "dspy_mlflow"
ROOMS = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
# the lazy boundaries: the command line loads Hydra's app only for a job, a job loads MLflow only when it runs,
# Hydra's sweep callback (instantiated for every run) loads the sweep's parent run only for a multirun
ALLOWED_FUNCTION_IMPORTS = {("dspy_mlflow.cli.main", "dspy_mlflow.cli"), ("dspy_mlflow.job.run", "dspy_mlflow.job"),
                            ("dspy_mlflow.sweep.callback", "dspy_mlflow.sweep.parent")}


def _imports(path: Path):
    """(imported module, inside a function?) for every package-internal import outside TYPE_CHECKING."""
    def walk(node, in_function, in_type_checking):
        for child in ast.iter_child_nodes(node):
            checking = in_type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.level == 0 and (child.module or "").startswith("dspy_mlflow"):
                if not checking:
                    yield child.module, in_function
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("dspy_mlflow") and not checking:
                        yield alias.name, in_function
            yield from walk(child, inside, checking)

    yield from walk(ast.parse(path.read_text()), False, False)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_lint_imports_keeps_every_contract():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in out.stdout


def test_no_package_import_hides_in_a_function_and_no_module_passes_400_lines():
    hidden, long = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        for target, in_function in _imports(path):
            if in_function and (module, target) not in ALLOWED_FUNCTION_IMPORTS:
                hidden.append(f"{module} -> {target}")
        lines = len(path.read_text().splitlines())
        if lines > 400:
            long.append(f"{module}: {lines} lines")
    assert not hidden, hidden
    assert not long, long


def test_every_tag_name_is_spelled_in_names_only():
    spelled = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    node.value.startswith("dspy_mlflow.") and " " not in node.value and ":" not in node.value and \
                    node.value.split(".")[1] not in ROOMS:  # a module path, not a tag
                spelled.setdefault(node.value, set()).add(_module(path))
    outside = {name: mods for name, mods in spelled.items() if mods != {"dspy_mlflow.names"}}
    assert not outside, outside


def test_the_hydra_app_loads_no_heavy_library():
    """``--cfg job``, ``--help`` and a skipped job import the Hydra app: it stays light (the job's own
    steps load DSPy, MLflow and LiteLLM when a job runs)."""
    code = ("import sys, dspy_mlflow.cli.app\n"
            "print(sorted(m for m in ('dspy', 'mlflow', 'litellm', 'optuna', 'scipy', 'pandas', 'sqlalchemy') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
