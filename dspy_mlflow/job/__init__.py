"""One job: ``run.py`` validates the config, prepares its identity and skips a finished twin;
``execute.py`` opens the run and runs the steps (steps/) in order; ``validation.py`` names each
section's owner and the entry schemas; ``result.py`` is what a job returns.
"""
