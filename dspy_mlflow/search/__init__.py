"""Optuna search over an optimizer's hyperparameters (``search=optuna``).

:mod:`.schema` is each search entry's typed schema; :mod:`.space` merges the optimizer entry's
``search_space`` with ``search.space`` overrides and checks them; :mod:`.storage` turns
``search.storage`` into an Optuna storage and derives the study name; :mod:`.study` runs the
trials as nested MLflow runs (``search_compile``, called by the job's compile step); :mod:`.plots`
logs the figures.
"""
