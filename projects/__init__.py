"""Example DSPy projects for dspy_mlflow.

Each subpackage is a project module as the loader expects (see dspy_mlflow.project.loader):
``signature``, ``make_program(strategy)``, ``load_examples()``, ``metric(example, prediction,
trace=None)`` and optionally ``reward(inputs, prediction)``. Data lives beside the code as
``data.jsonl`` and is rebuilt byte for byte by ``generate_data.py``.

- ``projects.sentiment``          review text -> positive / negative (accuracy)
- ``projects.contact_extraction`` message -> sender's name, email, phone (mean per-field exact match)
"""
