"""The command line: ``python -m dspy_mlflow [WORD] ...``.

``main.py`` maps a bare first word to its subcommand's module (each has ``main(argv)``) and hands
anything else to the Hydra app (``app.py``), loaded only then. One module per subcommand:
promote, rollback, lineage, runs, ui, plan, gate, view, serve_offline, build_mlx_tiny; ``common.py``
holds the shared parser and the one-line error guard; ``mlproject.py`` is MLflow Projects' entry.
"""
