"""The former home of the inference strategies, kept so that user projects importing
``dspy_mlflow.strategies`` and programs pickled before 0.2 still load; see
:mod:`dspy_mlflow.project.strategies`."""

from dspy_mlflow.project.strategies import STRATEGIES, OutputsPresent, build_program, outputs_present

_OutputsPresent = OutputsPresent  # the name pickles made before 0.2 refer to

__all__ = ["STRATEGIES", "OutputsPresent", "build_program", "outputs_present"]
