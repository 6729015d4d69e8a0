"""The MLflow store and what makes a run trustworthy to compare and to recover.

``store.py`` (a reachable tracking URI, a client), identity and the skip lookup (``finished.py``),
the heartbeat and stale-run recovery, resume, the LM cache, traces, the evaluation view,
run logging (splits, raw outputs) and reading raw outputs back.
"""
