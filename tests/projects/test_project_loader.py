"""dspy_mlflow.project.loader: happy paths and every error, with messages that say what and where."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Literal

import cloudpickle
import dspy
import pytest

from dspy_mlflow.errors import ProjectError
from dspy_mlflow.project.loader import Project, load_project, signature_hash

GOOD = '''
import dspy
from dspy_mlflow.project.strategies import build_program


class signature(dspy.Signature):
    """Answer the question."""
    question: str = dspy.InputField()
    answer: str = dspy.OutputField()


def make_program(strategy):
    return build_program(signature, strategy)


def load_examples():
    return [dspy.Example(question=f"q{i}", answer=f"a{i}").with_inputs("question") for i in range(3)]


def metric(example, prediction):
    return float(example.answer == prediction.answer)
'''


def write(tmp_path: Path, source: str, name: str = "task.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def error_of(cfg) -> str:
    with pytest.raises(ProjectError) as info:
        load_project(cfg)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# ---- happy paths -----------------------------------------------------------------------------


def test_load_packaged_project_by_module_path():
    project = load_project({"name": "sentiment", "module": "projects.sentiment"})
    assert isinstance(project, Project)
    assert (project.name, project.module_name, project.module) == (
        "sentiment",
        "projects.sentiment",
        "projects.sentiment",
    )
    assert project.signature.__name__ == "signature" and "sentiment" in project.signature.output_fields
    assert project.reward is not None
    first, second = project.load_examples(), project.load_examples()
    assert len(first) == 240 and first is not second and first == second
    gold = first[0]
    assert project.metric(gold, dspy.Prediction(sentiment=gold.sentiment)) == 1.0
    program = project.make_program({"name": "predict"})
    assert isinstance(program, dspy.Predict)


def test_load_py_file_absolute_and_relative(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    project = load_project({"name": "qa", "module": str(path)})
    assert project.name == "qa" and project.reward is None
    assert project.source == str(path)
    assert [ex.question for ex in project.load_examples()] == ["q0", "q1", "q2"]
    monkeypatch.chdir(tmp_path)
    relative = load_project({"module": "task.py"})
    assert relative.name == "task" and relative.signature.instructions == "Answer the question."


def test_two_arg_metric_is_wrapped_for_every_optimizer(tmp_path):
    project = load_project({"module": str(write(tmp_path, GOOD))})
    gold = dspy.Example(question="q", answer="a").with_inputs("question")
    pred = dspy.Prediction(answer="a")
    # dspy.Evaluate calls (gold, pred); bootstrap (gold, pred, trace); GEPA checks and uses five args
    inspect.signature(project.metric).bind(None, None, None, None, None)
    assert project.metric(gold, pred) == 1.0
    assert project.metric(gold, pred, None) == 1.0
    assert project.metric(gold, pred, None, "predict", None) == 1.0
    assert project.metric.__name__ == "metric"


def test_program_from_a_py_file_pickles_by_value(tmp_path):
    project = load_project({"module": str(write(tmp_path, GOOD, "byvalue_task.py"))})
    blob = cloudpickle.dumps(project.make_program({"name": "predict"}))
    module_name = project.module_name
    saved = sys.modules.pop(module_name)
    try:
        program = cloudpickle.loads(blob)  # would need the (unimportable) module if pickled by reference
    finally:
        sys.modules[module_name] = saved
    assert list(program.signature.output_fields) == ["answer"]


# ---- errors ----------------------------------------------------------------------------------


def test_module_not_found_names_it_and_hints():
    message = error_of({"module": "no_such_pkg_xyz.task"})
    assert "'no_such_pkg_xyz.task' not found" in message
    assert "sys.path" in message and "cwd=" in message and ".py" in message


def test_missing_submodule_of_existing_package():
    message = error_of({"module": "projects.no_such_project"})
    assert "'projects.no_such_project' not found" in message


def test_file_not_found_gives_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = error_of({"module": "sub/missing.py"})
    assert "file not found" in message and str(tmp_path / "sub" / "missing.py") in message


def test_module_whose_import_raises_reports_original_error(tmp_path):
    path = write(tmp_path, "import dspy\nraise RuntimeError('boom: bad config\\nsecond line')\n")
    message = error_of({"module": str(path)})
    assert "RuntimeError: boom: bad config" in message and str(path) in message
    assert "second line" not in message


def test_dotted_module_importing_a_missing_dependency_is_not_reported_as_not_found(tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg_dep"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text("import not_installed_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = error_of({"module": "mypkg_dep.task"})
    assert "'mypkg_dep.task' failed to import" in message
    assert "No module named 'not_installed_dependency_xyz'" in message


def test_syntax_error_in_file(tmp_path):
    message = error_of({"module": str(write(tmp_path, "def broken(:\n"))})
    assert "SyntaxError" in message and "task.py" in message


def test_missing_attribute_names_it_the_module_and_the_contract(tmp_path):
    path = write(tmp_path, GOOD.replace("def metric(", "def not_metric("))
    message = error_of({"module": str(path)})
    assert "no attribute 'metric'" in message and str(path) in message
    assert "signature, make_program(strategy), load_examples(), metric(" in message


def test_missing_attribute_in_dotted_module(tmp_path, monkeypatch):
    (tmp_path / "half_task_xyz.py").write_text("import dspy\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = error_of({"module": "half_task_xyz"})
    assert "project module 'half_task_xyz'" in message and "no attribute 'signature'" in message
    assert "also missing: make_program, load_examples, metric" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "def metric(example, prediction):",
            "metric = 3\ndef _unused(example, prediction):",
            "'metric' is not callable",
        ),
        ("def make_program(strategy):", "def make_program():", "make_program() has the wrong signature"),
        (
            "def metric(example, prediction):",
            "def metric(example):",
            "metric(example) has the wrong signature",
        ),
        ("def load_examples():", "def load_examples(path):", "load_examples(path) has the wrong signature"),
    ],
)
def test_callable_errors(tmp_path, old, new, expected):
    source = GOOD.replace(old, new)
    if new.startswith("def make_program()"):
        source = source.replace(
            "build_program(signature, strategy)", "build_program(signature, {'name': 'predict'})"
        )
    if new.startswith("def metric(example)"):
        source = source.replace("float(example.answer == prediction.answer)", "1.0")
    path = write(tmp_path, source)
    message = error_of({"module": str(path)})
    assert expected in message and str(path) in message


def test_reward_with_wrong_signature(tmp_path):
    path = write(tmp_path, GOOD + "\n\ndef reward(prediction):\n    return 1.0\n")
    assert "reward(prediction) has the wrong signature" in error_of({"module": str(path)})


def test_signature_must_be_a_signature_class(tmp_path):
    source = (
        GOOD.replace("class signature(dspy.Signature):", "class _Sig(dspy.Signature):")
        + '\nsignature = "question -> answer"\n'
    )
    source = source.replace("build_program(signature, strategy)", "build_program(_Sig, strategy)")
    message = error_of({"module": str(write(tmp_path, source))})
    assert "'signature' must be a dspy.Signature subclass" in message and "str" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("return []", "load_examples() returned no examples"),
        ("return [{'question': 'q', 'answer': 'a'}]", "load_examples()[0] is a dict, not a dspy.Example"),
        (
            "return [dspy.Example(question='q', answer='a')]",
            "load_examples()[0] has no inputs set; call .with_inputs('question')",
        ),
        (
            "return [dspy.Example(q='q', answer='a').with_inputs('q')]",
            "lacks the signature's input field(s) ['question']",
        ),
        ("return 5", "load_examples() returned int"),
        ("raise ValueError('data file missing')", "load_examples() raised ValueError: data file missing"),
    ],
)
def test_bad_examples(tmp_path, body, expected):
    source = GOOD.replace(
        '    return [dspy.Example(question=f"q{i}", answer=f"a{i}").with_inputs("question") for i in range(3)]',
        f"    {body}",
    )
    assert source != GOOD
    path = write(tmp_path, source)
    message = error_of({"module": str(path)})
    assert expected in message and str(path) in message


def test_module_key_required():
    assert "project.module=None" in error_of({"name": "x"})


# ---- signature_hash --------------------------------------------------------------------------


def _sig(instructions="Classify.", out_name="label", out_type=str):
    return dspy.Signature(
        {"text": (str, dspy.InputField()), out_name: (out_type, dspy.OutputField())}, instructions
    )


def test_signature_hash_stable_and_sensitive():
    base = signature_hash(_sig())
    assert len(base) == 12 and int(base, 16) >= 0
    assert signature_hash(_sig()) == base
    assert signature_hash(_sig(out_name="sentiment")) != base
    assert signature_hash(_sig(out_type=Literal["a", "b"])) != base
    assert signature_hash(_sig(out_type=Literal["a", "b"])) != signature_hash(
        _sig(out_type=Literal["a", "c"])
    )
    assert signature_hash(_sig(instructions="Classify it.")) != base


def test_signature_hash_same_in_another_process():
    code = "from dspy_mlflow.project.loader import signature_hash; import projects.sentiment as s; print(signature_hash(s.signature))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    import projects.sentiment as s

    assert out == signature_hash(s.signature)
