"""The steps a job is made of, each a small function in a module named for it.

``context.py`` is the ``JobContext`` they share; ``prepare.py`` a job's identity; then preflight,
lm_setup, evaluate, compile (with ``optimizers.py`` and ``optimizer_schema.py``), confidence,
answers, usage, program_log, register, trace_sampling, progress.
"""
