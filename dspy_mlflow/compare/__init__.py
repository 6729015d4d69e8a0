"""Statistics for comparing programs: is 0.683 vs 0.667 noise, may this version replace production?

    intervals.py    a seeded bootstrap interval of a mean score (and the job's ci metrics)
    paired.py       two programs on the same examples: difference, its interval, a sign-flip p-value
    gate.py         a candidate version against NAME@production, paired on the test examples

The command is cli/gate.py; a run's raw outputs are read by tracking/raw_outputs.py.
"""

from __future__ import annotations

from dspy_mlflow.errors import CompareError

__all__ = ["CompareError"]
