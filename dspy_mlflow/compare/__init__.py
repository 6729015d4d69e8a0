"""Statistics for comparing programs: is 0.683 vs 0.667 noise, may this version replace production?

    intervals.py    a seeded bootstrap interval of a mean score (and the job's ci metrics)
    paired.py       two programs on the same examples: difference, its interval, a sign-flip p-value
    power.py        the smallest difference a paired comparison detects, and the examples a difference needs
    gate.py         a candidate version against NAME@production, paired on the test examples
    program_diff.py two programs: instructions, demos, and the test examples each wins (diff_html.py: as a page)

The commands are cli/gate.py and cli/diff.py; a run's raw outputs are read by tracking/raw_outputs.py.
"""

from __future__ import annotations

from dspy_mlflow.errors import CompareError

__all__ = ["CompareError"]
