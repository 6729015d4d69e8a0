"""Compare with confidence: is 0.683 vs 0.667 noise, may this version replace production?

    intervals.py    a seeded bootstrap interval of a mean score (and the job's ci metrics)
    paired.py       two programs on the same examples: difference, its interval, a sign-flip p-value
    raw_outputs.py  a run's raw_outputs.jsonl, read back from MLflow
    gate.py         a candidate version against NAME@production, paired on the test examples
    commands.py     ``python -m dspy_mlflow gate NAME VERSION`` (exit 0 not worse, 1 worse, 2 bad input)

Modules import numpy/scipy at their top; nothing here is imported until a command or job uses it.
"""

from __future__ import annotations

from dspy_mlflow.errors import CompareError

__all__ = ["CompareError"]
